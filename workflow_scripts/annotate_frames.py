"""Stage 7: face landmarks and face-region masks for one shard of one variant's frames."""

import polars as pl

from dfmnist.storage.files import atomic_path
from dfmnist.storage.store import Store
from dfmnist.targets.annotations import annotate_shard
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params = snakemake.params
frames = pl.read_parquet(snakemake.input[0])
table = annotate_shard(frames, params.size, make_detector(snakemake.config["faces"]), params.faces,
                       Store(params.store))
with atomic_path(snakemake.output[0]) as tmp:
    table.write_parquet(tmp)

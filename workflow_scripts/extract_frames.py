"""Stage 7: extract frames from one shard of one variant's videos."""

import polars as pl

from dfmnist.storage.files import atomic_path
from dfmnist.storage.store import Store
from dfmnist.targets.frames import extract_shard
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params = snakemake.params
videos = pl.read_parquet(snakemake.input[0])
table = extract_shard(videos, params.sampling, Store(params.store))
with atomic_path(snakemake.output[0]) as tmp:
    table.write_parquet(tmp)

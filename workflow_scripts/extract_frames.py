"""Stage 7: extract frames from one shard of one variant's videos."""

import polars as pl

from dfmnist.frames import extract_shard
from dfmnist.io import atomic_path
from dfmnist.store import Store
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
limit_threads(snakemake.threads)  # noqa: F821
params = snakemake.params  # noqa: F821
videos = pl.read_parquet(snakemake.input[0])  # noqa: F821
table = extract_shard(videos, params.sampling, Store(params.store))
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    table.write_parquet(tmp)

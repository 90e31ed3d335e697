"""Stage 4: animate one shard of the plan (items already in the store are reused)."""

import polars as pl

from dfmnist.generation import generate_shard
from dfmnist.generators import make_generator
from dfmnist.io import atomic_path
from dfmnist.store import Store
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
limit_threads(snakemake.threads)  # noqa: F821
params = snakemake.params  # noqa: F821
cfg = params.generate
shard = int(snakemake.wildcards.shard)  # noqa: F821
generator = make_generator(cfg["generator"], **cfg.get(cfg["generator"], {}))
plan = pl.read_parquet(snakemake.input[0]).filter(pl.col("shard") == shard)  # noqa: F821
table = generate_shard(plan, generator, Store(params.store))
log.info("shard %d: %d computed, %d reused", shard, table["computed"].sum(),
         (~table["computed"]).sum())
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    table.write_parquet(tmp)

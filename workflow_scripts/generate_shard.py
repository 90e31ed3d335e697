"""Stage 4: animate one shard of the plan (items already in the store are reused)."""

import polars as pl

from dfmnist.generation import generate_shard
from dfmnist.gpus import GPU_GENERATORS, claim_device
from dfmnist.io import atomic_path
from dfmnist.store import Store
from dfmnist.workflow import build_generator, limit_threads, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
limit_threads(snakemake.threads)  # noqa: F821
params = snakemake.params  # noqa: F821
cfg = params.generate
shard = int(snakemake.wildcards.shard)  # noqa: F821
plan = pl.read_parquet(snakemake.input[0]).filter(pl.col("shard") == shard)  # noqa: F821
device = cfg["device"] if cfg["generator"] in GPU_GENERATORS else "cpu"
with claim_device(device, params.gpu_locks) as claim:
    log.info("shard %d: %d candidates with %s on %s", shard, plan.height, cfg["generator"],
             claim.label)
    generator = build_generator(cfg, device=claim.device, threads=snakemake.threads)  # noqa: F821
    table = generate_shard(plan, generator, Store(params.store), device=claim.label)
log.info("shard %d: %d computed, %d reused", shard, table["computed"].sum(),
         (~table["computed"]).sum())
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    table.write_parquet(tmp)

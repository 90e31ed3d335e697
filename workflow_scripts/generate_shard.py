"""Stage 4: animate one shard of the plan (items already in the store are reused; an item that
fails is a row in the failures table, the rest of the shard goes on)."""

import polars as pl

from dfmnist.generators.shard import generate_shard
from dfmnist.gpus import GPU_GENERATORS, claim_device
from dfmnist.storage.files import atomic_path
from dfmnist.storage.store import Store
from dfmnist.workflow import build_generator, limit_threads, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params = snakemake.params
cfg = snakemake.config["generate"]  # params.generate: the same without device and threads
shard = int(snakemake.wildcards.shard)
plan = pl.read_parquet(snakemake.input[0]).filter(pl.col("shard") == shard)
names = sorted(set(plan["generator"])) or [cfg["generator"]]
device = cfg["device"] if set(names) & set(GPU_GENERATORS) else "cpu"
with claim_device(device, params.gpu_locks) as claim:
    log.info("shard %d: %d candidates with %s on %s", shard, plan.height, ", ".join(names),
             claim.label)
    generators = {n: build_generator(cfg, device=claim.device, threads=snakemake.threads,
                                     name=n) for n in names}
    fakes, failures = generate_shard(plan, generators, Store(params.store), device=claim.label)
log.info("shard %d: %d computed, %d reused, %d failed", shard, fakes["computed"].sum(),
         (~fakes["computed"]).sum(), failures.height)
with atomic_path(snakemake.output.failures) as tmp:
    failures.write_parquet(tmp)
with atomic_path(snakemake.output.fakes) as tmp:
    fakes.write_parquet(tmp)

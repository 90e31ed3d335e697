"""Stage 5: plan a top-up round for the actions that fell short after the earlier rounds."""

import polars as pl

from dfmnist.liveness.acceptance import VERDICT_SCHEMA, accept
from dfmnist.liveness.topup import shortfalls, topup_plan
from dfmnist.storage.files import atomic_path
from dfmnist.workflow import build_mix, setup_logging

log = setup_logging(snakemake.log[0])
inp, params = snakemake.input, snakemake.params
fakes = pl.concat([pl.read_parquet(p) for p in inp.fakes])
verdicts = pl.concat([pl.read_parquet(p).cast(VERDICT_SCHEMA) for p in inp.verdicts])
_, summary = accept(fakes, verdicts, params.policy, params.per_action)
missing = shortfalls(summary)
planned = pl.concat([pl.read_parquet(p) for p in inp.plans])
new = topup_plan(pl.read_parquet(inp.sources).filter("selected"),
                 pl.read_parquet(inp.driving), planned, missing, params.oversample,
                 params.seed, build_mix(params.generate),
                 params.generate["shards"])
log.info("round %s: short %s; %d new candidates", snakemake.wildcards.round,
         missing or "nothing", new.height)
with atomic_path(snakemake.output[0]) as tmp:
    new.write_parquet(tmp)

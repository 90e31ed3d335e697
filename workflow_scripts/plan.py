"""Stage 3: the plan of candidate fakes with content keys and shards."""

import polars as pl

from dfmnist.plan import build_plan
from dfmnist.storage.files import atomic_path
from dfmnist.workflow import build_mix, setup_logging

log = setup_logging(snakemake.log[0])
params = snakemake.params
gen_cfg = params.generate
mix = build_mix(gen_cfg)
sources = pl.read_parquet(snakemake.input.sources).filter("selected")
driving = pl.read_parquet(snakemake.input.driving)
plan = build_plan(sources, driving, params.actions, params.plan["per_action"],
                  params.plan["oversample"], params.plan["seed"], mix,
                  gen_cfg["shards"])
log.info("planned %d candidates over %d actions: %s", plan.height, plan["action"].n_unique(),
         dict(plan.group_by("generator").len().sort("generator").iter_rows()))
with atomic_path(snakemake.output[0]) as tmp:
    plan.write_parquet(tmp)

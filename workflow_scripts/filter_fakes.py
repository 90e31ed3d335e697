"""Stage 5: keep per action the first fakes (all rounds) that pass the policy's providers;
all verdicts in one table; spoof rates per action and provider with their plot."""

from pathlib import Path

import polars as pl

from dfmnist.faceswap.stage import SWAP_FAILURE_SCHEMA
from dfmnist.liveness.acceptance import VERDICT_SCHEMA, accept, with_face_swaps
from dfmnist.liveness.spoof_rates import plot_spoof_rates, spoof_rates
from dfmnist.storage.files import atomic_path
from dfmnist.storage.store import Store
from dfmnist.workflow import fakes_generators, setup_logging

log = setup_logging(snakemake.log[0])
inp, out, params = snakemake.input, snakemake.output, snakemake.params
fakes = pl.concat([pl.read_parquet(p) for p in inp.fakes])
verdicts = pl.concat([pl.read_parquet(p).cast(VERDICT_SCHEMA) for p in inp.verdicts])
accepted, summary = accept(fakes, verdicts, params.policy, params.per_action)
rounds = 1 + len({Path(p).parent for p in inp.fakes if "/rounds/" in p})
summary = summary.with_columns(rounds=pl.lit(rounds))
for row in summary.iter_rows(named=True):
    log.info("%(action)s: %(passed)d/%(candidates)d passed, %(accepted)d accepted"
             " (shortfall %(shortfall)d)", row)
    if row["shortfall"]:
        log.warning("%s: %d short of %d after %d round(s) (plan.max_rounds %d)", row["action"],
                    row["shortfall"], row["wanted"], rounds, params.max_rounds)
rates = spoof_rates(verdicts, params.policy)
swaps = [pl.read_parquet(p) for p in inp.swaps]
if swaps:
    log.info("face swaps: %d fakes from %d couple/model jobs (not liveness-filtered)",
             sum(s.height for s in swaps), len(swaps))
generators = fakes_generators(inp.fakes, Store(params.store), params.generators)
accepted = with_face_swaps(accepted, generators, swaps)
swap_failures = pl.concat([pl.read_parquet(p) for p in inp.swap_failures],
                          how="vertical") if inp.swap_failures else pl.DataFrame(
                              schema=SWAP_FAILURE_SCHEMA)
for row in swap_failures.iter_rows(named=True):
    log.warning("face swap %s not made: %s", row["candidate_id"], row["error"])
with atomic_path(out.swap_failures) as tmp:
    swap_failures.write_parquet(tmp)
with atomic_path(out.accepted) as tmp:
    accepted.write_parquet(tmp)
with atomic_path(out.verdicts) as tmp:
    verdicts.write_parquet(tmp)
with atomic_path(out.rates) as tmp:
    summary.write_csv(tmp)
with atomic_path(out.by_provider) as tmp:
    rates.write_csv(tmp)
with atomic_path(out.plot) as tmp:
    plot_spoof_rates(rates, tmp)

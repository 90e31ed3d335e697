"""Stage 5: keep per action the first fakes that pass the policy's providers."""

import polars as pl

from dfmnist.filtering import accept
from dfmnist.io import atomic_path
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
inp = snakemake.input  # noqa: F821
fakes = pl.concat([pl.read_parquet(p) for p in inp.fakes])
verdicts = pl.concat([pl.read_parquet(p) for p in inp.verdicts])
accepted, summary = accept(fakes, verdicts, snakemake.params.policy,  # noqa: F821
                           snakemake.params.per_action)  # noqa: F821
for row in summary.iter_rows(named=True):
    log.info("%(action)s: %(passed)d/%(candidates)d passed, %(accepted)d accepted"
             " (shortfall %(shortfall)d)", row)
with atomic_path(snakemake.output.accepted) as tmp:  # noqa: F821
    accepted.write_parquet(tmp)
with atomic_path(snakemake.output.rates) as tmp:  # noqa: F821
    summary.write_csv(tmp)

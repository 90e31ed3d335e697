"""Stage 1: select sources over identities from all clip scores."""

import polars as pl

from dfmnist.io import atomic_path
from dfmnist.sources import select_sources
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
cfg = snakemake.params.sources  # noqa: F821
scores = pl.concat([pl.read_parquet(p) for p in snakemake.input], how="diagonal_relaxed")  # noqa: F821
table = select_sources(scores.drop("computed"), cfg["count"], cfg["seed"])
log.info("selected %d of %d clips over %d identities", table["selected"].sum(), table.height,
         table.filter("selected")["identity"].n_unique())
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    table.write_parquet(tmp)

"""Stage 8: each ensemble model and their fusion (the mean logit), per compression variant."""

import polars as pl

from dfmnist.train.ensemble import ensemble_plot, ensemble_table
from dfmnist.train.table_files import ensemble_notes, write_table_files
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
params, inp, out = snakemake.params, snakemake.input, snakemake.output
preds = pl.concat([pl.read_parquet(p) for p in inp.predictions], how="vertical_relaxed")
table = ensemble_table(preds, params.models, params.variants, params.video_score)
write_table_files(out, table, "Ensemble: each network and their fusion",
                  ensemble_notes(list(inp.runs), params.video_score, params.demo),
                  lambda path: ensemble_plot(table, path))
log.info("ensemble: %d rows\n%s", table.height, table)

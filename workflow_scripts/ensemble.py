"""Stage 8: each ensemble model and their fusion (the mean logit), per compression variant."""

import polars as pl

from dfmnist.storage.files import atomic_path
from dfmnist.train.ensemble import ensemble_plot, ensemble_table
from dfmnist.train.table_files import ensemble_notes
from dfmnist.train.tables import markdown
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
params, inp, out = snakemake.params, snakemake.input, snakemake.output
preds = pl.concat([pl.read_parquet(p) for p in inp.predictions], how="vertical_relaxed")
table = ensemble_table(preds, params.models, params.variants, params.video_score)
with atomic_path(out.csv) as tmp:
    table.write_csv(tmp)
with atomic_path(out.md) as tmp:
    tmp.write_text(markdown(table, "Ensemble: each network and their fusion",
                            ensemble_notes(list(inp.runs), params.video_score, params.demo)))
with atomic_path(out.png) as tmp:
    ensemble_plot(table, tmp)
log.info("ensemble: %d rows\n%s", table.height, table)

"""Stage 8: trained detectors scored on perturbed test videos, AUC against level."""

import json
from pathlib import Path

import polars as pl

from dfmnist.storage.store import Store
from dfmnist.train.experiments import frame_size, load_detector
from dfmnist.train.robustness import auc_plot, robustness_table, score_perturbed
from dfmnist.train.table_files import robustness_notes, write_table_files
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params, inp, out = snakemake.params, snakemake.input, snakemake.output
manifest = pl.read_parquet(inp.manifest)
videos = manifest.filter((pl.col("split") == "test") & (pl.col("variant") == params.variant))
store = Store(params.store)
parts = []
for run in inp.runs:
    record = json.loads(Path(run).read_text())
    model = load_detector(store, record)
    size = frame_size(record["model"], params.sizes, model.input_size)
    log.info("robustness: %s on %d test videos", record["model"], videos.height)
    scores = score_perturbed(model, videos, size, params.perturbations, params.levels,
                             seed=params.seed)
    parts.append(scores.with_columns(pl.lit(record["model"]).alias("model")))
scores = pl.concat(parts)
table = robustness_table(scores, params.video_score)
write_table_files(out, table, "Robustness: AUC under perturbations",
                  robustness_notes(params.variant, params.video_score, params.demo),
                  lambda path: auc_plot(table, path, title="Frame AUC against perturbation "
                                        f"level ({params.variant})"), scores)
log.info("robustness: %d rows", table.height)

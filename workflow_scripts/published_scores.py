"""Stage 8: the seed report's experiment, published networks on clean and altered test videos."""

import json
from pathlib import Path

import polars as pl

from dfmnist.storage.store import Store
from dfmnist.train.experiments import load_detector
from dfmnist.train.published.detector import load_published
from dfmnist.train.published.scores import (
    Scorer,
    published_plot,
    published_table,
    score_videos,
)
from dfmnist.train.table_files import published_notes, write_table_files
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params, inp, out = snakemake.params, snakemake.input, snakemake.output
if params.networks:
    scorers = [Scorer(n["arch"], load_published(n["arch"], n["path"], n["padding"]), True)
               for n in params.networks]
else:
    records = [json.loads(Path(run).read_text()) for run in inp.runs]
    store = Store(params.store)
    scorers = [Scorer(r["model"], load_detector(store, r), False) for r in records]
manifest = pl.read_parquet(inp.manifest)
videos = manifest.filter((pl.col("split") == "test") & (pl.col("variant") == params.variant))
log.info("published_scores: %s on %d test videos of %s", ", ".join(s.name for s in scorers),
         videos.height, params.variant)
scores = score_videos(
    scorers, videos, params.size, {k: v for k, v in params.alterations.items() if v},
    make_detector(snakemake.config["faces"]), min_prob=params.faces["min_prob"],
    margin=params.margin, most_frames=params.frames, seed=params.seed,
    progress=lambda done, total: log.info("scored %d/%d videos", done, total))
table = published_table(scores)
kind = "published" if params.networks else "own"
write_table_files(out, table, "Published networks under the report's alterations",
                  published_notes(params.networks, [s.name for s in scorers], params.variant,
                                  params.margin, params.demo),
                  lambda path: published_plot(table, path, "Scores under alterations "
                                              f"({params.variant}; {kind} networks)"), scores)
log.info("published_scores: %d rows", table.height)

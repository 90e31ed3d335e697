"""Stage 7: the dataset manifest, one row per (video, variant)."""

import polars as pl

from dfmnist.storage.files import atomic_path
from dfmnist.targets.manifest import build_manifest, video_table
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
inp = snakemake.input
reals = pl.read_parquet(inp.sources).filter("selected")
videos = video_table(reals, pl.read_parquet(inp.accepted))
compressed = pl.concat([pl.read_parquet(p) for p in inp.compressed])
frames = pl.concat([pl.read_parquet(p) for p in inp.frames])
verdicts = pl.concat([pl.read_parquet(p) for p in inp.verdicts])
assignment = dict(pl.read_parquet(inp.splits).iter_rows())
table = build_manifest(videos, compressed, frames, assignment, verdicts)
for (split, label), group in table.group_by(["split", "label"], maintain_order=True):
    log.info("%s %s: %d rows", split, label, group.height)
with atomic_path(snakemake.output[0]) as tmp:
    table.write_parquet(tmp)

"""Stage 1: score the sampled frames of one shard of source clips."""

import polars as pl

from dfmnist.io import atomic_path
from dfmnist.sources import score_clip
from dfmnist.store import Store
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
limit_threads(snakemake.threads)  # noqa: F821
params = snakemake.params  # noqa: F821
detector = make_detector(params.faces)
store = Store(params.store)
records = []
for i, (clip_id, path) in enumerate(sorted(params.clips.items()), start=1):
    record = score_clip(clip_id, path, detector, params.sources["frames_per_clip"],
                        params.faces["min_prob"], store)
    log.info("[%d/%d] %s: best frame %s score %.3f%s", i, len(params.clips), clip_id,
             record["frame"], record["score"], "" if record["computed"] else " (reused)")
    records.append(record)
table = pl.DataFrame(records, infer_schema_length=None)
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    table.write_parquet(tmp)

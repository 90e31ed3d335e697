"""Stage 2: one row per cropped driving take, with content hashes."""

import polars as pl

from dfmnist.io import atomic_path, sha256_file
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
inp = snakemake.input  # noqa: F821
takes = snakemake.params.takes  # noqa: F821
rows = []
for (action, take), video, track in zip(takes, inp.videos, inp.tracks, strict=True):
    rows.append({"action": action, "take": take, "video_path": video,
                 "video_sha256": sha256_file(video), "track_path": track,
                 "track_sha256": sha256_file(track), "frames": pl.read_parquet(track).height})
table = pl.DataFrame(rows)
log.info("%d driving takes", table.height)
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    table.write_parquet(tmp)

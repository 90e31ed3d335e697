"""Stage 2: one row per cropped driving take (content hashes, jitter), one per rejected take."""

import json
from pathlib import Path

import polars as pl

from dfmnist.driving import window_jitter
from dfmnist.faces import FaceTrack
from dfmnist.io import atomic_path, sha256_file
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
inp = snakemake.input  # noqa: F821
cfg = snakemake.params.driving  # noqa: F821
# cropped videos live at driving/{action}/{take}.mp4
crops = {(Path(v).parent.name, Path(v).name.removesuffix(".mp4")): (v, t)
         for v, t in zip(inp.videos, inp.tracks, strict=True)}
rows, failures = [], []
for (action, take), info_path, raw_track in zip(snakemake.params.takes, inp.infos,  # noqa: F821
                                                inp.raw_tracks, strict=True):
    info = json.loads(Path(info_path).read_text())
    base = {"action": action, "take": take, "source_path": info["path"],
            "source_sha256": sha256_file(info["path"]), "frames": info["frames"],
            "fps": info["fps"], "faces_found": info["faces_found"],
            "missing_fraction": info["missing_fraction"]}
    if not info["accepted"]:
        failures.append({**base, "reason": info["reason"]})
        log.warning("rejected %s/%s: %s", action, take, info["reason"])
        continue
    video, track = crops[(action, take)]
    jitter_raw, jitter = window_jitter(FaceTrack.from_frame(pl.read_parquet(raw_track)),
                                       cfg["size"], cfg["margin"], cfg["smooth_window"])
    rows.append({**base, "video_path": video, "video_sha256": sha256_file(video),
                 "track_path": track, "track_sha256": sha256_file(track),
                 "jitter_raw_px": jitter_raw, "jitter_px": jitter})
schema = {"action": pl.String, "take": pl.String, "source_path": pl.String,
          "source_sha256": pl.String, "frames": pl.Int64, "fps": pl.Float64,
          "faces_found": pl.Int64, "missing_fraction": pl.Float64}
table = pl.DataFrame(rows, schema={**schema, "video_path": pl.String, "video_sha256": pl.String,
                                   "track_path": pl.String, "track_sha256": pl.String,
                                   "jitter_raw_px": pl.Float64, "jitter_px": pl.Float64})
rejected = pl.DataFrame(failures, schema={**schema, "reason": pl.String})
log.info("%d driving takes cropped, %d rejected", table.height, rejected.height)
with atomic_path(snakemake.output.manifest) as tmp:  # noqa: F821
    table.write_parquet(tmp)
with atomic_path(snakemake.output.failures) as tmp:  # noqa: F821
    rejected.write_parquet(tmp)

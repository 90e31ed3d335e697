"""One shard of driving takes: track, judge and crop each take through the store.

Every take gets one row, accepted or not: a take that cannot be used (empty, not a video,
damaged or truncated, too short, no face, too many faceless frames) is a row with a `reason`,
and the shard goes on. The decision lives in the shard's table, so the workflow needs no
checkpoint per take. Results are items in the content-addressed store, keyed by the take's
bytes and the settings that change a crop, so a rerun or a new shard layout reuses them; a
rejection that follows from the file's content is stored too (it would be the same next time),
while one that depends on the moment (a missing or unreadable file, an unexpected error) is
not.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import polars as pl

from dfmnist.driving.crop import track_take, write_crop
from dfmnist.storage.damage import unreadable_reason
from dfmnist.storage.files import atomic_path, sha256_file
from dfmnist.storage.store import Store, content_key
from dfmnist.storage.video import VideoError
from dfmnist.vision.faces import FaceDetector

log = logging.getLogger(__name__)

KIND = "driving_take"
#: Bump when tracking or cropping changes, so stored takes are recomputed.
DRIVING_VERSION = 2

#: driving.* keys that change a crop or a verdict (execution settings stay out of the key).
DRIVING_KEYS = ("fps", "size", "margin", "smooth_window", "max_missing", "min_frames")
#: faces.* keys that change what MTCNN finds.
FACE_KEYS = ("min_prob", "min_face_size", "detect_max_side")

SCHEMA = {
    "action": pl.String, "take": pl.String, "source_path": pl.String,
    "source_sha256": pl.String, "size_bytes": pl.Int64, "accepted": pl.Boolean,
    "reason": pl.String, "frames": pl.Int64, "fps": pl.Float64, "width": pl.Int64,
    "height": pl.Int64, "source_fps": pl.Float64, "rotation": pl.Int64, "codec": pl.String,
    "faces_found": pl.Int64, "missing_fraction": pl.Float64, "video_path": pl.String,
    "video_sha256": pl.String, "track_path": pl.String, "track_sha256": pl.String,
    "raw_track_path": pl.String, "jitter_raw_px": pl.Float64, "jitter_px": pl.Float64,
    "key": pl.String, "computed": pl.Boolean,
}


def science_settings(driving: dict, faces: dict) -> dict:
    """The settings that enter every take's content key."""
    return {**{k: driving[k] for k in DRIVING_KEYS}, **{k: faces[k] for k in FACE_KEYS},
            "version": DRIVING_VERSION}


def _build_take(path: Path, item: Path, detector: FaceDetector, settings: dict) -> dict:
    """Track, judge and (if accepted) crop one take into the staging directory `item`."""
    track, info = track_take(path, detector, fps=settings["fps"], min_prob=settings["min_prob"],
                             max_missing=settings["max_missing"],
                             min_frames=settings["min_frames"])
    facts = asdict(info)
    with atomic_path(item / "track.parquet") as tmp:
        track.to_frame().write_parquet(tmp)
    if not info.accepted:
        return facts
    crop = write_crop(path, track, item / "video.mp4", fps=settings["fps"],
                      size=settings["size"], margin=settings["margin"],
                      smooth_window=settings["smooth_window"])
    with atomic_path(item / "landmarks.parquet") as tmp:
        crop.track.to_frame().write_parquet(tmp)
    facts.update(jitter_raw_px=crop.jitter_raw, jitter_px=crop.jitter)
    return facts


def process_take(action: str, take: str, path: str | Path, detector: FaceDetector,
                 settings: dict, store: Store) -> dict:
    """One row of the shard table for one take (never raises for a bad input)."""
    path = Path(path)
    row: dict = {k: None for k in SCHEMA}
    row.update(action=action, take=take, source_path=str(path), accepted=False,
               computed=False)
    try:
        if not path.is_file():
            raise FileNotFoundError(path)
        row["size_bytes"] = path.stat().st_size
        digest = sha256_file(path)
    except OSError:
        row["reason"] = unreadable_reason(path)
        return row
    row["source_sha256"] = digest
    key = content_key(KIND, digest, settings, detector.identity())
    row["key"] = key
    if not store.has(KIND, key):
        row["computed"] = True
        meta = {"take": f"{action}/{take}", "sha256": digest}
        try:
            with store.build(KIND, key, meta) as tmp:
                meta["info"] = _build_take(path, tmp, detector, settings)
        except VideoError as exc:  # the file's content: the same answer next time
            with store.build(KIND, key, meta):
                meta["info"] = {**exc.facts, "accepted": False, "reason": exc.reason}
        except Exception as exc:  # noqa: BLE001  (one take never costs its shard)
            log.error("%s/%s (%s): %s", action, take, path, traceback.format_exc())
            row["reason"] = f"unexpected error while processing: {type(exc).__name__}: {exc}"
            return row
    item = store.item_dir(KIND, key)
    facts = store.meta(KIND, key)["info"]
    row.update({k: facts.get(k) for k in ("frames", "fps", "width", "height", "source_fps",
                                          "rotation", "codec", "faces_found",
                                          "missing_fraction", "jitter_raw_px", "jitter_px")})
    row["accepted"], row["reason"] = bool(facts["accepted"]), facts.get("reason")
    if (item / "track.parquet").is_file():
        row["raw_track_path"] = str(item / "track.parquet")
    if row["accepted"]:
        video, lms = item / "video.mp4", item / "landmarks.parquet"
        row.update(video_path=str(video), video_sha256=store.file_sha256(KIND, key, "video.mp4"),
                   track_path=str(lms),
                   track_sha256=store.file_sha256(KIND, key, "landmarks.parquet"))
    return row


def process_shard(takes: list[tuple[str, str, str]], detector: FaceDetector, settings: dict,
                  store: Store) -> pl.DataFrame:
    """Rows for (action, take, path) triples, in order, logging progress and reasons."""
    rows = []
    for i, (action, take, path) in enumerate(takes, start=1):
        start = time.perf_counter()
        row = process_take(action, take, path, detector, settings, store)
        how = "computed" if row["computed"] else "reused"
        if row["accepted"]:
            log.info("[%d/%d] %s/%s: accepted, %d frames at %.2f fps (%sx%s, %s) in %.1fs, %s",
                     i, len(takes), action, take, row["frames"], row["fps"], row["width"],
                     row["height"], row["codec"], time.perf_counter() - start, how)
        else:
            log.warning("[%d/%d] %s/%s REJECTED (%s): %s", i, len(takes), action, take,
                        os.fspath(path), row["reason"])
        rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA)


def split_manifest(shards: list[pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted takes, rejected takes with their reasons), both sorted by action and take."""
    table = pl.concat(shards) if shards else pl.DataFrame(schema=SCHEMA)
    table = table.sort(["action", "take"])
    accepted = table.filter(pl.col("accepted")).drop("reason", "accepted")
    rejected = table.filter(~pl.col("accepted")).select(
        "action", "take", "source_path", "reason", "size_bytes", "source_sha256", "frames",
        "fps", "width", "height", "codec", "faces_found", "missing_fraction")
    return accepted, rejected

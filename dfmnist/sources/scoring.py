"""Source scoring per shard: a clip's scores travel in the shard's table, its best frame in one
tar per scoring shard, and only the selected sources' frames become files of their own.

Every source clip is scored (VoxCeleb1: 153,516 clips) but only the selected ones are used
downstream, so a store item per clip (its scores, its frame, its meta) would make the file
count grow with clips. A scoring shard is one `source_frame` item instead (dfmnist.storage.tars):
`frames.tar` holds one sample per scored clip, keyed by the clip's content and the scoring
settings, with its best frame as `{sample key}/frame.png` (none when no face was found); the
item's meta lists each sample's scores (every sampled frame's, the best frame's landmarks, the
clip's frame count). An unchanged shard is the same item, and a shard that gains or changes a
clip scores only that clip, copying the others from the older shard item.

The selection writes each selected source's frame as a `source_image` item keyed by the PNG's
sha256, so `image_path` is a plain PNG file for everything downstream.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from dfmnist.sources.selection import (
    FRAME_FIELDS,
    SCORER_VERSION,
    clip_digest,
    clip_problem,
    score_frames,
)
from dfmnist.storage.damage import unreadable_reason
from dfmnist.storage.store import Store, content_key
from dfmnist.storage.tars import (
    ensure_shard,
    member,
    older_samples,
    open_tar,
    shard_key,
    shard_samples,
)
from dfmnist.storage.video import VideoError
from dfmnist.vision.faces import FaceDetector

log = logging.getLogger(__name__)

#: Store kind of a scoring shard (best frames in one tar, scores in the meta).
SOURCE_FRAMES = "source_frame"
#: Store kind of a selected source's best frame as a file of its own.
SOURCE_IMAGE = "source_image"
FRAMES_TAR = "frames.tar"
FRAME_PNG = "frame.png"
#: Bump when the shard item's layout changes, so stored shards are rebuilt.
LAYOUT = "source-frames-shard-1"

#: The best frame's fields copied into a clip's record.
BEST_FIELDS = ("frame", "prob", "frontal", "yaw", "pitch", "roll", "sharpness", "score")


def blank_record(clip_id: str, path: str | Path) -> dict:
    """A clip's score record before anything is known of it."""
    identity, video_id, clip = (clip_id.split("/") + ["", ""])[:3]
    return {"clip_id": clip_id, "identity": identity, "video": video_id, "clip": clip,
            "path": str(path), "sha256": None, "key": None, "computed": False, "sampled": 0,
            "faces_found": 0, "clip_frames": 0, "frames": [], "frame": -1, "prob": 0.0,
            "frontal": 0.0, "yaw": None, "pitch": None, "roll": None, "sharpness": 0.0,
            "score": 0.0, "landmarks": None, "frames_tar": None, "frame_member": None,
            "image_path": None, "image_sha256": None, "reason": None}


def _finite(value: object) -> object:
    """JSON has no NaN: an unmeasured angle (no face in that frame) is null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _score_sample(clip_id: str, digest: str, path: Path, detector: FaceDetector,
                  frames_per_clip: int, min_prob: float
                  ) -> tuple[list[tuple[str, bytes]], dict] | str:
    """A clip's sample for the shard tar (its best frame's PNG) and its info for the meta, or
    why it cannot be scored (never raises for a bad clip)."""
    try:
        table, best, total = score_frames(path, detector, frames_per_clip, min_prob)
    except (VideoError, ValueError) as exc:
        return getattr(exc, "reason", str(exc))
    except Exception as exc:  # noqa: BLE001  (one clip never costs its shard)
        log.exception("%s (%s)", clip_id, path)
        return f"unexpected error while scoring: {type(exc).__name__}: {exc}"
    members: list[tuple[str, bytes]] = []
    info = {"clip": clip_id, "sha256": digest, "clip_frames": total,
            "frames": [{k: _finite(v) for k, v in row.items()}
                       for row in table.select(FRAME_FIELDS).to_dicts()],
            "landmarks": None, "image_sha256": None}
    if best is not None:
        ok, png = cv2.imencode(".png", cv2.cvtColor(best, cv2.COLOR_RGB2BGR))
        if not ok:
            return "cannot encode the best frame as PNG"
        members.append((FRAME_PNG, png.tobytes()))
        info["landmarks"] = table["landmarks"][int(table["score"].arg_max())].to_list()
        info["image_sha256"] = hashlib.sha256(members[0][1]).hexdigest()
    return members, info


def _fill(record: dict, info: dict, tar: Path, min_frames: int) -> None:
    """A clip's record from its sample's info in the shard item."""
    frames = [{k: f[k] for k in FRAME_FIELDS} for f in info["frames"]]  # meta.json sorts keys
    found = sum(bool(f["found"]) for f in frames)
    record.update(sampled=len(frames), faces_found=found, clip_frames=int(info["clip_frames"]),
                  frames=frames)
    record["reason"] = clip_problem(record["clip_frames"], found, len(frames), min_frames)
    if found:
        best = frames[int(np.argmax([f["score"] for f in frames]))]  # the first best, as scored
        record.update({k: best[k] for k in BEST_FIELDS}, landmarks=info["landmarks"],
                      frames_tar=str(tar), frame_member=member(record["key"], FRAME_PNG),
                      image_sha256=info["image_sha256"])


def score_shard(
    clips: dict[str, str | Path], detector: FaceDetector, frames_per_clip: int,
    min_prob: float, store: Store, min_frames: int = 0,
) -> list[dict]:
    """Score a shard's clips ({clip id: path}), one record per clip in clip-id order.

    A clip whose content and settings an older shard item scored is copied, never decoded
    (`computed` says which were scored by this call). Never raises for a bad clip: the record's
    `reason` says why it cannot be used (empty, not a video, damaged, a damaged frame image,
    too short, no face); a clip that cannot be scored is in no shard item, so a later run tries
    it again. The PNGs of the clips scored now are held in memory until the shard is written.
    """
    params = {"frames_per_clip": frames_per_clip, "min_prob": min_prob,
              "min_face_size": detector.min_face_size, "version": SCORER_VERSION,
              "detector": detector.identity()}
    records = [blank_record(clip_id, path) for clip_id, path in sorted(clips.items())]
    for record in records:
        try:
            if not (Path(record["path"]).is_file() or Path(record["path"]).is_dir()):
                raise FileNotFoundError(record["path"])
            digest = clip_digest(record["path"])
        except OSError:
            record["reason"] = unreadable_reason(record["path"])
            continue
        record.update(sha256=digest, key=content_key(SOURCE_FRAMES, digest, params))
    scorable = [r for r in records if r["key"]]
    wanted = {r["key"] for r in scorable}
    if not wanted:
        return records
    shard = shard_key(SOURCE_FRAMES, list(wanted), LAYOUT)
    if store.has(SOURCE_FRAMES, shard):
        tar = store.item_dir(SOURCE_FRAMES, shard) / FRAMES_TAR
    else:
        older = older_samples(store, SOURCE_FRAMES, wanted, LAYOUT)
        scored: dict[str, tuple[list[tuple[str, bytes]], dict] | str] = {}
        for record in scorable:
            key = record["key"]
            if key not in older and key not in scored:  # the same content twice: scored once
                scored[key] = _score_sample(record["clip_id"], record["sha256"],
                                            Path(record["path"]), detector, frames_per_clip,
                                            min_prob)
                record["computed"] = not isinstance(scored[key], str)
        failed = {k for k, v in scored.items() if isinstance(v, str)}
        if failed == wanted:
            shard, tar = None, None
        else:
            shard, tar = ensure_shard(
                store, SOURCE_FRAMES, LAYOUT, FRAMES_TAR,
                {k: (lambda k=k: scored[k]) for k in sorted(wanted - failed)}, older=older)
        for record in scorable:
            if record["key"] in failed:
                record["reason"] = scored[record["key"]]
    samples = shard_samples(store, SOURCE_FRAMES, shard) if shard else {}
    for record in scorable:
        if record["key"] in samples:
            _fill(record, samples[record["key"]], tar, min_frames)
    return records


def source_image(store: Store, frames_tar: str | Path, frame_member: str,
                 image_sha256: str) -> Path:
    """A best frame in a scoring shard's tar as a PNG file of its own (a `source_image` item
    keyed by the PNG's sha256, so the same frame is one file whichever shard held it)."""
    key = content_key(SOURCE_IMAGE, image_sha256)
    if not store.has(SOURCE_IMAGE, key):
        data = open_tar(frames_tar).read(frame_member)
        if hashlib.sha256(data).hexdigest() != image_sha256:
            raise ValueError(f"{frames_tar}: {frame_member} does not match the sha256 its "
                             f"scores recorded; check the store with "
                             f"`python -m dfmnist.storage.store verify`")
        with store.build(SOURCE_IMAGE, key, {"sha256": image_sha256}) as tmp:
            (tmp / FRAME_PNG).write_bytes(data)
    return store.item_dir(SOURCE_IMAGE, key) / FRAME_PNG


def with_source_images(table: pl.DataFrame, store: Store) -> pl.DataFrame:
    """`image_path` of the selected clips: their best frame as a PNG file (null elsewhere)."""
    chosen = table.filter(pl.col("selected") & pl.col("frame_member").is_not_null())
    paths = {row["clip_id"]: str(source_image(store, row["frames_tar"], row["frame_member"],
                                              row["image_sha256"]))
             for row in chosen.iter_rows(named=True)}
    return table.with_columns(pl.col("clip_id").replace_strict(
        paths, default=None, return_dtype=pl.String).alias("image_path"))

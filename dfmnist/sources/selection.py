"""Source-image selection: the most frontal, sharpest face frame per clip, then a balanced pick."""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from dfmnist.storage.discovery import frame_images
from dfmnist.storage.files import sha256_file
from dfmnist.storage.store import Store, content_key
from dfmnist.storage.video import VideoReader, VideoWriter
from dfmnist.vision.faces import FaceDetector
from dfmnist.vision.motion import frontalness, pitch_proxy, roll_degrees, sharpness, yaw_proxy

log = logging.getLogger(__name__)

#: Bump when the scoring changes, so stored scores are recomputed.
SCORER_VERSION = 3
#: Laplacian variance at which sharpness contributes half of its weight.
SHARPNESS_HALF = 50.0


#: Per-frame score columns kept in sources.parquet, so the choice of frame can be audited.
FRAME_FIELDS = ("frame", "found", "prob", "yaw", "pitch", "roll", "frontal", "sharpness", "score")


def clip_digest(path: str | Path) -> str:
    """sha256 of a clip: the file's bytes, or the names and bytes of a frame folder's images."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for image in frame_images(path):
        digest.update(image.name.encode() + b"\0" + sha256_file(image).encode())
    return digest.hexdigest()


def sample_clip(path: str | Path, count: int) -> tuple[np.ndarray, np.ndarray, int]:
    """`count` frames spread uniformly over a clip (RGB), their frame indices and the clip's
    frame count.

    A frame folder only has the sampled images read. A video is decoded by ffmpeg, which hands
    over only the frames at the indices its container's duration promises (a `select` filter:
    faster than streaming every frame or than one seeking ffmpeg per frame on short and long
    clips alike, see bench/source_sampling.py, and ffmpeg still decodes every frame, so
    damage anywhere is reported). A clip that ends before its container says (or gives no
    duration) is streamed instead, keeping only the frames at those indices and the last few.
    """
    path = Path(path)
    if path.is_dir():
        images = frame_images(path)
        if not images:
            raise ValueError("no frame images in the folder")
        idx = np.unique(np.linspace(0, len(images) - 1, count).round().astype(int))
        return _read_images([images[i] for i in idx]), idx, len(images)
    reader = VideoReader(path)
    expected = reader.expected_frames
    if expected > 0:
        idx = np.unique(np.linspace(0, expected - 1, count).round().astype(int))
        parts = list(reader.chunks(len(idx), select=idx.tolist()))
        if sum(len(p) for p in parts) == len(idx):
            return np.concatenate(parts), idx, expected
    return _stream_sample(reader, count)


def _stream_sample(reader: VideoReader, count: int) -> tuple[np.ndarray, np.ndarray, int]:
    """`sample_clip` for a clip whose length is not what its container says: every frame is
    streamed (memory holds `count` of them) and counted."""
    expected = max(1, reader.expected_frames)
    wanted = set(np.linspace(0, expected - 1, count).round().astype(int).tolist())
    kept: dict[int, np.ndarray] = {}
    tail: deque[tuple[int, np.ndarray]] = deque(maxlen=max(1, count))
    t = 0
    for chunk in reader.chunks(64):
        for frame in chunk:
            if t in wanted:
                kept[t] = frame.copy()
            tail.append((t, frame.copy()))
            t += 1
    kept.update(tail)
    idx = np.unique(np.linspace(0, t - 1, count).round().astype(int))
    # a clip shorter than its container says: the nearest frame that was kept stands in
    have = np.array(sorted(kept))
    idx = np.unique([int(have[np.abs(have - i).argmin()]) for i in idx])
    return np.stack([kept[int(i)] for i in idx]), idx, t


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"damaged frame image {path.name} (cannot decode it)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_images(images: list[Path]) -> np.ndarray:
    """RGB frames of equal size (later frames resized to the first one's size if they differ)."""
    frames = [_read_image(path) for path in images]
    size = frames[0].shape[1::-1]
    return np.stack([f if f.shape[1::-1] == size
                     else cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def clip_as_video(path: str | Path, store: Store, fps: float) -> Path:
    """A clip as a video file: the file itself, or a frame folder encoded losslessly at `fps`
    into the store (once per folder content), so later stages can treat every real alike.

    Images are encoded one by one (memory holds one frame); an image that cannot be decoded is
    left out and counted in the item's meta (`images_skipped`).
    """
    path = Path(path)
    if path.is_file():
        return path
    digest = clip_digest(path)
    key = content_key("source_video", digest, {"fps": float(fps)})
    if not store.has("source_video", key):
        meta = {"clip": str(path), "sha256": digest, "images_skipped": []}

        def decodable() -> Iterator[np.ndarray]:
            for image_path in frame_images(path):
                try:
                    yield _read_image(image_path)
                except ValueError:
                    meta["images_skipped"].append(image_path.name)
                    log.warning("%s: %s left out, it cannot be decoded", path, image_path.name)

        images = decodable()
        first = next(images, None)
        if first is None:
            raise ValueError(f"{path}: no frame image can be decoded")
        size = first.shape[1::-1]
        with store.build("source_video", key, meta) as tmp, \
                VideoWriter(tmp / "clip.mp4", *size, fps) as writer:
            writer.write(first)
            for image in images:
                if image.shape[1::-1] != size:
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                writer.write(image)
    return store.item_dir("source_video", key) / "clip.mp4"


def frame_scores(
    frames: np.ndarray, detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    min_prob: float,
) -> pl.DataFrame:
    """One row per sampled frame: detection, pose proxies, sharpness and the combined score."""
    rows = []
    for i, (frame, (boxes, probs, lms)) in enumerate(zip(frames, detections, strict=True)):
        row = {"sample": i, "found": False, "prob": 0.0, "frontal": 0.0, "yaw": np.nan,
               "pitch": np.nan, "roll": np.nan, "sharpness": 0.0, "score": 0.0,
               "landmarks": [np.nan] * 10}
        if len(boxes) and probs.max() >= min_prob:
            j = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
            x0, y0, x1, y1 = np.clip(boxes[j], 0, [frame.shape[1]] * 2 + [frame.shape[0]] * 2)
            face = frame[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1]
            lm = lms[j]
            sharp = sharpness(face) if face.size else 0.0
            front = float(frontalness(lm))
            row.update(
                found=True, prob=float(probs[j]), frontal=front, yaw=float(yaw_proxy(lm)),
                pitch=float(pitch_proxy(lm)), roll=float(roll_degrees(lm)), sharpness=sharp,
                score=front * float(probs[j]) * sharp / (sharp + SHARPNESS_HALF),
                landmarks=lm.reshape(-1).astype(float).tolist(),
            )
        rows.append(row)
    return pl.DataFrame(rows)


def score_frames(path: Path, detector: FaceDetector, frames_per_clip: int, min_prob: float
                 ) -> tuple[pl.DataFrame, np.ndarray | None, int]:
    """A clip's sampled frames scored (`frame_scores`, with each frame's index), its best
    frame (RGB; None when no face was found) and its frame count."""
    sampled, idx, total = sample_clip(path, frames_per_clip)
    table = frame_scores(sampled, detector.detect(sampled), min_prob).with_columns(
        pl.Series("frame", idx))
    best = sampled[int(table["score"].arg_max())] if table["found"].any() else None
    return table, best, total


def clip_problem(clip_frames: int, faces_found: int, sampled: int, min_frames: int
                 ) -> str | None:
    """Why a scored clip cannot be a source (None when it can)."""
    if clip_frames < min_frames:
        return (f"too short: {clip_frames} frame{'s' if clip_frames != 1 else ''}, fewer than "
                f"sources.min_frames ({min_frames})")
    if faces_found == 0:
        return f"no face found in any of {sampled} sampled frames"
    return None


#: Column types of the per-clip score records (dfmnist.sources.scoring; rejected clips have
#: nulls and no frames). `frames_tar` and `frame_member` say where the best frame lies;
#: `image_path` is set for selected clips only (their frame as a file of its own).
_FRAME_STRUCT = pl.Struct({"frame": pl.Int64, "found": pl.Boolean, "prob": pl.Float64,
                           "yaw": pl.Float64, "pitch": pl.Float64, "roll": pl.Float64,
                           "frontal": pl.Float64, "sharpness": pl.Float64, "score": pl.Float64})
RECORD_SCHEMA = {
    "clip_id": pl.String, "identity": pl.String, "video": pl.String, "clip": pl.String,
    "path": pl.String, "sha256": pl.String, "key": pl.String, "computed": pl.Boolean,
    "sampled": pl.Int64, "faces_found": pl.Int64, "clip_frames": pl.Int64,
    "frames": pl.List(_FRAME_STRUCT), "frame": pl.Int64, "prob": pl.Float64,
    "frontal": pl.Float64, "yaw": pl.Float64, "pitch": pl.Float64, "roll": pl.Float64,
    "sharpness": pl.Float64, "score": pl.Float64, "landmarks": pl.List(pl.Float64),
    "frames_tar": pl.String, "frame_member": pl.String, "image_path": pl.String,
    "image_sha256": pl.String, "reason": pl.String,
}


def score_table(records: list[dict]) -> pl.DataFrame:
    """The score records of a shard as one table of fixed types."""
    return pl.DataFrame(records, schema=RECORD_SCHEMA)


def source_failures(table: pl.DataFrame) -> pl.DataFrame:
    """The rejected clips of sources.parquet: id, where it came from, why, what was measured."""
    path = "source_path" if "source_path" in table.columns else "path"
    return table.filter(pl.col("reason").is_not_null()).select(
        "clip_id", "identity", pl.col(path).alias("source_path"), "reason", "sha256",
        "clip_frames", "sampled", "faces_found")


def select_sources(scores: pl.DataFrame, count: int, seed: int) -> pl.DataFrame:
    """Mark `count` clips as selected, balanced over identities (round robin, best score first).

    count 0 selects every usable clip (no `reason` against it). The order of identities is a
    seeded shuffle; within an identity clips go best score first, so the pick is auditable
    and stable. The round robin is one sort: round r takes every identity's r-th best clip, in
    the shuffled identity order.
    """
    usable = scores.filter(pl.col("reason").is_null() & (pl.col("faces_found") > 0)).sort(
        ["identity", "score", "clip_id"], descending=[False, True, False])
    identities = sorted(usable["identity"].unique().to_list())
    rng = np.random.default_rng(seed)
    rng.shuffle(identities)
    turn = pl.DataFrame({"identity": identities, "turn": range(len(identities))},
                        schema={"identity": usable.schema["identity"], "turn": pl.Int64})
    target = usable.height if count == 0 else min(count, usable.height)
    # a clip's place among its identity's usable clips, best score first (1 = that identity's
    # best): with selection_rank it says why a clip was or was not taken
    ranked = usable.select(
        "clip_id", "identity",
        (pl.int_range(pl.len()).over("identity") + 1).cast(pl.Int64).alias("identity_rank"),
    ).join(turn, on="identity").sort(["identity_rank", "turn"]).with_columns(
        pl.int_range(pl.len()).cast(pl.Int64).alias("order"))
    ranks = ranked.select(
        "clip_id", "identity_rank",
        pl.when(pl.col("order") < target).then(pl.col("order")).alias("selection_rank"))
    return scores.join(ranks, on="clip_id", how="left").with_columns(
        pl.col("selection_rank").is_not_null().alias("selected"),
    ).select(*scores.columns, "selected", "selection_rank", "identity_rank").sort("clip_id")

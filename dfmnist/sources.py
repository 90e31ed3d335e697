"""Source-image selection: the most frontal, sharpest face frame per clip, then a balanced pick."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from dfmnist.faces import FaceDetector
from dfmnist.io import read_video, sha256_file, write_video
from dfmnist.motion import frontalness, pitch_proxy, roll_degrees, sharpness, yaw_proxy
from dfmnist.store import Store, content_key

#: Bump when the scoring changes, so stored scores are recomputed.
SCORER_VERSION = 2
#: Laplacian variance at which sharpness contributes half of its weight.
SHARPNESS_HALF = 50.0


#: A clip is a video file or a folder of frame images.
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Per-frame score columns kept in sources.parquet, so the choice of frame can be audited.
FRAME_FIELDS = ("frame", "found", "prob", "yaw", "pitch", "roll", "frontal", "sharpness", "score")


def _frame_images(folder: Path) -> list[Path]:
    return sorted(Path(e.path) for e in os.scandir(folder)
                  if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES)


def index_sources(root: str | Path) -> dict[str, Path]:
    """Clip id 'identity/video/clip' -> path, for a VoxCeleb1-style tree under `root`.

    A clip is `{identity}/{video}/{clip}.mp4` (any of VIDEO_SUFFIXES) or a folder
    `{identity}/{video}/{clip}/` of frame images (VoxCeleb1's unzipped face frames).
    """
    root = Path(root)
    clips: dict[str, Path] = {}
    for identity in (e for e in os.scandir(root) if e.is_dir()):
        for video in (e for e in os.scandir(identity.path) if e.is_dir()):
            for clip in os.scandir(video.path):
                path = Path(clip.path)
                if clip.is_dir():
                    if any(Path(e.name).suffix.lower() in IMAGE_SUFFIXES
                           for e in os.scandir(clip.path)):
                        clips[f"{identity.name}/{video.name}/{clip.name}"] = path
                elif path.suffix.lower() in VIDEO_SUFFIXES:
                    clips[f"{identity.name}/{video.name}/{path.stem}"] = path
    return dict(sorted(clips.items()))


def clip_digest(path: str | Path) -> str:
    """sha256 of a clip: the file's bytes, or the names and bytes of a frame folder's images."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for image in _frame_images(path):
        digest.update(image.name.encode() + b"\0" + sha256_file(image).encode())
    return digest.hexdigest()


def sample_clip(path: str | Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` frames spread uniformly over a clip (RGB) and their frame indices.

    A frame folder only has the sampled images read.
    """
    path = Path(path)
    if path.is_dir():
        images = _frame_images(path)
        if not images:
            raise ValueError(f"no frame images in {path}")
        idx = np.unique(np.linspace(0, len(images) - 1, count).round().astype(int))
        return _read_images([images[i] for i in idx]), idx
    video = read_video(path)
    idx = np.unique(np.linspace(0, len(video) - 1, count).round().astype(int))
    return video.frames[idx], idx


def _read_images(images: list[Path]) -> np.ndarray:
    """RGB frames of equal size (later frames resized to the first one's size if they differ)."""
    frames = []
    for path in images:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read frame image {path}")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    size = frames[0].shape[1::-1]
    return np.stack([f if f.shape[1::-1] == size
                     else cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def clip_as_video(path: str | Path, store: Store, fps: float) -> Path:
    """A clip as a video file: the file itself, or a frame folder encoded losslessly at `fps`
    into the store (once per folder content), so later stages can treat every real alike."""
    path = Path(path)
    if path.is_file():
        return path
    digest = clip_digest(path)
    key = content_key("source_video", digest, {"fps": float(fps)})
    if not store.has("source_video", key):
        frames = _read_images(_frame_images(path))
        with store.build("source_video", key, {"clip": str(path), "sha256": digest}) as tmp:
            write_video(tmp / "clip.mp4", frames, fps)
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


def score_clip(
    clip_id: str, path: Path, detector: FaceDetector, frames_per_clip: int, min_prob: float,
    store: Store,
) -> dict:
    """Score one clip (cached in the store by clip content and scoring settings)."""
    digest = clip_digest(path)
    params = {"frames_per_clip": frames_per_clip, "min_prob": min_prob,
              "min_face_size": detector.min_face_size, "version": SCORER_VERSION}
    key = content_key("source_frame", digest, params)
    computed = not store.has("source_frame", key)
    if computed:
        sampled, idx = sample_clip(path, frames_per_clip)
        table = frame_scores(sampled, detector.detect(sampled), min_prob).with_columns(
            pl.Series("frame", idx)
        )
        with store.build("source_frame", key, {"clip": clip_id, "sha256": digest}) as tmp:
            table.write_parquet(tmp / "scores.parquet")
            best = int(table["score"].arg_max()) if table["found"].any() else None
            if best is not None:
                cv2.imwrite(str(tmp / "frame.png"), cv2.cvtColor(sampled[best], cv2.COLOR_RGB2BGR))
    item = store.item_dir("source_frame", key)
    table = pl.read_parquet(item / "scores.parquet")
    identity, video_id, clip = (clip_id.split("/") + ["", ""])[:3]
    record = {"clip_id": clip_id, "identity": identity, "video": video_id, "clip": clip,
              "path": str(path), "sha256": digest, "key": key, "computed": computed,
              "sampled": table.height, "faces_found": int(table["found"].sum()),
              "frames": table.select(FRAME_FIELDS).to_dicts()}
    if table["found"].any():
        best = table.row(int(table["score"].arg_max()), named=True)
        record.update({k: best[k] for k in ("frame", "prob", "frontal", "yaw", "pitch", "roll",
                                            "sharpness", "score", "landmarks")})
        image = item / "frame.png"
        record.update(image_path=str(image), image_sha256=sha256_file(image))
    else:
        record.update(frame=-1, prob=0.0, frontal=0.0, yaw=None, pitch=None, roll=None,
                      sharpness=0.0, score=0.0, landmarks=None, image_path=None,
                      image_sha256=None)
    return record


def select_sources(scores: pl.DataFrame, count: int, seed: int) -> pl.DataFrame:
    """Mark `count` clips as selected, balanced over identities (round robin, best score first).

    count 0 selects every clip with a face. The order of identities is a seeded shuffle;
    within an identity clips go best score first, so the pick is auditable and stable.
    """
    usable = scores.filter(pl.col("faces_found") > 0).sort(["identity", "score", "clip_id"],
                                                              descending=[False, True, False])
    identities = sorted(usable["identity"].unique().to_list())
    rng = np.random.default_rng(seed)
    rng.shuffle(identities)
    queues = {i: usable.filter(pl.col("identity") == i)["clip_id"].to_list() for i in identities}
    target = usable.height if count == 0 else min(count, usable.height)
    chosen: list[str] = []
    while len(chosen) < target:
        for identity in identities:
            if queues[identity] and len(chosen) < target:
                chosen.append(queues[identity].pop(0))
    rank = {clip: r for r, clip in enumerate(chosen)}
    # a clip's place among its identity's usable clips, best score first (1 = that identity's
    # best): with selection_rank it says why a clip was or was not taken
    within = {clip: r + 1 for i in identities
              for r, clip in enumerate(usable.filter(pl.col("identity") == i)["clip_id"])}
    return scores.with_columns(
        pl.col("clip_id").is_in(chosen).alias("selected"),
        pl.col("clip_id").replace_strict(rank, default=None, return_dtype=pl.Int64)
        .alias("selection_rank"),
        pl.col("clip_id").replace_strict(within, default=None, return_dtype=pl.Int64)
        .alias("identity_rank"),
    ).sort("clip_id")

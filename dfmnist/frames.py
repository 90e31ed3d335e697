"""Frame extraction: sampled frames per video at the sizes detectors use, as integer-named PNGs.

The videos are 256x256 face crops (VoxCeleb framing), so a detector's input is the frame
resized: 256 for MesoNet and Xception, 224 for ResNet, 299 optionally, as in the paper.
Each size gets its own folder: `{frames_dir}/{size}/{frame:04d}.png`.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import polars as pl

from dfmnist.io import read_video
from dfmnist.store import Store, content_key

log = logging.getLogger(__name__)

FRAMES = "frames"


def uniform_indices(n_frames: int, count: int) -> np.ndarray:
    """`count` frame indices spread evenly over the video (fewer if the video is shorter)."""
    if n_frames <= 0:
        raise ValueError("video has no frames")
    return np.unique(np.linspace(0, n_frames - 1, min(count, n_frames)).round().astype(int))


def sample_indices(n_frames: int, sampling: dict) -> np.ndarray:
    """Frame indices by the config's `targets.frames`: uniform `count`, or every `k`-th."""
    if sampling.get("sampling", "uniform") == "every_k":
        if n_frames <= 0:
            raise ValueError("video has no frames")
        return np.arange(0, n_frames, int(sampling["k"]))
    return uniform_indices(n_frames, int(sampling["count"]))


def resize_square(frame: np.ndarray, size: int) -> np.ndarray:
    if frame.shape[0] == frame.shape[1] == size:
        return frame
    shrink = frame.shape[0] > size
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA if shrink
                      else cv2.INTER_CUBIC)


def extract_shard(videos: pl.DataFrame, sampling: dict, store: Store) -> pl.DataFrame:
    """Frames of each video (columns video_id, variant, path, sha256) into the store."""
    sizes = [int(s) for s in sampling["sizes"]]
    settings = {"sampling": sampling.get("sampling", "uniform"), "count": sampling.get("count"),
                "k": sampling.get("k"), "sizes": sizes}
    rows = []
    for i, video in enumerate(videos.iter_rows(named=True), start=1):
        key = content_key(FRAMES, video["sha256"], settings)
        computed = not store.has(FRAMES, key)
        if computed:
            decoded = read_video(video["path"])
            idx = sample_indices(len(decoded), sampling)
            with store.build(FRAMES, key, {"video_id": video["video_id"],
                                           "indices": idx.tolist(), "sizes": sizes}) as tmp:
                for size in sizes:
                    (tmp / str(size)).mkdir()
                    for j in idx:
                        frame = resize_square(decoded.frames[j], size)
                        cv2.imwrite(str(tmp / str(size) / f"{j:04d}.png"),
                                    cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        folder = store.item_dir(FRAMES, key)
        indices = store.meta(FRAMES, key)["indices"]
        log.info("[%d/%d] %s/%s: %d frames x %d sizes%s", i, videos.height, video["variant"],
                 video["video_id"], len(indices), len(sizes), "" if computed else " (reused)")
        rows.append({"video_id": video["video_id"], "variant": video["variant"], "key": key,
                     "frames_dir": str(folder), "frame_indices": indices, "computed": computed})
    return pl.DataFrame(rows, schema={
        "video_id": pl.String, "variant": pl.String, "key": pl.String, "frames_dir": pl.String,
        "frame_indices": pl.List(pl.Int64), "computed": pl.Boolean,
    })


def frame_paths(frames_dir: str, indices: list[int], size: int) -> list[str]:
    """The image files of one video's frames at one size."""
    return [f"{frames_dir}/{size}/{j:04d}.png" for j in indices]

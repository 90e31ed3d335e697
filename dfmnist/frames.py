"""Frame extraction: N uniformly spaced frames per video, as integer-named PNG files."""

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


def extract_shard(videos: pl.DataFrame, count: int, store: Store) -> pl.DataFrame:
    """Frames of each video (columns video_id, variant, path, sha256) into the store."""
    rows = []
    for i, video in enumerate(videos.iter_rows(named=True), start=1):
        key = content_key(FRAMES, video["sha256"], {"count": count, "method": "uniform"})
        computed = not store.has(FRAMES, key)
        if computed:
            decoded = read_video(video["path"])
            idx = uniform_indices(len(decoded), count)
            with store.build(FRAMES, key, {"video_id": video["video_id"],
                                           "indices": idx.tolist()}) as tmp:
                for j in idx:
                    frame = cv2.cvtColor(decoded.frames[j], cv2.COLOR_RGB2BGR)
                    cv2.imwrite(str(tmp / f"{j:04d}.png"), frame)
        folder = store.item_dir(FRAMES, key)
        files = sorted(str(p) for p in folder.glob("*.png"))
        log.info("[%d/%d] %s/%s: %d frames%s", i, videos.height, video["variant"],
                 video["video_id"], len(files), "" if computed else " (reused)")
        rows.append({"video_id": video["video_id"], "variant": video["variant"], "key": key,
                     "frames_dir": str(folder), "frame_paths": files, "computed": computed})
    return pl.DataFrame(rows, schema={
        "video_id": pl.String, "variant": pl.String, "key": pl.String, "frames_dir": pl.String,
        "frame_paths": pl.List(pl.String), "computed": pl.Boolean,
    })

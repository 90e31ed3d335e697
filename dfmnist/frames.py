"""Frame extraction: sampled frames per video at the sizes detectors use, as PNGs in one tar.

The videos are 256x256 face crops (VoxCeleb framing), so a detector's input is the frame
resized: 256 for MesoNet and Xception, 224 for ResNet, 299 optionally, as in the paper.

A video's frames are one file, `{frames_dir}/frames.tar`, in WebDataset layout: one sample per
frame, its files `{frame:04d}.{size}.png` side by side (uncompressed members, so a loader
reads a frame with one positioned read, see `FrameTar` and dfmnist.tars). One file per video
instead of one per frame and size keeps a paper-scale build within a cluster volume's file
quota; the PNG files that the DeepfakeBench export needs are written into the export only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from dfmnist.io import read_video
from dfmnist.store import Store, content_key
from dfmnist.tars import MemberTar, write_tar

log = logging.getLogger(__name__)

FRAMES = "frames"
#: The file of a frames item.
FRAMES_TAR = "frames.tar"
#: Bump when the item's layout changes, so stored frames are rebuilt.
LAYOUT = "webdataset-tar-1"


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
                "k": sampling.get("k"), "sizes": sizes, "layout": LAYOUT}
    rows = []
    for i, video in enumerate(videos.iter_rows(named=True), start=1):
        key = content_key(FRAMES, video["sha256"], settings)
        computed = not store.has(FRAMES, key)
        if computed:
            decoded = read_video(video["path"])
            idx = sample_indices(len(decoded), sampling)
            with store.build(FRAMES, key, {"video_id": video["video_id"],
                                           "indices": idx.tolist(), "sizes": sizes}) as tmp:
                write_frame_tar(tmp / FRAMES_TAR, decoded.frames, idx, sizes)
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


def frame_member(index: int, size: int) -> str:
    """The tar member of frame `index` at `size` (WebDataset: sample key, then extension)."""
    return f"{int(index):04d}.{int(size)}.png"


def write_frame_tar(path: Path, frames: np.ndarray, indices: np.ndarray, sizes: list[int]
                    ) -> None:
    """Frames `indices` of `frames` (RGB) at each size, as PNG members, sample by sample."""

    def members() -> Iterator[tuple[str, bytes]]:
        for j in indices:
            for size in sizes:
                frame = cv2.cvtColor(resize_square(frames[j], size), cv2.COLOR_RGB2BGR)
                ok, png = cv2.imencode(".png", frame)
                if not ok:
                    raise ValueError(f"cannot encode frame {j} at {size}")
                yield frame_member(j, size), png.tobytes()

    write_tar(path, members())


class FrameTar(MemberTar):
    """One video's frames tar: a frame is one positioned read of its PNG bytes."""

    def __init__(self, frames_dir: str | Path) -> None:
        super().__init__(Path(frames_dir) / FRAMES_TAR)

    def png(self, index: int, size: int) -> bytes:
        """The PNG bytes of frame `index` at `size`."""
        name = frame_member(index, size)
        if name not in self.members:
            raise FileNotFoundError(f"no frame {index} of size {size} in {self.path}")
        return self.read(name)

    def rgb(self, index: int, size: int) -> np.ndarray:
        """Frame `index` at `size` as RGB uint8."""
        image = cv2.imdecode(np.frombuffer(self.png(index, size), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot decode frame {index} of size {size} in {self.path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frames(frames_dir: str | Path, indices: list[int], size: int) -> np.ndarray:
    """One video's frames `indices` at `size`, RGB uint8 (n, size, size, 3)."""
    frames = FrameTar(frames_dir)
    return np.stack([frames.rgb(j, size) for j in indices])

"""Frame extraction: sampled frames per video at the sizes detectors use, as PNGs in one tar
per shard.

The videos are 256x256 face crops (VoxCeleb framing), so a detector's input is the frame
resized: 256 for MesoNet and Xception, 224 for ResNet, 299 optionally, as in the paper.

A shard's frames (one variant, one compression shard) are one file, `frames.tar`, in
WebDataset layout: one sample per video and frame, its files `{prefix}/{frame:04d}.{size}.png`
side by side, `prefix` being the video's frames key (the manifest's `frames_tar` and
`frames_prefix`). Members are uncompressed, so a loader reads a frame with one positioned read
(`FrameTar`, dfmnist.storage.tars). One file per shard instead of one per frame and size, or per
video, keeps a paper-scale build within a cluster volume's file quota (dfmnist.storage.tars);
the PNG files that the DeepfakeBench export needs are written for the export only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from dfmnist.storage.store import Store, content_key
from dfmnist.storage.tars import Compute, ensure_shard, member, open_tar, shard_samples, write_tar
from dfmnist.storage.video import read_video

log = logging.getLogger(__name__)

FRAMES = "frames"
#: The file of a frames item (one per shard).
FRAMES_TAR = "frames.tar"
#: Bump when the item's layout changes, so stored frames are rebuilt.
LAYOUT = "webdataset-shard-1"


def uniform_indices(n_frames: int, count: int) -> np.ndarray:
    """`count` frame indices spread evenly over the video (fewer if the video is shorter)."""
    if n_frames <= 0:
        raise ValueError("video has no frames")
    return np.unique(np.linspace(0, n_frames - 1, min(count, n_frames)).round().astype(int))


def sample_indices(n_frames: int, sampling: dict) -> np.ndarray:
    """Frame indices by the config's `targets.frames`: uniform `count`, or every `k`-th."""
    if sampling["sampling"] == "every_k":
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
    """Frames of each video (columns video_id, variant, path, sha256) into one store item for
    the shard. Columns: video_id, variant, key (the video's frames key, also its sample key in
    the tar), frames_tar, frames_prefix, frame_indices, computed (decoded by this call)."""
    sizes = [int(s) for s in sampling["sizes"]]
    settings = {"sampling": sampling["sampling"], "count": sampling.get("count"),
                "k": sampling.get("k"), "sizes": sizes, "layout": LAYOUT}
    rows = list(videos.iter_rows(named=True))
    keys = [content_key(FRAMES, video["sha256"], settings) for video in rows]
    decoded_now: set[str] = set()

    def decode(key: str, video: dict) -> Compute:
        def compute() -> tuple[list[tuple[str, bytes]], dict]:
            decoded_now.add(key)
            decoded = read_video(video["path"])
            idx = sample_indices(len(decoded), sampling)
            log.info("%s/%s: %d frames x %d sizes", video["variant"], video["video_id"],
                     len(idx), len(sizes))
            return (list(frame_members(decoded.frames, idx, sizes)),
                    {"video_id": video["video_id"], "indices": idx.tolist()})
        return compute

    shard, tar = ensure_shard(store, FRAMES, LAYOUT, FRAMES_TAR,
                              {key: decode(key, video)
                               for key, video in zip(keys, rows, strict=True)})
    samples = shard_samples(store, FRAMES, shard)
    log.info("%d videos in %s, %d decoded now", len(rows), tar, len(decoded_now))
    return pl.DataFrame(
        [{"video_id": video["video_id"], "variant": video["variant"], "key": key,
          "frames_tar": str(tar), "frames_prefix": key,
          "frame_indices": samples[key]["indices"], "computed": key in decoded_now}
         for key, video in zip(keys, rows, strict=True)],
        schema={"video_id": pl.String, "variant": pl.String, "key": pl.String,
                "frames_tar": pl.String, "frames_prefix": pl.String,
                "frame_indices": pl.List(pl.Int64), "computed": pl.Boolean})


def frame_member(index: int, size: int) -> str:
    """Frame `index` at `size` within its video's sample (WebDataset: sample key, then the
    field); in the tar it follows the video's prefix (dfmnist.storage.tars.member)."""
    return f"{int(index):04d}.{int(size)}.png"


def frame_members(frames: np.ndarray, indices: np.ndarray, sizes: list[int]
                  ) -> Iterator[tuple[str, bytes]]:
    """Frames `indices` of `frames` (RGB) at each size, as PNG members, frame by frame."""
    for j in indices:
        for size in sizes:
            frame = cv2.cvtColor(resize_square(frames[j], size), cv2.COLOR_RGB2BGR)
            ok, png = cv2.imencode(".png", frame)
            if not ok:
                raise ValueError(f"cannot encode frame {j} at {size}")
            yield frame_member(j, size), png.tobytes()


def write_frame_tar(path: Path, samples: dict[str, tuple[np.ndarray, list[int]]],
                    sizes: list[int]) -> None:
    """A frames tar of {prefix: (frames RGB, indices)} at `sizes`, as the store lays it out."""
    write_tar(path, ((member(prefix, name), data) for prefix, (frames, idx) in samples.items()
                     for name, data in frame_members(frames, np.asarray(idx), sizes)))


class FrameTar:
    """One video's frames in a frames tar: a frame is one positioned read of its PNG bytes."""

    def __init__(self, frames_tar: str | Path, prefix: str) -> None:
        self.tar = open_tar(frames_tar)
        self.prefix = prefix

    def png(self, index: int, size: int) -> bytes:
        """The PNG bytes of frame `index` at `size`."""
        name = member(self.prefix, frame_member(index, size))
        if name not in self.tar.members:
            raise FileNotFoundError(f"no frame {index} of size {size} of {self.prefix} in "
                                    f"{self.tar.path}")
        return self.tar.read(name)

    def rgb(self, index: int, size: int) -> np.ndarray:
        """Frame `index` at `size` as RGB uint8."""
        image = cv2.imdecode(np.frombuffer(self.png(index, size), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot decode frame {index} of size {size} of {self.prefix} in "
                             f"{self.tar.path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frames(frames_tar: str | Path, prefix: str, indices: list[int], size: int
                ) -> np.ndarray:
    """One video's frames `indices` at `size`, RGB uint8 (n, size, size, 3)."""
    frames = FrameTar(frames_tar, prefix)
    return np.stack([frames.rgb(j, size) for j in indices])

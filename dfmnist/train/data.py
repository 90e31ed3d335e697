"""PyTorch access to the extracted frames, labelled from the dataset manifest."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import torch
from torch.utils.data import Dataset

from dfmnist.targets.frames import FrameTar


class FrameRef(NamedTuple):
    """Where one item's frame is: its video's frames in a shard tar and the frame's index."""

    frames: FrameTar
    index: int


class FrameDataset(Dataset):
    """One item per extracted frame: (image tensor 3xSxS in [0, 1], target, video index).

    target follows the paper: real = 1, fake = 0. `root` is the workflow directory that the
    manifest's relative paths start from. Frames are read straight from each shard's frames
    tar (`frames_tar`, a video's members under `frames_prefix`, dfmnist.targets.frames): each tar's
    member offsets are read once here, then each item is one positioned read and a PNG decode,
    in whichever worker process asks for it.
    """

    def __init__(self, manifest: str | Path | pl.DataFrame, split: str | None = None,
                 variants: list[str] | str | None = None, size: int = 256,
                 actions: list[str] | None = None, root: str | Path = ".",
                 transform=None) -> None:
        table = manifest if isinstance(manifest, pl.DataFrame) else pl.read_parquet(manifest)
        if split is not None:
            table = table.filter(pl.col("split") == split)
        if variants is not None:
            variants = [variants] if isinstance(variants, str) else list(variants)
            unknown = set(variants) - set(table["variant"].unique())
            if unknown:
                raise ValueError(f"variants not in the manifest: {sorted(unknown)}")
            table = table.filter(pl.col("variant").is_in(variants))
        if actions is not None:
            table = table.filter(pl.col("action").is_in(actions) | (pl.col("label") == "real"))
        self.videos = table.sort(["variant", "video_id"])
        self.size = int(size)
        self.root = Path(root)
        self.transform = transform
        self.items: list[tuple[FrameRef, int, int]] = []  # (frame, target, video index)
        for v, row in enumerate(self.videos.iter_rows(named=True)):
            frames = FrameTar(self.root / row["frames_tar"], row["frames_prefix"])
            for j in row["frame_indices"]:
                if not self.items:
                    frames.png(j, self.size)  # a size that was not extracted fails here
                self.items.append((FrameRef(frames, int(j)), int(row["target"]), v))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        ref, target, video = self.items[index]
        rgb = ref.frames.rgb(ref.index, self.size)
        tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float() / 255.0
        if self.transform is not None:
            tensor = self.transform(tensor)
        return tensor, target, video

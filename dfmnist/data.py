"""PyTorch access to the extracted frames, labelled from the dataset manifest."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import polars as pl
import torch
from torch.utils.data import Dataset

from dfmnist.frames import frame_paths


class FrameDataset(Dataset):
    """One item per extracted frame: (image tensor 3xSxS in [0, 1], target, video index).

    target follows the paper: real = 1, fake = 0. `root` is the workflow directory that the
    manifest's relative paths start from.
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
        self.items: list[tuple[Path, int, int]] = []
        for v, row in enumerate(self.videos.iter_rows(named=True)):
            for path in frame_paths(row["frames_dir"], row["frame_indices"], self.size):
                self.items.append((self.root / path, int(row["target"]), v))
        if self.items and not self.items[0][0].is_file():
            raise FileNotFoundError(f"no frames of size {self.size} at {self.items[0][0]}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        path, target, video = self.items[index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read frame {path}")
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float() / 255.0
        if self.transform is not None:
            tensor = self.transform(tensor)
        return tensor, target, video

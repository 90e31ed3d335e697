"""The small FOMM config's test inputs: face crops of two real photos, a face moving over a few
frames, and a seeded random checkpoint in the original layout (tests/conftest.py's `faces` and
`small_checkpoint` fixtures; the tests/test_fomm_*.py modules)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from dfmnist.generators.fomm.random_weights import write_random_checkpoint

SIZE = 64  # the small config's frame size


def crop(image: np.ndarray, box: tuple[int, int, int, int], size: int = SIZE) -> np.ndarray:
    """A square face crop (y0, y1, x0, x1) resized to size x size."""
    y0, y1, x0, x1 = box
    return cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def moving_clip(face: np.ndarray, frames: int) -> np.ndarray:
    """The face turning and sliding a little over `frames` frames (T, 64, 64, 3)."""
    out = []
    for t in range(frames):
        a = np.sin(np.pi * t / max(frames - 1, 1))
        m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 12.0 * a, 1.0 + 0.08 * a)
        m[:, 2] += (3.0 * a, -2.0 * a)
        out.append(cv2.warpAffine(face, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def to_batch(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).contiguous()


def write_small_checkpoint(path: Path, faces: tuple[np.ndarray, np.ndarray]) -> Path:
    """A seeded random small model in the original checkpoint layout
    (`dfmnist.generators.fomm.random_weights`), batch norms calibrated on the two faces and
    the second one moving."""
    images = np.concatenate([faces[0][None], faces[1][None], moving_clip(faces[1], 4)])
    return write_random_checkpoint(path, "small", images)

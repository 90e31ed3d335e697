"""Unsupervised keypoint detector: hourglass features -> softmax heatmaps -> keypoints.

Each keypoint is the heatmap-weighted mean of the [-1, 1] coordinate grid; its local affine
Jacobian is the heatmap-weighted mean of four predicted maps. Parameter names follow the
original ``KPDetector`` (``predictor``, ``kp``, ``jacobian``, ``down``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.blocks import (
    AntiAliasDownsample,
    Hourglass,
    coordinate_grid,
    full_precision,
    full_width,
)

__all__ = ["KeypointDetector", "Keypoints"]


class Keypoints(NamedTuple):
    """Keypoint positions (B, K, 2) in [-1, 1] (x, y) and Jacobians (B, K, 2, 2) or None."""

    value: torch.Tensor
    jacobian: torch.Tensor | None

    def select(self, index: slice | int) -> Keypoints:
        """The keypoints of a sub-batch (an int index keeps the batch axis)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        jac = None if self.jacobian is None else self.jacobian[index]
        return Keypoints(self.value[index], jac)

    def expand(self, batch: int) -> Keypoints:
        """A batch-1 set of keypoints broadcast to `batch` (no copy)."""
        jac = None if self.jacobian is None else self.jacobian.expand(batch, -1, -1, -1)
        return Keypoints(self.value.expand(batch, -1, -1), jac)

    def full_width(self) -> Keypoints:
        """The same keypoints in at least float32 (float64 kept)."""
        jac = None if self.jacobian is None else full_width(self.jacobian)
        return Keypoints(full_width(self.value), jac)


class KeypointDetector(nn.Module):
    """Predicts `num_kp` keypoints (and optionally their Jacobians) from an image batch.

    Hyper-parameters as in the original ``KPDetector``: hourglass width `block_expansion`,
    capped at `max_features`, `num_blocks` levels; heatmaps are a softmax over space with
    `temperature`; the image is first downscaled by `scale_factor` (band-limited); the two
    7x7 heads use `pad` zero padding (0 in every published config, so the heatmaps are
    6 pixels smaller than the feature map).
    """

    def __init__(
        self,
        block_expansion: int,
        num_kp: int,
        num_channels: int,
        max_features: int,
        num_blocks: int,
        temperature: float,
        estimate_jacobian: bool = False,
        scale_factor: float = 1.0,
        single_jacobian_map: bool = False,
        pad: int = 0,
    ) -> None:
        super().__init__()
        self.num_kp = num_kp
        self.temperature = float(temperature)
        self.scale_factor = float(scale_factor)
        self.predictor = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        features = self.predictor.out_channels
        self.kp = nn.Conv2d(features, num_kp, kernel_size=7, padding=pad)
        self.jacobian: nn.Conv2d | None
        if estimate_jacobian:
            self.jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv2d(features, 4 * self.jacobian_maps, kernel_size=7, padding=pad)
            # start from identity Jacobians everywhere
            with torch.no_grad():
                self.jacobian.weight.zero_()
                self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * self.jacobian_maps))
        else:
            self.jacobian_maps = 0
            self.jacobian = None
        if self.scale_factor != 1.0:
            self.down = AntiAliasDownsample(num_channels, self.scale_factor)

    def heatmaps(self, features: torch.Tensor) -> torch.Tensor:
        """Spatial softmax of the keypoint head: (B, K, h, w), each map sums to 1."""
        logits = self.kp(features)
        b, k, h, w = logits.shape
        probs = F.softmax(full_width(logits).reshape(b, k, h * w) / self.temperature, dim=-1)
        return probs.reshape(b, k, h, w)

    def forward(self, image: torch.Tensor) -> Keypoints:
        """Keypoints of an image batch (B, C, H, W) in [0, 1]."""
        if self.scale_factor != 1.0:
            image = self.down(image)
        features = self.predictor(image)
        heat = self.heatmaps(features)
        maps = None if self.jacobian is None else self.jacobian(features)
        b, k, h, w = heat.shape
        with full_precision(heat):
            flat = full_width(heat).reshape(b, k, h * w)
            grid = coordinate_grid(h, w, dtype=flat.dtype, device=flat.device).reshape(h * w, 2)
            value = flat @ grid  # expectation of the coordinates under each heatmap
            jac = None
            if maps is not None:
                maps = full_width(maps).reshape(b, self.jacobian_maps, 4, h * w)
                maps = maps.expand(b, k, 4, h * w)
                jac = torch.einsum("bkn,bkcn->bkc", flat, maps).reshape(b, k, 2, 2)
        return Keypoints(value, jac)

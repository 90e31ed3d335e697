"""Layers shared by the LivePortrait networks, with the original parameter names.

Facts from KwaiVGI/LivePortrait ``src/modules/util.py``: every 2D/3D "same", "down" and "up"
block is convolution, batch norm, ReLU (LeakyReLU where noted), with 2x2 average pooling after
it (down) or nearest 2x upsampling of height and width before it (up); the 3D hourglass
concatenates each decoder level with its encoder skip and ends with a 3x3x3 convolution,
batch norm and ReLU over ``block_expansion + in_features`` channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DownBlock2d",
    "DownBlock3d",
    "Hourglass",
    "ResBlock3d",
    "SameBlock2d",
    "UpBlock3d",
    "coordinate_grid",
    "gaussian_heatmaps",
]


def coordinate_grid(depth: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """The (D, H, W, 3) grid of (x, y, z) sample points in [-1, 1], x along the width.

    Each axis is ``2 * (i / (n - 1)) - 1`` in `like`'s dtype, the original's order of
    operations (``make_coordinate_grid``), so both codes sample the same points bit for bit.
    """
    def axis(n: int) -> torch.Tensor:
        i = torch.arange(n, dtype=like.dtype, device=like.device)
        return 2 * (i / (n - 1)) - 1

    z, y, x = torch.meshgrid(axis(depth), axis(height), axis(width), indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def gaussian_heatmaps(kp: torch.Tensor, grid: torch.Tensor, variance: float) -> torch.Tensor:
    """Isotropic Gaussians around keypoints: `kp` (B, K, 3), `grid` (D, H, W, 3) ->
    (B, K, D, H, W), ``exp(-0.5 * |p - kp|^2 / variance)`` (the original's ``kp2gaussian``)."""
    diff = grid[None, None] - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


class SameBlock2d(nn.Module):
    """3x3 convolution, batch norm, ReLU (or LeakyReLU with slope 0.01): same size."""

    def __init__(self, in_features: int, out_features: int, lrelu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.ac = nn.LeakyReLU() if lrelu else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ac(self.norm(self.conv(x)))


class DownBlock2d(nn.Module):
    """3x3 convolution, batch norm, ReLU, 2x2 average pooling."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), 2)


class ResBlock3d(nn.Module):
    """Pre-activation residual block: x + conv2(relu(norm2(conv1(relu(norm1(x))))))."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(features, features, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm3d(features, affine=True)
        self.norm2 = nn.BatchNorm3d(features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class DownBlock3d(nn.Module):
    """3x3x3 convolution, batch norm, ReLU, then halve height and width (average)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), (1, 2, 2))


class UpBlock3d(nn.Module):
    """Double height and width (nearest), then 3x3x3 convolution, batch norm, ReLU."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0))
        return F.relu(self.norm(self.conv(x)))


class _Encoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int,
                 max_features: int) -> None:
        super().__init__()
        widths = [in_features] + [min(max_features, block_expansion * 2 ** (i + 1))
                                  for i in range(num_blocks)]
        self.down_blocks = nn.ModuleList(DownBlock3d(widths[i], widths[i + 1])
                                         for i in range(num_blocks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = [x]
        for block in self.down_blocks:
            levels.append(block(levels[-1]))
        return levels


class _Decoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int,
                 max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            # the deepest level comes alone, every other one concatenated with its skip
            width_in = (1 if i == num_blocks - 1 else 2) * min(max_features,
                                                               block_expansion * 2 ** (i + 1))
            blocks.append(UpBlock3d(width_in, min(max_features, block_expansion * 2**i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters, affine=True)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        out = levels[-1]
        for block, skip in zip(self.up_blocks, reversed(levels[:-1]), strict=True):
            out = torch.cat([block(out), skip], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    """3D U-Net: `num_blocks` down blocks, as many up blocks with skips; keys
    ``encoder.down_blocks.I.*``, ``decoder.up_blocks.I.*``, ``decoder.conv``, ``decoder.norm``."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3,
                 max_features: int = 256) -> None:
        super().__init__()
        self.encoder = _Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = _Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

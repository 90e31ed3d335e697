"""Building blocks shared by the FOMM networks.

The attribute names (``conv``, ``norm``, ``conv1``/``norm1``..., ``encoder.down_blocks``,
``decoder.up_blocks``, the ``weight`` buffer of the band-limited downsampler) are chosen so that
``state_dict()`` keys coincide with those of the published first-order-model checkpoints.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AntiAliasDownsample",
    "full_precision",
    "full_width",
    "ConvBlock",
    "Hourglass",
    "HourglassDecoder",
    "HourglassEncoder",
    "ResidualBlock",
    "coordinate_grid",
    "level_width",
]


def coordinate_grid(
    height: int, width: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """Pixel-centre coordinates in [-1, 1], shape (height, width, 2), last axis (x, y).

    Pixel 0 maps to -1 and the last pixel to +1 (the ``align_corners=True`` convention).
    """
    xs = torch.linspace(-1.0, 1.0, width, dtype=torch.float64)
    ys = torch.linspace(-1.0, 1.0, height, dtype=torch.float64)
    if width == 1:
        xs = torch.full((1,), -1.0, dtype=torch.float64)
    if height == 1:
        ys = torch.full((1,), -1.0, dtype=torch.float64)
    grid = torch.stack(
        [xs.view(1, width).expand(height, width), ys.view(height, 1).expand(height, width)], dim=-1
    )
    return grid.to(dtype=dtype, device=device)


def full_precision(tensor: torch.Tensor) -> torch.autocast:
    """A context that turns autocast off on `tensor`'s device: geometry (keypoints, flows,
    sampling) stays in float32 when the convolutions run in bf16/fp16."""
    return torch.autocast(device_type=tensor.device.type, enabled=False)


def full_width(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` in at least float32: half types are widened, float32 and float64 kept (so a
    float64 model stays float64 end to end)."""
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def level_width(base: int, level: int, cap: int) -> int:
    """Channels at hourglass level `level`: ``base * 2**level`` capped at `cap`."""
    return min(cap, base * 2**level)


class ConvBlock(nn.Module):
    """Convolution + batch norm + ReLU, optionally followed by 2x average pooling (``"down"``)
    or preceded by 2x nearest-neighbour upsampling (``"up"``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        resample: str | None = None,
    ) -> None:
        super().__init__()
        if resample not in (None, "down", "up"):
            raise ValueError(f"resample must be None, 'down' or 'up', got {resample!r}")
        self.resample = resample
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm2d(out_channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = F.relu(self.norm(self.conv(x)), inplace=True)
        if self.resample == "down":
            x = F.avg_pool2d(x, 2)
        return x


class ResidualBlock(nn.Module):
    """Pre-activation residual block, same resolution: x + conv(relu(bn(conv(relu(bn(x))))))."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=pad)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=pad)
        self.norm1 = nn.BatchNorm2d(channels, affine=True)
        self.norm2 = nn.BatchNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.norm1(x), inplace=not isinstance(self.norm1, nn.Identity)))
        h = self.conv2(F.relu(self.norm2(h), inplace=True))
        return h.add_(x)


class HourglassEncoder(nn.Module):
    """`depth` downsampling blocks; `forward` returns the input and every level's output."""

    def __init__(self, base: int, in_channels: int, depth: int, cap: int) -> None:
        super().__init__()
        widths = [in_channels] + [level_width(base, i + 1, cap) for i in range(depth)]
        self.down_blocks = nn.ModuleList(
            ConvBlock(widths[i], widths[i + 1], 3, resample="down") for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = [x]
        for block in self.down_blocks:
            levels.append(block(levels[-1]))
        return levels


class HourglassDecoder(nn.Module):
    """Upsampling blocks from the deepest level up; each output is concatenated with the
    encoder level of the same resolution (skip connection)."""

    def __init__(self, base: int, in_channels: int, depth: int, cap: int) -> None:
        super().__init__()
        blocks = []
        for level in reversed(range(depth)):
            deepest = level == depth - 1
            incoming = level_width(base, level + 1, cap) * (1 if deepest else 2)
            blocks.append(ConvBlock(incoming, level_width(base, level, cap), 3, resample="up"))
        self.up_blocks = nn.ModuleList(blocks)
        #: Channels of the decoder output (last upsampled level + the hourglass input).
        self.out_channels = base + in_channels

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        skips = list(levels)
        x = skips.pop()
        for block in self.up_blocks:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return x


class Hourglass(nn.Module):
    """U-Net-like hourglass: encoder levels, decoder with skip concatenations."""

    def __init__(self, base: int, in_channels: int, depth: int = 3, cap: int = 256) -> None:
        super().__init__()
        self.encoder = HourglassEncoder(base, in_channels, depth, cap)
        self.decoder = HourglassDecoder(base, in_channels, depth, cap)
        self.out_channels = self.decoder.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AntiAliasDownsample(nn.Module):
    """Gaussian blur then subsampling by ``1/scale`` (an integer): band-limited downscaling.

    The depthwise kernel lives in the ``weight`` buffer (saved in checkpoints); sigma is
    ``(1/scale - 1) / 2`` and the kernel side ``2 * round(4 sigma) + 1``.
    """

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        self.scale = float(scale)
        self.stride = int(1 / scale)
        sigma = (1.0 / scale - 1.0) / 2.0
        size = 2 * round(sigma * 4) + 1
        self.pad = size // 2
        offsets = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        if sigma > 0:
            profile = torch.exp(-(offsets**2) / (2 * sigma**2))
        else:
            profile = torch.ones(size)
        kernel = profile[:, None] * profile[None, :]
        kernel = kernel / kernel.sum()
        self.channels = channels
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if math.isclose(self.scale, 1.0):
            return x
        x = F.pad(x, (self.pad, self.pad, self.pad, self.pad))
        return F.conv2d(x, self.weight.to(x.dtype), stride=self.stride, groups=self.channels)

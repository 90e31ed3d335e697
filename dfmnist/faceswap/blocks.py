"""Layers the five face-swap autoencoders are built from.

The layer facts (kernel sizes, strides, activations, pixel-shuffle upscaling, the residual
block) are those of the faceswap project's ``lib/model/nn_blocks.py``; the code is our own.
Channel counts pass through `scaled` so one `width` factor shrinks a whole network.
"""

from __future__ import annotations

import torch
from torch import nn

#: Negative slope of the LeakyReLU after a downscaling or upscaling convolution.
BLOCK_SLOPE = 0.1
#: Negative slope inside and after a residual block (and dfaker's explicit activations).
RESIDUAL_SLOPE = 0.2
#: No layer gets fewer channels than this however small the width (a pixel-shuffle group of 4).
MIN_CHANNELS = 4


def scaled(channels: int, width: float) -> int:
    """`channels` of the full-size model times `width`, at least MIN_CHANNELS."""
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    return max(MIN_CHANNELS, int(round(channels * width)))


def _he_uniform(layer: nn.Module) -> nn.Module:
    # faceswap's default kernel initialiser is He-uniform with zero biases.
    nn.init.kaiming_uniform_(layer.weight, a=0.0, nonlinearity="relu")
    nn.init.zeros_(layer.bias)
    return layer


class ConvBlock(nn.Sequential):
    """Halves the resolution: 5x5 convolution, stride 2, then LeakyReLU(0.1)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            _he_uniform(nn.Conv2d(in_channels, out_channels, 5, stride=2, padding=2)),
            nn.LeakyReLU(BLOCK_SLOPE),
        )


class UpscaleBlock(nn.Sequential):
    """Doubles the resolution: 3x3 convolution to 4x the channels, activation, pixel shuffle.

    ``slope=None`` leaves the activation out (dfaker applies its own before a residual block).
    """

    def __init__(self, in_channels: int, out_channels: int, slope: float | None = BLOCK_SLOPE):
        layers: list[nn.Module] = [
            _he_uniform(nn.Conv2d(in_channels, out_channels * 4, 3, padding=1))
        ]
        if slope is not None:
            layers.append(nn.LeakyReLU(slope))
        layers.append(nn.PixelShuffle(2))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a LeakyReLU(0.2) between, added to the input, LeakyReLU(0.2).

    Initialised as faceswap's dfaker does: the first kernel N(0, 0.02), the second a small
    fan-in uniform (variance scale 0.2), so the block starts close to the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.normal_(self.conv1.weight, 0.0, 0.02)
        fan_in = channels * 9
        limit = (3.0 * 0.2 / fan_in) ** 0.5
        nn.init.uniform_(self.conv2.weight, -limit, limit)
        nn.init.zeros_(self.conv1.bias)
        nn.init.zeros_(self.conv2.bias)
        self.act = nn.LeakyReLU(RESIDUAL_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


class OutputConv(nn.Sequential):
    """The last layer of every decoder: 5x5 convolution to `channels`, sigmoid into [0, 1]."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__(_he_uniform(nn.Conv2d(in_channels, channels, 5, padding=2)), nn.Sigmoid())


class DenseBottleneck(nn.Module):
    """Flatten, dense to `dim`, dense to ``side * side * channels``, reshape to a feature map.

    Both dense layers are linear, as in faceswap's encoders and IAE's intermediates.
    """

    def __init__(self, in_features: int, dim: int, side: int, channels: int) -> None:
        super().__init__()
        self.side, self.channels = side, channels
        self.squeeze = nn.Linear(in_features, dim)
        self.expand = nn.Linear(dim, side * side * channels)
        for layer in (self.squeeze, self.expand):  # Keras' Dense default: Glorot-uniform
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(self.squeeze(x.flatten(1)))
        return x.view(-1, self.channels, self.side, self.side)

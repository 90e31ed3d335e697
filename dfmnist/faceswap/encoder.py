"""The encoder both identities share: strided convolutions, then (except IAE's) a dense
bottleneck and one upscale back to a small feature map."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dfmnist.faceswap.blocks import ConvBlock, DenseBottleneck, UpscaleBlock


@dataclass(frozen=True)
class EncoderShape:
    """Channel counts of an encoder (already scaled by the width).

    ``bottleneck=None`` ends the encoder at the flattened last convolution (IAE, whose dense
    layers live in its intermediates).
    """

    convs: tuple[int, ...]
    bottleneck: int | None = None
    reshape: tuple[int, int] | None = None  # (side, channels) after the bottleneck
    upscale: int | None = None


class Encoder(nn.Module):
    """Faces (N, 3, S, S) in [0, 1] -> features: (N, upscale, 2*side, 2*side), or (N, F) flat."""

    def __init__(self, input_size: int, shape: EncoderShape) -> None:
        super().__init__()
        channels = [3, *shape.convs]
        self.convs = nn.Sequential(
            *(ConvBlock(a, b) for a, b in zip(channels[:-1], channels[1:], strict=False))
        )
        conv_side = input_size // 2 ** len(shape.convs)
        self.out_features = shape.convs[-1] * conv_side * conv_side
        self.bottleneck: nn.Module | None = None
        self.upscale: nn.Module | None = None
        if shape.bottleneck is not None:
            assert shape.reshape is not None and shape.upscale is not None
            side, reshape_channels = shape.reshape
            self.bottleneck = DenseBottleneck(
                self.out_features, shape.bottleneck, side, reshape_channels
            )
            self.upscale = UpscaleBlock(reshape_channels, shape.upscale)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = self.convs(faces)
        if self.bottleneck is None:
            return x.flatten(1)
        return self.upscale(self.bottleneck(x))

"""One identity's decoder: pixel-shuffle upscales (dfaker: each of the first ones followed by a
residual block) to a sigmoid face, and optionally a separate branch of upscales to a mask."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dfmnist.faceswap.blocks import RESIDUAL_SLOPE, OutputConv, ResidualBlock, UpscaleBlock


@dataclass(frozen=True)
class DecoderShape:
    """Channel counts of a decoder (already scaled by the width).

    ``residual`` upscales are followed by a residual block (activation moved out of the
    upscale, as dfaker has it); ``mask`` gives the mask branch's upscale channels, or None.
    """

    upscales: tuple[int, ...]
    residual: int = 0
    mask: tuple[int, ...] | None = None


def _upscales(in_channels: int, channels: tuple[int, ...], residual: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, out in enumerate(channels):
        if i < residual:
            layers += [
                UpscaleBlock(in_channels, out, slope=None),
                nn.LeakyReLU(RESIDUAL_SLOPE),
                ResidualBlock(out),
            ]
        else:
            layers.append(UpscaleBlock(in_channels, out))
        in_channels = out
    return nn.Sequential(*layers)


class Decoder(nn.Module):
    """Features (N, C, s, s) -> face (N, 3, s*2^k, s*2^k) in [0, 1] and mask (N, 1, ...) | None."""

    def __init__(self, in_channels: int, shape: DecoderShape) -> None:
        super().__init__()
        self.face = nn.Sequential(
            _upscales(in_channels, shape.upscales, shape.residual),
            OutputConv(shape.upscales[-1], 3),
        )
        self.mask: nn.Module | None = None
        if shape.mask is not None:
            self.mask = nn.Sequential(
                _upscales(in_channels, shape.mask, 0), OutputConv(shape.mask[-1], 1)
            )

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        mask = self.mask(features) if self.mask is not None else None
        return self.face(features), mask

"""Building blocks of the TPSMM networks: FOMM's blocks with instance normalisation.

The Thin-Plate Spline Motion Model (``modules/util.py`` of
https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model, MIT) lays out its blocks exactly
as the first-order model does (convolution, norm, ReLU, then 2x average pooling, or 2x
nearest upsampling first; pre-activation residual blocks; a U-Net hourglass whose widths
double per level up to a cap) but normalises with ``InstanceNorm2d(affine=True)`` instead of
batch norm. So the blocks here are `dfmnist.generators.fomm.blocks`' with their batch norms
swapped for instance norms; the attribute names (``conv``, ``norm``, ``conv1``..``norm2``,
``encoder.down_blocks``, ``decoder.up_blocks``) and therefore the state-dict keys stay those
of the original checkpoints. An affine instance norm without running statistics saves only
``weight`` and ``bias``, as in the original.

Instance norms normalise each image on its own, so a batch of frames computes what the
frames one at a time do (up to float rounding), and eval mode changes nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from dfmnist.generators.fomm.blocks import ConvBlock, Hourglass, ResidualBlock, level_width
from dfmnist.generators.fomm.inference import replace_modules

__all__ = ["LevelHourglass", "conv_block", "instance_normalised", "residual_block"]


def instance_normalised(module: nn.Module) -> nn.Module:
    """`module` with every ``BatchNorm2d`` replaced by an affine ``InstanceNorm2d`` of the same
    width (default eps 1e-5, no running statistics), in place; returns `module`."""
    replace_modules(module, lambda child: nn.InstanceNorm2d(child.num_features, affine=True)
                    if isinstance(child, nn.BatchNorm2d) else None)
    return module


def conv_block(in_channels: int, out_channels: int, kernel_size: int = 3,
               resample: str | None = None) -> ConvBlock:
    """Convolution + instance norm + ReLU, with 2x average pooling after (``"down"``, the
    original's ``DownBlock2d``), 2x nearest upsampling before (``"up"``, ``UpBlock2d``) or
    neither (``SameBlock2d``)."""
    block = ConvBlock(in_channels, out_channels, kernel_size, resample=resample)
    instance_normalised(block)
    return block


def residual_block(channels: int, kernel_size: int = 3) -> ResidualBlock:
    """The pre-activation residual block (``ResBlock2d``) with instance norms."""
    block = ResidualBlock(channels, kernel_size)
    instance_normalised(block)
    return block


class LevelHourglass(Hourglass):
    """The U-Net hourglass with instance norms whose forward returns every decoder level.

    The original's ``Hourglass(..., mode=1)``: after each upsampling block the output is
    concatenated with the encoder level of the same size, and all these concatenations are
    returned, coarsest first. `level_channels` holds their widths.
    """

    def __init__(self, base: int, in_channels: int, depth: int = 3, cap: int = 256) -> None:
        super().__init__(base, in_channels, depth, cap)
        instance_normalised(self)
        #: Channels of each returned level, coarsest first (the finest is base + in_channels).
        self.level_channels = [
            level_width(base, level, cap) + (in_channels if level == 0
                                             else level_width(base, level, cap))
            for level in reversed(range(depth))
        ]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        skips = self.encoder(x)
        out = skips.pop()
        levels = []
        for block in self.decoder.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
            levels.append(out)
        return levels

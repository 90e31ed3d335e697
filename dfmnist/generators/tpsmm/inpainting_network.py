"""Inpainting network: warp the source's multi-scale features by the dense flow, mask the
occluded parts and decode the driving frame.

As ``modules/inpainting_network.py`` of
https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model (``InpaintingNetwork``, inference
path): an encoder (7x7 ``first`` block, ``num_down_blocks`` down blocks) whose every level is
warped by the flow (bilinearly resized to the level with ``align_corners=True``, then
``grid_sample`` with ``align_corners=True``) and multiplied by the occlusion mask of its
resolution; a decoder of two residual blocks and an up block per level, concatenating the
warped level after each up block except the last; then ``out * (1 - m) + level0``, a 7x7
``final`` convolution, a sigmoid and the blend ``out * (1 - m) + warped_source * m`` with the
finest mask m. Parameter names follow the original (``first``, ``down_blocks``,
``up_blocks``, ``resblock``, ``final``).

The original encodes the source again for every frame and also warps each level a second
time (detached copies for training losses); here the encoding is computed once per source
(`encode_source`) and shared by every frame, and the copies are not made.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.blocks import level_width
from dfmnist.generators.tpsmm.blocks import conv_block, residual_block
from dfmnist.generators.tpsmm.dense_motion import OCCLUSION_MASKS, DenseMotion

__all__ = ["InpaintingNetwork", "warp"]


def warp(x: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
    """Backward-warp `x` (B, C, h, w) by a flow (B, h', w', 2), the flow first resized
    bilinearly (``align_corners=True``) to h x w when the sizes differ; a batch-1 `x` is
    shared by the flow's batch."""
    if deformation.shape[1:3] != x.shape[2:]:
        deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=x.shape[2:],
                                    mode="bilinear", align_corners=True).permute(0, 2, 3, 1)
    if x.shape[0] != deformation.shape[0]:
        x = x.expand(deformation.shape[0], -1, -1, -1)
    return F.grid_sample(x, deformation, mode="bilinear", padding_mode="zeros",
                         align_corners=True)


class InpaintingNetwork(nn.Module):
    """Renders the source as seen in the driving frame from the dense motion."""

    def __init__(
        self,
        num_channels: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        multi_mask: bool = True,
        **unused: Any,
    ) -> None:
        super().__init__()
        del unused  # the original passes every common parameter (num_tps, bg, ...)
        if not multi_mask:
            raise ValueError("only multi_mask=True is supported (every published TPSMM config)")
        if num_down_blocks != OCCLUSION_MASKS - 1:
            raise ValueError(f"num_down_blocks must be {OCCLUSION_MASKS - 1}: the dense motion "
                             f"network gives {OCCLUSION_MASKS} occlusion masks")
        self.num_down_blocks = int(num_down_blocks)
        widths = [level_width(block_expansion, i, max_features)
                  for i in range(num_down_blocks + 1)]
        self.first = conv_block(num_channels, block_expansion, kernel_size=7)
        self.down_blocks = nn.ModuleList(
            conv_block(widths[i], widths[i + 1], 3, resample="down")
            for i in range(num_down_blocks))
        # decoder, coarsest level first: the deepest level's input is its own features, the
        # others' the up block's output concatenated with the warped encoder level
        up_blocks, resblocks = [], []
        for level in reversed(range(num_down_blocks)):
            width = widths[level + 1] * (1 if level == num_down_blocks - 1 else 2)
            up_blocks.append(conv_block(width, widths[level], 3, resample="up"))
            resblocks += [residual_block(width), residual_block(width)]
        self.up_blocks = nn.ModuleList(up_blocks)
        self.resblock = nn.ModuleList(resblocks)
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)

    def encode_source(self, source: torch.Tensor) -> list[torch.Tensor]:
        """The encoder levels of a source batch (B, C, H, W), finest first: the ``first``
        block's output, then each down block's (the same for every driving frame)."""
        levels = [self.first(source)]
        for block in self.down_blocks:
            levels.append(block(levels[-1]))
        return levels

    def render(self, source: torch.Tensor, levels: list[torch.Tensor],
               motion: DenseMotion) -> torch.Tensor:
        """Frames (N, C, H, W) in [0, 1] for N dense motions; the batch-1 `source` and its
        encoder `levels` are shared by the N frames."""
        deformation, masks = motion.deformation, motion.occlusion_map
        out = warp(levels[-1], deformation) * masks[0]
        skip = out
        for i in range(self.num_down_blocks):
            out = self.resblock[2 * i + 1](self.resblock[2 * i](out))
            out = self.up_blocks[i](out)
            skip = warp(levels[-(i + 2)], deformation) * masks[i + 1]
            if i < self.num_down_blocks - 1:
                out = torch.cat([out, skip], dim=1)
        last = masks[-1]
        out = out * (1 - last) + skip
        out = torch.sigmoid(self.final(out))
        return out * (1 - last) + warp(source, deformation) * last

    def forward(self, source: torch.Tensor, motion: DenseMotion) -> torch.Tensor:
        """The original's call: encode the source (B, C, H, W), then render."""
        return self.render(source, self.encode_source(source), motion)

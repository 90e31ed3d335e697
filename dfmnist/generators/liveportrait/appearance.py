"""The appearance feature extractor F: source image -> 3D appearance feature volume.

After KwaiVGI/LivePortrait ``src/modules/appearance_feature_extractor.py``: a 3x3 block,
``num_down_blocks`` halving blocks, a 1x1 convolution to ``max_features`` channels, the
channels read as ``reshape_channel`` x ``reshape_depth`` (a volume of depth 16 for the
published model), then ``num_resblocks`` 3D residual blocks. 256x256 RGB in [0, 1] ->
(B, 32, 16, 64, 64) with the published configuration.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from dfmnist.generators.liveportrait.blocks import DownBlock2d, ResBlock3d, SameBlock2d

__all__ = ["AppearanceFeatureExtractor"]


class AppearanceFeatureExtractor(nn.Module):
    """F of the paper; parameter names as in the original (``first``, ``down_blocks.I``,
    ``second``, ``resblocks_3d.3drI``)."""

    def __init__(self, image_channel: int, block_expansion: int, num_down_blocks: int,
                 max_features: int, reshape_channel: int, reshape_depth: int,
                 num_resblocks: int) -> None:
        super().__init__()
        if reshape_channel * reshape_depth != max_features:
            raise ValueError(f"reshape_channel x reshape_depth ({reshape_channel} x "
                             f"{reshape_depth}) must equal max_features ({max_features})")
        self.reshape_channel = reshape_channel
        self.reshape_depth = reshape_depth
        self.first = SameBlock2d(image_channel, block_expansion)
        widths = [min(max_features, block_expansion * 2**i) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(DownBlock2d(widths[i], widths[i + 1])
                                         for i in range(num_down_blocks))
        self.second = nn.Conv2d(widths[-1], max_features, kernel_size=1)
        self.resblocks_3d = nn.Sequential(OrderedDict(
            (f"3dr{i}", ResBlock3d(reshape_channel)) for i in range(num_resblocks)))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, reshape_channel, reshape_depth, H/4, W/4)."""
        out = self.first(image)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        b, _, h, w = out.shape
        return self.resblocks_3d(out.view(b, self.reshape_channel, self.reshape_depth, h, w))

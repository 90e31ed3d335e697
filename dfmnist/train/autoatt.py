"""EfficientNetAutoAttB4 (Bonettini et al., ICPR 2020): EfficientNet-B4 with a learned attention
map over an intermediate block.

A 1x1 convolution turns the 56-channel output of B4's third stage (the tenth MBConv block,
stride 8: 28x28 at 224) into one map; its sigmoid, in [0, 1], multiplies every channel of those
features before the remaining blocks run. The map shows which face regions the detector keeps.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dfmnist.train.efficientnet import EfficientNetB4

#: Index in torchvision's `features` of the stage whose output the attention weights.
ATTENTION_STAGE = 3
ATTENTION_CHANNELS = 56


class EfficientNetAutoAttB4(EfficientNetB4):
    """EfficientNet-B4 whose stage-3 features are weighted by a sigmoid attention map."""

    FRESH = ("classifier.", "attention.")

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.Conv2d(ATTENTION_CHANNELS, 1, kernel_size=1)

    def _attend(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stages up to the attended one: (weighted features, map (N, 1, h, w) in [0, 1])."""
        for stage in self.features[:ATTENTION_STAGE + 1]:
            x = stage(x)
        att = torch.sigmoid(self.attention(x))
        return x * att, att

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self._attend(x)
        for stage in self.features[ATTENTION_STAGE + 1:]:
            x = stage(x)
        return x

    def attention_map(self, x: torch.Tensor, upsample: bool = True) -> torch.Tensor:
        """(N, H, W) attention in [0, 1]; at the input size unless `upsample` is False."""
        _, att = self._attend(x)
        if upsample:
            att = F.interpolate(att, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return att[:, 0]

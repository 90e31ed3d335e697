"""Background motion predictor: one affine transformation of the whole frame.

As ``modules/bg_motion_predictor.py`` of
https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model (``BGMotionPredictor``):
torchvision's ResNet-18 (``bg_encoder``) reading the source and driving frames stacked as six
channels (its first convolution 6 -> 64, 7x7, stride 2, no bias) with a 6-output classifier,
read as the top two rows of a 3x3 homogeneous matrix whose last row is (0, 0, 1). The
original trains it (``bg: True``) and uses it in ``reconstruction.py``; its ``demo.py`` does
not (the background transformation there is the identity).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BGMotionPredictor"]


class BGMotionPredictor(nn.Module):
    """(B, 3, 3) background transformations from source and driving frames (B, 3, H, W)."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import resnet18  # here: torchvision takes ~1 s to import

        self.bg_encoder = resnet18(weights=None, num_classes=6)
        self.bg_encoder.conv1 = nn.Conv2d(6, 64, kernel_size=7, stride=2, padding=3, bias=False)
        # start from the identity, as the original does (overwritten by a checkpoint)
        with torch.no_grad():
            self.bg_encoder.fc.weight.zero_()
            self.bg_encoder.fc.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        batch = driving.shape[0]
        if source.shape[0] != batch:
            source = source.expand(batch, -1, -1, -1)
        rows = self.bg_encoder(torch.cat([source, driving], dim=1)).view(batch, 2, 3)
        last = torch.tensor([0.0, 0.0, 1.0], dtype=rows.dtype, device=rows.device)
        return torch.cat([rows, last.expand(batch, 1, 3)], dim=1)

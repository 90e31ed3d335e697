"""Keypoint detector: a ResNet-18 regressing ``num_tps`` groups of five keypoints.

As ``modules/keypoint_detector.py`` of
https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model (``KPDetector``): torchvision's
ResNet-18 (``fg_encoder``, ImageNet layout, no pretrained weights) whose classifier is a
linear layer to ``num_tps * 5 * 2`` outputs, squashed into (-1, 1) by ``2 sigmoid(x) - 1``.
The keypoints are (x, y) on the [-1, 1] grid of ``grid_sample`` with ``align_corners=True``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["KeypointDetector", "POINTS_PER_TPS"]

#: Keypoints per thin-plate spline.
POINTS_PER_TPS = 5


class KeypointDetector(nn.Module):
    """Predicts ``num_tps * 5`` keypoints (B, num_tps * 5, 2) from images (B, C, H, W) in
    [0, 1] (the original's ``out['fg_kp']``)."""

    def __init__(self, num_tps: int, **unused: Any) -> None:
        super().__init__()
        del unused  # the original passes every common parameter (num_channels, bg, ...)
        from torchvision.models import resnet18  # here: torchvision takes ~1 s to import

        self.num_tps = int(num_tps)
        self.fg_encoder = resnet18(weights=None, num_classes=self.num_tps * POINTS_PER_TPS * 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.fg_encoder(image)
        return (torch.sigmoid(logits) * 2 - 1).view(len(logits), -1, 2)

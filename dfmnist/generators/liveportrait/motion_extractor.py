"""The motion extractor M: an image -> canonical keypoints, head pose, expression, scale,
translation (KwaiVGI/LivePortrait ``src/modules/motion_extractor.py``).

The original wraps a ConvNeXt V2 under the attribute ``detector`` (hence the checkpoint's
``detector.`` key prefix); only the 'convnextv2_tiny' backbone (depths 3-3-9-3, widths
96-192-384-768) exists there. Our smaller test configurations pass `depths`/`dims`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dfmnist.generators.liveportrait.camera import KeypointInfo, keypoint_info
from dfmnist.generators.liveportrait.convnextv2 import ConvNeXtV2

__all__ = ["MotionExtractor"]

#: The original's backbones: name -> (depths, dims).
BACKBONES = {"convnextv2_tiny": ((3, 3, 9, 3), (96, 192, 384, 768))}


class MotionExtractor(nn.Module):
    """M of the paper. `forward` gives the raw head outputs (a dict, as the original);
    `info` the refined `KeypointInfo`."""

    def __init__(self, num_kp: int = 24, backbone: str = "convnextv2_tiny", num_bins: int = 66,
                 depths: Sequence[int] | None = None, dims: Sequence[int] | None = None) -> None:
        super().__init__()
        if depths is None or dims is None:
            if backbone not in BACKBONES:
                raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
            depths, dims = BACKBONES[backbone]
        self.detector = ConvNeXtV2(depths=depths, dims=dims, num_kp=num_kp, num_bins=num_bins)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> the heads' raw outputs (see `ConvNeXtV2`)."""
        return self.detector(image)

    def info(self, image: torch.Tensor) -> KeypointInfo:
        """(B, 3, H, W) in [0, 1] -> keypoints, pose in degrees and rotation."""
        return keypoint_info(self.detector(image))

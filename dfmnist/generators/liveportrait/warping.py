"""The warping module W: warp the source feature volume by the keypoints' dense motion and
project it to the decoder's 2D input (KwaiVGI/LivePortrait ``src/modules/warping_network.py``).

The volume is resampled with trilinear ``grid_sample`` (``align_corners=False``, zero
padding) at the dense deformation, its (channels x depth) read as 2D channels (512), then a
3x3 convolution, batch norm and LeakyReLU (slope 0.01) to ``block_expansion *
2**num_down_blocks`` channels (256), a 1x1 convolution, and the occlusion map multiplied in.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.liveportrait.blocks import SameBlock2d
from dfmnist.generators.liveportrait.dense_motion import DenseMotionNetwork, SourceMotion

__all__ = ["WarpingNetwork"]


class WarpingNetwork(nn.Module):
    """Keys ``dense_motion_network.*``, ``third``, ``fourth`` as in the original."""

    def __init__(self, num_kp: int, block_expansion: int, max_features: int,
                 num_down_blocks: int, reshape_channel: int,
                 estimate_occlusion_map: bool = False,
                 dense_motion_params: dict[str, Any] | None = None,
                 flag_use_occlusion_map: bool = True) -> None:
        super().__init__()
        if dense_motion_params is None:
            raise ValueError("the warping module needs dense_motion_params (the original "
                             "has no path without a dense motion network)")
        self.dense_motion_network = DenseMotionNetwork(
            num_kp=num_kp, feature_channel=reshape_channel,
            estimate_occlusion_map=estimate_occlusion_map, **dense_motion_params)
        width = block_expansion * 2**num_down_blocks
        self.third = SameBlock2d(max_features, width, lrelu=True)
        self.fourth = nn.Conv2d(width, width, kernel_size=1)
        self.use_occlusion = flag_use_occlusion_map

    def prepare(self, feature: torch.Tensor, kp_source: torch.Tensor) -> SourceMotion:
        """The per-source work of the dense motion network (see `DenseMotionNetwork`)."""
        return self.dense_motion_network.prepare(feature, kp_source)

    def forward(self, feature: torch.Tensor, source: SourceMotion, kp_driving: torch.Tensor
                ) -> dict[str, torch.Tensor | None]:
        """`feature` (1, C, D, H, W), prepared `source`, driving keypoints (B, K, 3) ->
        {'out': (B, 256, H, W), 'deformation': (B, D, H, W, 3), 'occlusion_map': ...}."""
        deformation, occlusion = self.dense_motion_network(source, kp_driving)
        b = deformation.shape[0]
        c, d, h, w = feature.shape[1:]
        # the source volume once, the frames' deformations stacked along the output depth
        grid = deformation.reshape(1, b * d, h, w, 3)
        warped = F.grid_sample(feature, grid, align_corners=False)
        out = warped.view(c, b, d, h, w).transpose(0, 1).reshape(b, c * d, h, w)
        out = self.fourth(self.third(out))
        if self.use_occlusion and occlusion is not None:
            out = out * occlusion
        return {"out": out, "deformation": deformation, "occlusion_map": occlusion}

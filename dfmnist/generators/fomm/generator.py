"""Occlusion-aware generator: encode the source, warp its features by the dense motion, mask
occluded regions, refine with residual blocks and decode to an RGB frame.

Parameter names follow the original ``OcclusionAwareGenerator`` (``dense_motion_network``,
``first``, ``down_blocks``, ``up_blocks``, ``bottleneck.r{i}``, ``final``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.blocks import (
    ConvBlock,
    ResidualBlock,
    full_precision,
    full_width,
    level_width,
)
from dfmnist.generators.fomm.dense_motion import DenseMotion, DenseMotionNetwork
from dfmnist.generators.fomm.keypoint_detector import Keypoints

__all__ = ["OcclusionAwareGenerator", "SourceEncoding"]


class SourceEncoding(NamedTuple):
    """Everything about a source image that does not depend on the driving frame."""

    #: The source image (B, C, H, W) in [0, 1].
    image: torch.Tensor
    #: Encoder features (B, F, H / 2**num_down_blocks, W / 2**num_down_blocks).
    features: torch.Tensor
    #: The source at the dense motion network's resolution, or None without one.
    small: torch.Tensor | None


class OcclusionAwareGenerator(nn.Module):
    """Renders the source as seen with the driving keypoints (original hyper-parameter names)."""

    def __init__(
        self,
        num_channels: int,
        num_kp: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        num_bottleneck_blocks: int,
        estimate_occlusion_map: bool = False,
        dense_motion_params: dict[str, Any] | None = None,
        estimate_jacobian: bool = False,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        del estimate_jacobian  # accepted for config compatibility; Jacobians come with the kps
        self.align_corners = bool(align_corners)
        self.dense_motion_network: DenseMotionNetwork | None
        if dense_motion_params is not None:
            self.dense_motion_network = DenseMotionNetwork(
                num_kp=num_kp,
                num_channels=num_channels,
                estimate_occlusion_map=estimate_occlusion_map,
                align_corners=align_corners,
                **dense_motion_params,
            )
        else:
            self.dense_motion_network = None

        self.first = ConvBlock(num_channels, block_expansion, kernel_size=7)
        widths = [level_width(block_expansion, i, max_features) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(
            ConvBlock(widths[i], widths[i + 1], 3, resample="down") for i in range(num_down_blocks)
        )
        self.up_blocks = nn.ModuleList(
            ConvBlock(widths[i + 1], widths[i], 3, resample="up")
            for i in reversed(range(num_down_blocks))
        )
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResidualBlock(widths[-1], kernel_size=3))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)

    def encode_source(self, source: torch.Tensor) -> SourceEncoding:
        """Encode a source batch (B, C, H, W) in [0, 1] once, for any number of frames."""
        features = self.first(source)
        for block in self.down_blocks:
            features = block(features)
        small = None
        if self.dense_motion_network is not None:
            small = self.dense_motion_network.downscale(source)
        return SourceEncoding(source, features, small)

    def warp(self, x: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Backward-warp `x` (B, C, h, w) by a flow (B, h', w', 2), resized bilinearly to h x w
        when the resolutions differ. Computed in at least float32."""
        with full_precision(x):
            flow = full_width(deformation)
            if flow.shape[1:3] != x.shape[2:]:
                flow = F.interpolate(
                    flow.permute(0, 3, 1, 2), size=x.shape[2:], mode="bilinear",
                    align_corners=False,
                ).permute(0, 2, 3, 1)
            return F.grid_sample(
                full_width(x), flow, mode="bilinear", padding_mode="zeros",
                align_corners=self.align_corners,
            )

    def motion(self, encoding: SourceEncoding, kp_driving: Keypoints,
               kp_source: Keypoints) -> DenseMotion | None:
        """The dense motion for each driving keypoint set (None without a motion network)."""
        if self.dense_motion_network is None:
            return None
        return self.dense_motion_network(
            encoding.small, kp_driving=kp_driving, kp_source=kp_source, downscaled=True
        )

    def render(
        self, encoding: SourceEncoding, kp_driving: Keypoints, kp_source: Keypoints
    ) -> torch.Tensor:
        """Frames (N, C, H, W) in [0, 1] for N driving keypoint sets; a batch-1 `encoding`
        (and `kp_source`) is broadcast over the N frames."""
        batch = kp_driving.value.shape[0]
        if kp_source.value.shape[0] != batch:
            kp_source = kp_source.expand(batch)
        features = encoding.features
        if features.shape[0] != batch:
            features = features.expand(batch, -1, -1, -1)
        dense = self.motion(encoding, kp_driving, kp_source)
        if dense is not None:
            features = self.warp(features, dense.deformation)
            if dense.occlusion is not None:
                occlusion = dense.occlusion
                if occlusion.shape[2:] != features.shape[2:]:
                    occlusion = F.interpolate(
                        full_width(occlusion), size=features.shape[2:], mode="bilinear",
                        align_corners=False,
                    )
                features = features * occlusion
        out = self.bottleneck(features)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))

    def forward(
        self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints
    ) -> torch.Tensor:
        """Frames (B, C, H, W) in [0, 1]: the source re-encoded for this batch, as the
        original implementation does for every call."""
        return self.render(self.encode_source(source), kp_driving, kp_source)

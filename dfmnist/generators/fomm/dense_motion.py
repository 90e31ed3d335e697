"""Dense motion network: sparse keypoint motions -> one dense backward flow + occlusion map.

For every keypoint k the local first-order motion near the driving keypoint is
``z -> kp_src + J_src J_drv^-1 (z - kp_drv)``; together with the identity (background) these
K+1 candidate flows warp a downscaled source. An hourglass reads the warped sources and the
keypoint heatmap differences and predicts soft per-pixel weights over the K+1 flows (the
dense flow is their weighted sum) and an occlusion map. Parameter names follow the original
``DenseMotionNetwork`` (``hourglass``, ``mask``, ``occlusion``, ``down``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.blocks import (
    AntiAliasDownsample,
    Hourglass,
    coordinate_grid,
    full_precision,
    full_width,
)
from dfmnist.generators.fomm.keypoint_detector import Keypoints

__all__ = ["DenseMotion", "DenseMotionNetwork", "gaussian_heatmaps"]


class DenseMotion(NamedTuple):
    """Dense motion outputs, at the network's (downscaled) resolution h x w."""

    #: Backward flow (B, h, w, 2): where to sample the source, in [-1, 1] (x, y).
    deformation: torch.Tensor
    #: Soft assignment (B, K+1, h, w) of pixels to the background (0) and the keypoints.
    mask: torch.Tensor
    #: Occlusion map (B, 1, h, w) in (0, 1), or None.
    occlusion: torch.Tensor | None
    #: The source warped by each candidate flow (B, K+1, C, h, w).
    sparse_deformed: torch.Tensor


def gaussian_heatmaps(
    value: torch.Tensor, height: int, width: int, variance: float
) -> torch.Tensor:
    """Isotropic gaussians exp(-|z - kp|^2 / (2 variance)) around keypoints (B, K, 2):
    (B, K, height, width) on the [-1, 1] grid."""
    grid = coordinate_grid(height, width, dtype=value.dtype, device=value.device)
    diff = grid[None, None] - value[:, :, None, None, :]
    return torch.exp(-0.5 * diff.pow(2).sum(-1) / variance)


class DenseMotionNetwork(nn.Module):
    """Predicts the dense backward flow (and occlusion) from a source and two keypoint sets."""

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_kp: int,
        num_channels: int,
        estimate_occlusion_map: bool = False,
        scale_factor: float = 1.0,
        kp_variance: float = 0.01,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        self.num_kp = num_kp
        self.scale_factor = float(scale_factor)
        self.kp_variance = float(kp_variance)
        self.align_corners = bool(align_corners)
        # per candidate flow: one heatmap-difference channel + the warped source channels
        in_channels = (num_kp + 1) * (num_channels + 1)
        self.hourglass = Hourglass(block_expansion, in_channels, num_blocks, max_features)
        features = self.hourglass.out_channels
        self.mask = nn.Conv2d(features, num_kp + 1, kernel_size=7, padding=3)
        self.occlusion: nn.Conv2d | None
        if estimate_occlusion_map:
            self.occlusion = nn.Conv2d(features, 1, kernel_size=7, padding=3)
        else:
            self.occlusion = None
        if self.scale_factor != 1.0:
            self.down = AntiAliasDownsample(num_channels, self.scale_factor)

    def downscale(self, source: torch.Tensor) -> torch.Tensor:
        """The source at the network's working resolution (cacheable across frames)."""
        return self.down(source) if self.scale_factor != 1.0 else source

    def heatmap_differences(
        self, kp_driving: Keypoints, kp_source: Keypoints, height: int, width: int
    ) -> torch.Tensor:
        """Driving minus source gaussians, with a zero background map first: (B, K+1, h, w)."""
        diff = gaussian_heatmaps(kp_driving.value, height, width, self.kp_variance)
        diff = diff - gaussian_heatmaps(kp_source.value, height, width, self.kp_variance)
        background = diff.new_zeros(diff.shape[0], 1, height, width)
        return torch.cat([background, diff], dim=1)

    def sparse_motions(
        self, kp_driving: Keypoints, kp_source: Keypoints, height: int, width: int
    ) -> torch.Tensor:
        """Candidate backward flows (B, K+1, h, w, 2): identity, then one per keypoint."""
        value_d = kp_driving.value
        batch = value_d.shape[0]
        grid = coordinate_grid(height, width, dtype=value_d.dtype, device=value_d.device)
        local = grid[None, None] - value_d[:, :, None, None, :]  # (B, K, h, w, 2)
        if kp_driving.jacobian is not None and kp_source.jacobian is not None:
            affine = kp_source.jacobian @ torch.linalg.inv(kp_driving.jacobian)  # (B, K, 2, 2)
            local = torch.einsum("bkij,bkhwj->bkhwi", affine, local)
        flows = local + kp_source.value[:, :, None, None, :]
        identity = grid[None, None].expand(batch, 1, height, width, 2)
        return torch.cat([identity, flows], dim=1)

    def warp_candidates(self, source: torch.Tensor, motions: torch.Tensor) -> torch.Tensor:
        """The (downscaled) source warped by every candidate flow: (B, K+1, C, h, w)."""
        batch, n_flows, h, w, _ = motions.shape
        channels = source.shape[1]
        images = source[:, None].expand(batch, n_flows, channels, h, w)
        images = images.reshape(batch * n_flows, channels, h, w)
        warped = F.grid_sample(
            images, motions.reshape(batch * n_flows, h, w, 2),
            mode="bilinear", padding_mode="zeros", align_corners=self.align_corners,
        )
        return warped.reshape(batch, n_flows, channels, h, w)

    def forward(
        self,
        source: torch.Tensor,
        kp_driving: Keypoints,
        kp_source: Keypoints,
        downscaled: bool = False,
    ) -> DenseMotion:
        """Dense motion for a source batch (B, C, H, W) (or (1, C, H, W), broadcast over the
        keypoint batch). Pass ``downscaled=True`` when `source` is already `downscale(...)`d."""
        small = source if downscaled else self.downscale(source)
        batch = kp_driving.value.shape[0]
        if small.shape[0] != batch:
            small = small.expand(batch, -1, -1, -1)
        _, _, h, w = small.shape
        kp_driving, kp_source = kp_driving.full_width(), kp_source.full_width()
        with full_precision(small):
            heat = self.heatmap_differences(kp_driving, kp_source, h, w)
            motions = self.sparse_motions(kp_driving, kp_source, h, w)
            warped = self.warp_candidates(full_width(small), motions)
            # per candidate flow: [heatmap difference, warped source channels]
            stacked = torch.cat([heat[:, :, None], warped], dim=2)
        features = self.hourglass(stacked.reshape(batch, -1, h, w))
        mask = F.softmax(full_width(self.mask(features)), dim=1)
        with full_precision(small):
            deformation = torch.einsum("bkhw,bkhwi->bhwi", mask, motions)
        occlusion = None
        if self.occlusion is not None:
            occlusion = torch.sigmoid(self.occlusion(features))
        return DenseMotion(deformation, mask, occlusion, warped)

"""Dense motion network: K thin-plate splines + background -> optical flow and occlusion masks.

As ``modules/dense_motion.py`` of https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model
(``DenseMotionNetwork``, inference path, no TPS dropout): at a downscaled resolution the
source is warped by the identity (or the background's affine motion) and by each of the
``num_tps`` splines that map driving coordinates to source coordinates; an hourglass reads
the warped sources and the keypoints' gaussian heatmap differences (driving minus source,
after a zero background channel) and predicts a softmax over the K+1 transformations per
pixel (the flow is their weighted sum, Eq. 6) and four occlusion masks, the two coarsest from
the hourglass's last two levels and the finer ones after ``log2(1 / scale_factor)``
upsampling blocks (Eq. 9). Parameter names follow the original (``down``, ``hourglass``,
``maps``, ``up``, ``occlusion``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.blocks import AntiAliasDownsample, coordinate_grid
from dfmnist.generators.fomm.dense_motion import gaussian_heatmaps
from dfmnist.generators.tpsmm.blocks import LevelHourglass, conv_block
from dfmnist.generators.tpsmm.keypoint_detector import POINTS_PER_TPS
from dfmnist.generators.tpsmm.tps import fit_tps

__all__ = ["DenseMotion", "DenseMotionNetwork", "OCCLUSION_MASKS"]

#: Occlusion masks, coarsest first (fixed in the original: the inpainting network has three
#: down blocks, so four resolutions).
OCCLUSION_MASKS = 4


class DenseMotion(NamedTuple):
    """Dense motion outputs (h x w: the network's downscaled resolution)."""

    #: Backward flow (B, h, w, 2): where to sample the source, (x, y) in [-1, 1].
    deformation: torch.Tensor
    #: Softmax weights (B, K+1, h, w) of the background (0) and the K splines.
    contribution_maps: torch.Tensor
    #: Occlusion masks in (0, 1), coarsest first: (B, 1, h/2, w/2), (B, 1, h, w), then
    #: one per upsampling block (2h, 4h... for scale_factor 0.25).
    occlusion_map: list[torch.Tensor]
    #: The downscaled source warped by each transformation (B, K+1, C, h, w).
    deformed_source: torch.Tensor


class DenseMotionNetwork(nn.Module):
    """Predicts the dense backward flow and occlusion masks from a source and keypoints."""

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_tps: int,
        num_channels: int,
        scale_factor: float = 0.25,
        bg: bool = False,
        multi_mask: bool = True,
        kp_variance: float = 0.01,
    ) -> None:
        super().__init__()
        if not multi_mask:
            raise ValueError("only multi_mask=True is supported (every published TPSMM config)")
        del bg  # the original stores it unused; the background motion comes as bg_param
        self.num_tps = int(num_tps)
        self.scale_factor = float(scale_factor)
        self.kp_variance = float(kp_variance)
        if self.scale_factor != 1:
            self.down = AntiAliasDownsample(num_channels, self.scale_factor)
        # input: zero channel + one heatmap difference per keypoint, then the K+1 warped sources
        in_channels = num_channels * (num_tps + 1) + num_tps * POINTS_PER_TPS + 1
        self.hourglass = LevelHourglass(block_expansion, in_channels, num_blocks, max_features)
        levels = self.hourglass.level_channels
        self.maps = nn.Conv2d(levels[-1], num_tps + 1, kernel_size=7, padding=3)
        self.up_nums = int(math.log(1 / self.scale_factor, 2))  # the original's arithmetic
        if not 0 <= self.up_nums <= OCCLUSION_MASKS - 1 or OCCLUSION_MASKS - self.up_nums > \
                len(levels):
            raise ValueError(f"scale_factor {scale_factor} with {num_blocks} hourglass blocks "
                             f"cannot give {OCCLUSION_MASKS} occlusion masks")
        widths = [levels[-1] // 2**i for i in range(self.up_nums + 1)]
        self.up = nn.ModuleList(conv_block(widths[i], widths[i] // 2, 3, resample="up")
                                for i in range(self.up_nums))
        mask_inputs = levels[len(levels) - (OCCLUSION_MASKS - self.up_nums):] + widths[1:]
        self.occlusion = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=7, padding=3)
                                       for c in mask_inputs)

    def downscale(self, source: torch.Tensor) -> torch.Tensor:
        """The source at the network's working resolution (the same for every frame)."""
        return self.down(source) if self.scale_factor != 1 else source

    def transformations(self, kp_driving: torch.Tensor, kp_source: torch.Tensor,
                        height: int, width: int,
                        bg_param: torch.Tensor | None = None) -> torch.Tensor:
        """The K+1 backward transformations of the h x w grid (B, K+1, h, w, 2): background
        (identity, or the homogeneous 3x3 `bg_param` (B, 3, 3) applied to it) then one
        thin-plate spline per keypoint group, driving -> source."""
        batch = kp_driving.shape[0]
        grid = coordinate_grid(height, width, dtype=kp_driving.dtype, device=kp_driving.device)
        splines = fit_tps(kp_driving.view(batch, self.num_tps, POINTS_PER_TPS, 2),
                          kp_source.view(batch, self.num_tps, POINTS_PER_TPS, 2))
        warped = splines.warp(grid.view(-1, 2)).view(batch, self.num_tps, height, width, 2)
        if bg_param is None:
            background = grid.expand(batch, 1, height, width, 2)
        else:
            homogeneous = torch.cat([grid, grid.new_ones(height, width, 1)], dim=-1)
            mapped = (bg_param.view(batch, 1, 1, 1, 3, 3) @ homogeneous[..., None]).squeeze(-1)
            background = mapped[..., :2] / mapped[..., 2:3]
        return torch.cat([background, warped], dim=1)

    def forward(
        self,
        source: torch.Tensor,
        kp_driving: torch.Tensor,
        kp_source: torch.Tensor,
        bg_param: torch.Tensor | None = None,
        downscaled: bool = False,
    ) -> DenseMotion:
        """Dense motion for keypoints (B, K*5, 2); `source` is (B, C, H, W) or (1, C, H, W)
        (shared by the batch). Pass ``downscaled=True`` when it is already `downscale`d."""
        small = source if downscaled else self.downscale(source)
        batch = kp_driving.shape[0]
        if kp_source.shape[0] != batch:
            kp_source = kp_source.expand(batch, -1, -1)
        _, channels, h, w = small.shape
        heat = gaussian_heatmaps(kp_driving, h, w, self.kp_variance) \
            - gaussian_heatmaps(kp_source, h, w, self.kp_variance)
        heat = torch.cat([heat.new_zeros(batch, 1, h, w), heat], dim=1)
        motions = self.transformations(kp_driving, kp_source, h, w, bg_param)
        n_flows = self.num_tps + 1
        images = small.expand(batch, channels, h, w)[:, None].expand(batch, n_flows, channels,
                                                                       h, w)
        deformed = F.grid_sample(images.reshape(batch * n_flows, channels, h, w),
                                 motions.view(batch * n_flows, h, w, 2), mode="bilinear",
                                 padding_mode="zeros", align_corners=True)
        deformed = deformed.view(batch, n_flows, channels, h, w)
        levels = self.hourglass(torch.cat([heat, deformed.view(batch, -1, h, w)], dim=1))
        contribution = F.softmax(self.maps(levels[-1]), dim=1)
        deformation = torch.einsum("bkhw,bkhwi->bhwi", contribution, motions)
        masks = []
        first_up = OCCLUSION_MASKS - self.up_nums
        for i in range(first_up):
            masks.append(torch.sigmoid(self.occlusion[i](levels[i - first_up])))
        features = levels[-1]
        for i, block in enumerate(self.up):
            features = block(features)
            masks.append(torch.sigmoid(self.occlusion[first_up + i](features)))
        return DenseMotion(deformation, contribution, masks, deformed)

    def extra_repr(self) -> str:
        return f"num_tps={self.num_tps}, scale_factor={self.scale_factor}"


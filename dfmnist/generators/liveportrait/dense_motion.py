"""The dense motion network: sparse keypoint motion -> a dense 3D deformation and an
occlusion map (KwaiVGI/LivePortrait ``src/modules/dense_motion.py``).

The source feature volume is compressed (1x1x1 convolution, batch norm, ReLU) to
``compress`` channels, warped by each keypoint's translation (plus one identity "background"
motion) with trilinear ``grid_sample`` (``align_corners=False``, zero padding), stacked with
the difference of driving and source Gaussian heatmaps (variance 0.01), and fed to a 3D
hourglass; a 7x7x7 convolution and a softmax over the K+1 motions give the weights of the
dense deformation, a 7x7 convolution over the hourglass output's (channels x depth) and a
sigmoid the occlusion map.

Split for animation: everything that depends on the source only (the compressed volume,
the identity grid, the source heatmaps) is `prepare`d once per video; `forward` takes the
prepared `SourceMotion` and a batch of driving keypoints. All K+1 warps of all frames are
one ``grid_sample`` call on the single source volume, with the frames' sample grids stacked
along the output depth: the same trilinear sums as warping a copy per frame and keypoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.liveportrait.blocks import Hourglass, coordinate_grid, gaussian_heatmaps

__all__ = ["DenseMotionNetwork", "SourceMotion"]

KP_VARIANCE = 0.01  # the heatmaps' variance, fixed in the original


@dataclass
class SourceMotion:
    """The dense motion network's per-source work: the compressed feature volume
    (1, compress, D, H, W), source keypoints (1, K, 3), their heatmaps (1, K, D, H, W) and
    the identity grid (D, H, W, 3)."""

    feature: torch.Tensor
    kp: torch.Tensor
    heatmaps: torch.Tensor
    grid: torch.Tensor


class DenseMotionNetwork(nn.Module):
    """Keys ``hourglass.*``, ``mask``, ``compress``, ``norm``, ``occlusion`` as in the
    original."""

    def __init__(self, block_expansion: int, num_blocks: int, max_features: int, num_kp: int,
                 feature_channel: int, reshape_depth: int, compress: int,
                 estimate_occlusion_map: bool = True) -> None:
        super().__init__()
        self.num_kp = num_kp
        self.hourglass = Hourglass(block_expansion, (num_kp + 1) * (compress + 1),
                                   num_blocks, max_features)
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(compress, affine=True)
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1,
                                    kernel_size=7, padding=3)
                          if estimate_occlusion_map else None)
        #: zero subnormal heatmap values (see `forward`); set by the inference rewrites
        self.flush_subnormal = False

    def prepare(self, feature: torch.Tensor, kp_source: torch.Tensor) -> SourceMotion:
        """The per-source part: `feature` (1, C, D, H, W), `kp_source` (1, K, 3)."""
        compressed = F.relu(self.norm(self.compress(feature)))
        _, _, d, h, w = compressed.shape
        grid = coordinate_grid(d, h, w, kp_source)
        return SourceMotion(compressed, kp_source,
                            gaussian_heatmaps(kp_source, grid, KP_VARIANCE), grid)

    def forward(self, source: SourceMotion, kp_driving: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Driving keypoints (B, K, 3) -> deformation (B, D, H, W, 3), occlusion
        (B, 1, H, W) or None."""
        b, k = kp_driving.shape[:2]
        feature = source.feature
        c, d, h, w = feature.shape[1:]
        identity = source.grid[None, None]  # (1, 1, D, H, W, 3)
        shifted = identity - kp_driving[:, :, None, None, None, :] \
            + source.kp[:, :, None, None, None, :]
        motions = torch.cat([identity.expand(b, 1, d, h, w, 3), shifted], dim=1)
        # every frame's K+1 warps at once: grids stacked along the output depth
        warped = F.grid_sample(feature, motions.reshape(1, b * (k + 1) * d, h, w, 3),
                               align_corners=False)
        warped = warped.view(c, b, k + 1, d, h, w).permute(1, 2, 0, 3, 4, 5)
        heatmap = gaussian_heatmaps(kp_driving, source.grid, KP_VARIANCE) - source.heatmaps
        if self.flush_subnormal:
            # the Gaussians' tails (and differences of tails) fall below the smallest normal
            # float32 in a shell around every keypoint; those subnormal values make the CPU's
            # multiply-adds take microcode assists, and the hourglass convolutions that read
            # them (its first and its last, through the skip) run 3-4x slower. Zero instead:
            # a change of at most 1.2e-38 per value; a no-op in float64, whose Gaussians stay
            # far above its own smallest normal (exp(-600) vs 2.2e-308)
            tiny = torch.finfo(heatmap.dtype).tiny
            heatmap = heatmap.masked_fill(heatmap.abs() < tiny, 0.0)
        heatmap = torch.cat([heatmap.new_zeros(b, 1, d, h, w), heatmap], dim=1)
        x = torch.cat([heatmap[:, :, None], warped], dim=2).reshape(b, -1, d, h, w)
        prediction = self.hourglass(x)
        mask = F.softmax(self.mask(prediction), dim=1)
        deformation = (motions.permute(0, 1, 5, 2, 3, 4) * mask[:, :, None]).sum(dim=1)
        deformation = deformation.permute(0, 2, 3, 4, 1)
        occlusion = None
        if self.occlusion is not None:
            occlusion = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)))
        return deformation, occlusion

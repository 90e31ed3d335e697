"""The stitching and retargeting modules S, R_lip, R_eyes: small MLPs on flattened keypoints
(KwaiVGI/LivePortrait ``src/modules/stitching_retargeting_network.py``; sizes from
``src/config/models.yaml``; use in ``src/live_portrait_wrapper.py``).

Stitching: input the source's and the driving frame's keypoints, flattened and concatenated
(2 x 63 = 126 values), output 65 values: a correction of every driving keypoint (63) and one
extra (x, y) shift of all of them (2). The corrected keypoints are
``x_d + delta[:63]`` with ``delta[63:65]`` then added to every keypoint's x and y.
The eye (66 -> 63) and lip (65 -> 63) retargeting MLPs are loaded (the checkpoint holds
them) but not run by our generator: their inputs are eye/lip opening ratios measured on
InsightFace's 203-point landmarks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["StitchingRetargetingNetwork", "apply_stitching"]


class StitchingRetargetingNetwork(nn.Module):
    """Linear/ReLU MLP; keys ``mlp.{2i}.weight``/``bias`` for its linear layers."""

    def __init__(self, input_size: int, hidden_sizes: Sequence[int], output_size: int) -> None:
        super().__init__()
        sizes = [input_size, *hidden_sizes]
        layers: list[nn.Module] = []
        for width_in, width_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def apply_stitching(stitcher: nn.Module, kp_source: torch.Tensor,
                    kp_driving: torch.Tensor) -> torch.Tensor:
    """Driving keypoints (B, K, 3) corrected by the stitching MLP given the source's
    (1 or B, K, 3): ``x_d + delta_kp``, then ``+ delta_xy`` on x and y."""
    b, k = kp_driving.shape[:2]
    source = kp_source.reshape(kp_source.shape[0], -1).expand(b, -1)
    delta = stitcher(torch.cat([source, kp_driving.reshape(b, -1)], dim=1))
    moved = kp_driving + delta[:, :3 * k].reshape(b, k, 3)
    xy = moved[..., :2] + delta[:, 3 * k:3 * k + 2].reshape(b, 1, 2)
    return torch.cat([xy, moved[..., 2:]], dim=-1)

"""Thin-plate spline transforms between two keypoint sets (Eq. 2 of Zhao & Zhang, CVPR 2022).

TPSMM groups its keypoints in fives; each group defines one thin-plate spline that maps the
driving frame's coordinates to the source's: ``T(p) = A [p, 1] + sum_i w_i U(|p - c_i|)``
with control points ``c_i`` the driving keypoints, ``U(r) = r^2 log r^2`` and ``(A, w)``
the interpolation of the source keypoints at the control points. The arithmetic follows
``modules/util.py`` (class ``TPS``, mode ``'kp'``) of
https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model:

* the kernel is ``r2 * log(r2 + 1e-9)`` on squared distances (0 on the diagonal), the
  distances between control points taken as a 2-norm and then squared;
* the system ``L = [[K, P], [P^T, 0]]`` (P = control points with a column of ones) gets
  ``0.01`` added to its WHOLE diagonal (the zero block included): a smoothing regulariser
  that also keeps coincident keypoints solvable;
* it is solved by an explicit inverse, ``inv(L) @ Y`` with ``Y = [target; 0]``, as the
  original does (the same function as a linear solve; the inverse keeps its float32
  rounding closer to the original's).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["EPS", "REGULARISATION", "ThinPlateSpline", "fit_tps", "radial_kernel"]

#: Added to squared distances inside the logarithm (the original's 1e-9).
EPS = 1e-9
#: Added to the diagonal of the interpolation system (the original's 0.01 * identity).
REGULARISATION = 0.01


class ThinPlateSpline(NamedTuple):
    """A batch of thin-plate splines, one per (batch, group)."""

    #: Control points (B, G, N, 2), (x, y) in [-1, 1]: the driving keypoints.
    control: torch.Tensor
    #: Radial weights (B, G, N, 2).
    weights: torch.Tensor
    #: Affine part (B, G, 3, 2): rows multiply x, y and 1.
    affine: torch.Tensor

    def warp(self, points: torch.Tensor) -> torch.Tensor:
        """Map `points` (P, 2) through every spline: (B, G, P, 2)."""
        linear = points @ self.affine[..., :2, :] + self.affine[..., 2:, :]
        # squared distances of every point to every control point: (B, G, N, P)
        d2 = (points[None, None, None] - self.control[:, :, :, None]).pow(2).sum(-1)
        radial = radial_kernel(d2).transpose(-1, -2) @ self.weights
        return linear + radial


def radial_kernel(d2: torch.Tensor) -> torch.Tensor:
    """The thin-plate kernel on squared distances: ``d2 * log(d2 + EPS)``."""
    return d2 * torch.log(d2 + EPS)


def fit_tps(control: torch.Tensor, target: torch.Tensor) -> ThinPlateSpline:
    """The regularised splines taking `control` (B, G, N, 2) to `target` (B, G, N, 2)."""
    batch, groups, n, _ = control.shape
    k = radial_kernel(torch.linalg.vector_norm(
        control[:, :, :, None] - control[:, :, None, :], dim=-1).square())
    p = torch.cat([control, control.new_ones(batch, groups, n, 1)], dim=-1)  # (B, G, N, 3)
    system = torch.cat([torch.cat([k, p], dim=-1),
                        torch.cat([p.transpose(-1, -2), p.new_zeros(batch, groups, 3, 3)],
                                  dim=-1)], dim=-2)
    eye = torch.eye(n + 3, dtype=control.dtype, device=control.device)
    system = system + eye * REGULARISATION
    rhs = torch.cat([target, target.new_zeros(batch, groups, 3, 2)], dim=-2)
    solution = torch.linalg.inv(system) @ rhs
    return ThinPlateSpline(control, solution[..., :n, :], solution[..., n:, :])

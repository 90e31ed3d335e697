"""Relative keypoint motion, as the original demo's ``normalize_kp``.

The source keypoints are detected once; each driving frame's keypoints are taken relative to
the first driving frame: ``kp = kp_src + s (kp_drv - kp_drv0)`` and
``J = J_drv J_drv0^-1 J_src``, with ``s`` the square root of the ratio of the keypoints'
convex-hull areas (source over first driving frame) when ``adapt_scale``, else 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dfmnist.generators.fomm.keypoint_detector import Keypoints

__all__ = ["adapt_movement_scale", "hull_area", "relative_keypoints"]


def hull_area(points: np.ndarray) -> float:
    """Area of the 2D convex hull of `points` (N, 2) (Andrew's monotone chain; 0 if flat)."""
    pts = sorted({(float(x), float(y)) for x, y in np.asarray(points, dtype=np.float64)})
    if len(pts) < 3:
        return 0.0

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def chain(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out

    hull = chain(pts)[:-1] + chain(pts[::-1])[:-1]
    area = 0.0
    for (x0, y0), (x1, y1) in zip(hull, hull[1:] + hull[:1], strict=True):
        area += x0 * y1 - x1 * y0
    return abs(area) / 2.0


def adapt_movement_scale(kp_source: np.ndarray, kp_driving_initial: np.ndarray) -> float:
    """sqrt(source hull area / initial driving hull area) of two keypoint sets (K, 2); 1.0 if
    the driving keypoints are degenerate (zero area)."""
    driving = hull_area(kp_driving_initial)
    if driving <= 1e-12:
        return 1.0
    return math.sqrt(hull_area(kp_source)) / math.sqrt(driving)


def relative_keypoints(
    kp_source: Keypoints,
    kp_driving: Keypoints,
    kp_initial: Keypoints,
    relative: bool = True,
    scale: float = 1.0,
) -> Keypoints:
    """The driving keypoints moved onto the source (the original ``normalize_kp``).

    Relative: ``value = kp_source + scale * (kp_driving - kp_initial)`` and
    ``jacobian = (J_driving @ inv(J_initial)) @ J_source``; absolute: `kp_driving` unchanged.
    Batch-1 `kp_source`/`kp_initial` broadcast over `kp_driving`'s batch. At least float32.
    """
    if not relative:
        return kp_driving
    kp_source, kp_driving, kp_initial = (kp.full_width() for kp in (kp_source, kp_driving,
                                                                     kp_initial))
    value = kp_source.value + (kp_driving.value - kp_initial.value) * scale
    jac = kp_driving.jacobian
    if jac is not None and kp_initial.jacobian is not None and kp_source.jacobian is not None:
        jac = (jac @ torch.linalg.inv(kp_initial.jacobian)) @ kp_source.jacobian
    return Keypoints(value, jac)

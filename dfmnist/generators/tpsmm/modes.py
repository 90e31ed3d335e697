"""How driving keypoints become the keypoints that animate the source (``demo.py`` of
https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model).

* ``standard``: the driving frame's keypoints as they are.
* ``relative`` (the demo's default, ``relative_kp``): the motion since the initial driving
  frame, scaled and added to the source keypoints,
  ``kp = kp_src + s (kp_drv - kp_drv0)``, with ``s = sqrt(area(kp_src) / area(kp_drv0))``
  the ratio of the convex hulls of all ``num_tps * 5`` keypoints (always applied: the demo
  has no switch for it).
* ``avd``: the AVD network's re-posing of the driving keypoints onto the source identity.

The initial frame is the first, or with ``--find_best_frame`` the driving frame whose
facial landmarks, centred and divided by the square root of their hull area, are closest to
the source's (`best_frame`); the demo then animates forward and backward from it, which is
the relative motion of every frame against that one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dfmnist.generators.fomm.relative import adapt_movement_scale, hull_area

__all__ = ["MODES", "adapt_movement_scale", "best_frame", "normalised_landmarks",
           "relative_keypoints"]

#: The demo's ``--mode`` choices.
MODES = ("standard", "relative", "avd")


def relative_keypoints(kp_source: torch.Tensor, kp_driving: torch.Tensor,
                       kp_initial: torch.Tensor, scale: float) -> torch.Tensor:
    """``kp_source + scale * (kp_driving - kp_initial)``, in the demo's order of operations;
    batch-1 source and initial keypoints are shared by `kp_driving`'s batch."""
    return kp_source + (kp_driving - kp_initial) * scale


def normalised_landmarks(points: np.ndarray) -> np.ndarray | None:
    """Landmarks (N, 2) centred on their mean and divided by the square root of their convex
    hull's area (the demo's ``find_best_frame.normalize_kp``); None if the hull is flat."""
    centred = np.asarray(points, dtype=np.float64)
    centred = centred - centred.mean(axis=0, keepdims=True)
    area = hull_area(centred)
    if not area > 1e-12:
        return None
    return centred / math.sqrt(area)


def best_frame(source_landmarks: np.ndarray, driving_landmarks: np.ndarray) -> int:
    """The first driving frame whose normalised landmarks are closest (sum of squared
    differences) to the source's; 0 when no frame (or the source) has a usable hull, as the
    demo falls back to frame 0 when it finds no face."""
    source = normalised_landmarks(source_landmarks)
    best, index = math.inf, 0
    if source is None:
        return 0
    for t, points in enumerate(driving_landmarks):
        driving = normalised_landmarks(points)
        if driving is None:
            continue
        distance = float(((source - driving) ** 2).sum())
        if distance < best:
            best, index = distance, t
    return index

"""Thin-plate-spline image warping (backward mapping, rendered with cv2.remap)."""

from __future__ import annotations

import cv2
import numpy as np


def _kernel(r2: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        k = r2 * np.log(r2)
    return np.nan_to_num(k, nan=0.0, posinf=0.0, neginf=0.0)


class ThinPlateSpline:
    """The 2D TPS f with f(targets[i]) = sources[i], smoothing by `regularization`."""

    def __init__(self, targets: np.ndarray, sources: np.ndarray, regularization: float = 0.0):
        targets = np.asarray(targets, dtype=np.float64)
        sources = np.asarray(sources, dtype=np.float64)
        if targets.shape != sources.shape or targets.ndim != 2 or targets.shape[1] != 2:
            raise ValueError(f"control points must be (N, 2) pairs, got {targets.shape}, {sources.shape}")
        n = len(targets)
        if n < 3:
            raise ValueError("a thin-plate spline needs at least 3 control points")
        d2 = ((targets[:, None, :] - targets[None, :, :]) ** 2).sum(-1)
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = _kernel(d2) + regularization * np.eye(n)
        system[:n, n] = 1.0
        system[:n, n + 1 :] = targets
        system[n, :n] = 1.0
        system[n + 1 :, :n] = targets.T
        rhs = np.zeros((n + 3, 2))
        rhs[:n] = sources
        self.targets = targets
        self.coef = np.linalg.lstsq(system, rhs, rcond=None)[0]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        d2 = ((points[:, None, :] - self.targets[None, :, :]) ** 2).sum(-1)
        n = len(self.targets)
        return _kernel(d2) @ self.coef[:n] + self.coef[n] + points @ self.coef[n + 1 :]


def warp_maps(
    targets: np.ndarray, sources: np.ndarray, size: tuple[int, int], step: int = 4,
    regularization: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps for an output of `size` (width, height).

    The spline is smooth, so it is evaluated on a grid every `step` pixels and resized up.
    """
    width, height = size
    tps = ThinPlateSpline(targets, sources, regularization)
    gw, gh = max(2, -(-width // step) + 1), max(2, -(-height // step) + 1)
    gx = np.linspace(0, width - 1, gw)
    gy = np.linspace(0, height - 1, gh)
    grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    mapped = tps(grid).reshape(gh, gw, 2).astype(np.float32)
    map_x = cv2.resize(mapped[..., 0], (width, height), interpolation=cv2.INTER_LINEAR)
    map_y = cv2.resize(mapped[..., 1], (width, height), interpolation=cv2.INTER_LINEAR)
    return map_x, map_y


def warp_image(
    image: np.ndarray, targets: np.ndarray, sources: np.ndarray, step: int = 4,
    regularization: float = 0.0,
) -> np.ndarray:
    """Warp `image` so that the content at `sources` moves to `targets`."""
    h, w = image.shape[:2]
    map_x, map_y = warp_maps(targets, sources, (w, h), step=step, regularization=regularization)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def border_anchors(width: int, height: int, per_side: int = 4) -> np.ndarray:
    """Fixed points along the image border that pin the background in place."""
    xs = np.linspace(0, width - 1, per_side + 1)
    ys = np.linspace(0, height - 1, per_side + 1)
    top = np.stack([xs, np.zeros_like(xs)], 1)
    bottom = np.stack([xs, np.full_like(xs, height - 1)], 1)
    left = np.stack([np.zeros_like(ys[1:-1]), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], width - 1), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right])

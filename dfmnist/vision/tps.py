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
            raise ValueError(
                f"control points must be (N, 2) pairs, got {targets.shape}, {sources.shape}"
            )
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
        try:
            self.coef = np.linalg.solve(system, rhs)
        except np.linalg.LinAlgError:  # repeated control points: least squares instead
            self.coef = np.linalg.lstsq(system, rhs, rcond=None)[0]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        d2 = ((points[:, None, :] - self.targets[None, :, :]) ** 2).sum(-1)
        n = len(self.targets)
        return _kernel(d2) @ self.coef[:n] + self.coef[n] + points @ self.coef[n + 1 :]


class GridWarper:
    """Renders many TPS warps of one image size: the spline is evaluated on a cached grid every
    `step` pixels (it is smooth) and interpolated bilinearly, exactly at the grid points, to
    every pixel."""

    def __init__(self, width: int, height: int, step: int = 4) -> None:
        self.size = (int(width), int(height))
        self.step = max(1, int(step))
        gw = -(-(self.size[0] - 1) // self.step) + 1
        gh = -(-(self.size[1] - 1) // self.step) + 1
        self.shape = (gh, gw)
        gx = np.arange(gw, dtype=np.float64) * self.step
        gy = np.arange(gh, dtype=np.float64) * self.step
        self.grid = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        self._grid_sq = (self.grid**2).sum(1)
        xs = np.arange(self.size[0], dtype=np.float32) / self.step
        ys = np.arange(self.size[1], dtype=np.float32) / self.step
        self._up_x, self._up_y = np.meshgrid(xs, ys)

    def maps(self, targets: np.ndarray, sources: np.ndarray, regularization: float = 0.0
             ) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap maps (map_x, map_y) that move the content at `sources` to `targets`."""
        tps = ThinPlateSpline(targets, sources, regularization)
        n = len(tps.targets)
        d2 = self._grid_sq[:, None] + (tps.targets**2).sum(1)[None, :]
        d2 -= 2.0 * (self.grid @ tps.targets.T)
        np.maximum(d2, 1e-12, out=d2)
        mapped = d2 * np.log(d2) @ tps.coef[:n] + tps.coef[n] + self.grid @ tps.coef[n + 1 :]
        coarse = mapped.reshape(*self.shape, 2).astype(np.float32)
        return tuple(
            cv2.remap(np.ascontiguousarray(coarse[..., c]), self._up_x, self._up_y,
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for c in range(2)
        )

    def warp(self, image: np.ndarray, targets: np.ndarray, sources: np.ndarray,
             regularization: float = 0.0) -> np.ndarray:
        """Warp `image` so that the content at `sources` moves to `targets`."""
        map_x, map_y = self.maps(targets, sources, regularization)
        return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def warp_maps(
    targets: np.ndarray, sources: np.ndarray, size: tuple[int, int], step: int = 4,
    regularization: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps for an output of `size` (width, height); see GridWarper."""
    return GridWarper(size[0], size[1], step).maps(targets, sources, regularization)


def warp_image(
    image: np.ndarray, targets: np.ndarray, sources: np.ndarray, step: int = 4,
    regularization: float = 0.0,
) -> np.ndarray:
    """Warp `image` so that the content at `sources` moves to `targets`."""
    h, w = image.shape[:2]
    return GridWarper(w, h, step).warp(image, targets, sources, regularization)


def border_anchors(width: int, height: int, per_side: int = 4) -> np.ndarray:
    """Fixed points along the image border that pin the background in place."""
    xs = np.linspace(0, width - 1, per_side + 1)
    ys = np.linspace(0, height - 1, per_side + 1)
    top = np.stack([xs, np.zeros_like(xs)], 1)
    bottom = np.stack([xs, np.full_like(xs, height - 1)], 1)
    left = np.stack([np.zeros_like(ys[1:-1]), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], width - 1), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right])

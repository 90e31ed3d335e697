"""Rendering a posed face rig into an image, and what every demo video shares: the encoding,
one BLAS thread per spline solve, smooth seeded drifts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from dfmnist.demo.pose import FacePose
from dfmnist.demo.rig import FaceRig
from dfmnist.storage.video import Encoding
from dfmnist.vision.face_geometry import paint_cavity
from dfmnist.vision.tps import border_anchors, warp_maps

#: VoxCeleb is lossy H.264, and so is what a phone records.
DEMO_ENCODING = Encoding(codec="libx264", crf=18, preset="veryfast", pix_fmt="yuv420p")


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run numpy's BLAS on one thread inside the block.

    Every frame solves a small thin-plate-spline system; with several BLAS threads on busy
    cores (parallel Snakemake jobs, MTCNN) each solve is many times slower than on one thread.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def drift(rng: np.random.Generator, t: np.ndarray, amplitude: float, low: float,
           high: float, terms: int = 3) -> np.ndarray:
    """A smooth seeded wobble: a sum of sinusoids (frequencies in [low, high] Hz)."""
    freq = rng.uniform(low, high, terms)
    phase = rng.uniform(0, 2 * np.pi, terms)
    weight = rng.uniform(0.5, 1.0, terms)
    weight = weight / weight.sum()
    return amplitude * (weight[:, None] * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])
                        ).sum(0)


def camera_shake(rng: np.random.Generator, n: int, fps: float, width: int, height: int,
                 pixels: float | None = None) -> np.ndarray:
    """(n, 2, 3) affine matrices: a hand-held wobble of a few pixels and a fraction of a degree."""
    t = np.arange(n) / fps
    pixels = 0.005 * min(width, height) if pixels is None else pixels
    dx = drift(rng, t, pixels, 0.4, 2.5)
    dy = drift(rng, t, pixels, 0.4, 2.5)
    angle = drift(rng, t, 0.25, 0.3, 1.5)
    out = np.empty((n, 2, 3))
    for i in range(n):
        out[i] = cv2.getRotationMatrix2D((width / 2, height / 2), float(angle[i]), 1.0)
        out[i, :, 2] += (dx[i], dy[i])
    return out


_CAVITY_INNER = np.array([30.0, 10.0, 12.0])
_CAVITY_EDGE = np.array([85.0, 32.0, 36.0])


def paint_mouth_cavity(image: np.ndarray, rig: FaceRig, pose: FacePose,
                       offset: tuple[int, int] = (0, 0)) -> None:
    """Darken the gap a jaw drop opens between the lips (in place)."""
    if pose.jaw <= 0.02:
        return
    posed = rig.posed(pose)
    upper = rig.to_image(posed[rig.upper_lip])
    lower = rig.to_image(posed[rig.lower_lip])
    centre = (upper + lower) / 2 - np.asarray(offset, dtype=np.float64)
    hw = float(np.hypot(*(rig.mouth[1] - rig.mouth[0]))) / 2 * rig.iod
    half_h = max(0.5 * (np.hypot(*(lower - upper)) - 0.2 * rig.iod), 0.0)
    if half_h < 1.0:
        return
    # Darkest in the middle of the opening, the colour of the inner lips toward its edge.
    paint_cavity(image, centre, rig.axes[0], 0.55 * hw, half_h, _CAVITY_INNER, _CAVITY_EDGE,
                 opacity=0.9)


def coarse_step(iod: float) -> int:
    """Spline sampling step for head motion: smooth at the scale of a tenth of the IOD."""
    return int(np.clip(round(iod / 10), 2, 12))


def fine_step(iod: float) -> int:
    """Sampling step around the eyes and mouth: eyelid rows are 0.1 IOD apart."""
    return int(np.clip(round(iod / 20), 2, 6))


def render_pose(image: np.ndarray, rig: FaceRig, pose: FacePose, step: int = 4,
                roi: tuple[int, int, int, int] | None = None,
                fine_step: int | None = None) -> np.ndarray:
    """`image` with the face moved to `pose` (a copy); only `roi` (x0, y0, x1, y1) is warped.

    The spline is sampled every `step` pixels; with `fine_step`, the box around the eyes and
    mouth is sampled every `fine_step` pixels instead when the pose moves lids or lips.
    """
    out = image.copy()
    if pose.is_neutral():
        return out
    h, w = image.shape[:2]
    x0, y0, x1, y1 = roi if roi is not None else (0, 0, w, h)
    targets, sources = rig.control_points(pose)
    shift = np.array([x0, y0], dtype=np.float64)
    anchors = border_anchors(x1 - x0, y1 - y0, per_side=6)
    targets = np.concatenate([targets - shift, anchors])
    sources = np.concatenate([sources - shift, anchors])
    map_x, map_y = warp_maps(targets, sources, (x1 - x0, y1 - y0), step)
    expressive = bool(pose.blink or pose.widen or pose.smile or pose.jaw)
    if fine_step and fine_step < step and expressive:
        inner = np.concatenate([targets[rig.inner], sources[rig.inner]])
        pad = 0.2 * rig.iod
        fx0, fy0 = np.maximum(np.floor(inner.min(0) - pad).astype(int), 0)
        fx1, fy1 = np.minimum(np.ceil(inner.max(0) + pad).astype(int), [x1 - x0, y1 - y0])
        if fx1 - fx0 > 2 and fy1 - fy0 > 2:
            off = np.array([fx0, fy0], dtype=np.float64)
            fine_x, fine_y = warp_maps(targets - off, sources - off, (fx1 - fx0, fy1 - fy0),
                                       fine_step)
            map_x[fy0:fy1, fx0:fx1] = fine_x + fx0
            map_y[fy0:fy1, fx0:fx1] = fine_y + fy0
    region = cv2.remap(image[y0:y1, x0:x1], map_x, map_y, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT101)
    paint_mouth_cavity(region, rig, pose, offset=(x0, y0))
    out[y0:y1, x0:x1] = region
    return out

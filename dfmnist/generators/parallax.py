"""The landmark-warp generator's head turns: a similarity fit, the head model whose parallax
turns and pitches a face seen through five landmarks.

Points are complex numbers (x + iy, image pixels) here, as in the generator.
"""

from __future__ import annotations

import numpy as np

from dfmnist.vision.face_geometry import (
    LEFT_EYE,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE,
    RIGHT_EYE,
    FaceFrame,
    HeadShape,
)
from dfmnist.vision.motion import nose_drop, yaw_proxy

# The head in face units: a paraboloid cap over the generator's ring (depth 0 on the ring,
# 1 at its centre) plus a nose ridge (height, sigma across, sigma along), faded out toward the
# rim, centred _NOSE_RISE above the nose landmark so the bridge rises too.
_HEAD = dict(depth=1.0, profile="paraboloid", nose_height=0.35, nose_sigma=(0.3, 0.35),
             ridge_fade=0.5)
_NOSE_RISE = 0.1
_YAW_MAX_DEG = 45.0  # the parallax never turns the head further than this
_YAW_TABLE = np.radians(np.linspace(-60.0, 60.0, 121))  # angles for inverting yaw_proxy
_PITCH_MAX_DEG = 30.0  # nor pitches it further than this


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[complex, complex]:
    """Least-squares similarity z -> a z + b (complex a: rotation and scale) taking src to dst."""
    zs = src[:, 0] + 1j * src[:, 1]
    zd = dst[:, 0] + 1j * dst[:, 1]
    ms, md = zs.mean(), zd.mean()
    cs, cd = zs - ms, zd - md
    denom = float(np.sum(np.abs(cs) ** 2))
    a = complex(np.sum(np.conj(cs) * cd) / denom) if denom > 1e-12 else 1.0 + 0j
    return a, complex(md - a * ms)


def to_complex(points: np.ndarray) -> np.ndarray:
    return points[..., 0] + 1j * points[..., 1]


def to_xy(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1)


class HeadModel:
    """A rough head for yaw parallax, built from one face's five landmarks (image pixels).

    Face units: origin at the eye midpoint, x along the eye line, y down, 1 = inter-ocular
    distance. Depth is a paraboloid cap whose rim is the ring ellipse (centred on the landmark
    centroid, semi-axes `ring_scale` * (1.15, 1.45): the generator's rigid ring) plus a ridge
    along the nose (a gentle cap: a steep rim would squash the far cheek into a fold). Turning
    by yaw angle theta moves a point along the face x axis by
    ``(cos theta - 1) * x * cap + sin theta * depth`` (x from the ring centre): the centre of
    the face moves most, the rim not at all, the side turning away is compressed.
    """

    def __init__(self, landmarks: np.ndarray, ring_scale: float) -> None:
        lm = to_complex(np.asarray(landmarks, dtype=np.float64))
        face = FaceFrame.from_landmarks(landmarks)
        self.origin = (lm[LEFT_EYE] + lm[RIGHT_EYE]) / 2
        self.frame = max(face.iod, 1e-6) * complex(*face.axes[0])  # face x, in image pixels
        local = self.local(lm)
        self.centre = complex(local.mean())
        self.shape = HeadShape(centre=(self.centre.real, self.centre.imag),
                               axes=(ring_scale * 1.15, ring_scale * 1.45), **_HEAD)
        self.nose = to_xy(complex(local[NOSE] - 1j * _NOSE_RISE))
        self.landmarks = lm

    def local(self, z: np.ndarray) -> np.ndarray:
        """Image points (complex) in face units (complex)."""
        return (np.asarray(z) - self.origin) / self.frame

    def depth(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cap (0 on the ring, 1 at its centre) and the depth (face units) at image points."""
        w = to_xy(self.local(z))
        return self.shape.cap(w), self.shape.depth_at(w, self.nose)

    def shift(self, z: np.ndarray, theta: float | np.ndarray,
              phi: float | np.ndarray = 0.0) -> np.ndarray:
        """Image displacement (complex, pixels) of points `z` when the head yaws by `theta`
        radians (positive: the nose toward the image right) and pitches by `phi` (positive:
        looking up, the nose toward the forehead); the pitch works like the yaw along the face
        y axis. Angles broadcast over a leading axis when they are arrays."""
        cap, depth = self.depth(z)
        rel = self.local(z) - self.centre
        theta = np.asarray(theta, dtype=np.float64)[..., None] if np.ndim(theta) else theta
        phi = np.asarray(phi, dtype=np.float64)[..., None] if np.ndim(phi) else phi
        along_x = (np.cos(theta) - 1.0) * rel.real * cap + np.sin(theta) * depth
        along_y = (np.cos(phi) - 1.0) * rel.imag * cap - np.sin(phi) * depth
        return self.frame * (along_x + 1j * along_y)

    def yaw_angle(self, yaw_change: np.ndarray) -> np.ndarray:
        """Yaw angles (radians) whose parallax changes this face's `yaw_proxy` by
        `yaw_change` (clipped to +-_YAW_MAX_DEG)."""
        moved = self.landmarks[None, :] + self.shift(self.landmarks, _YAW_TABLE)
        curve = yaw_proxy(to_xy(moved)) - yaw_proxy(to_xy(self.landmarks))
        curve = np.maximum.accumulate(curve)  # monotone, for the inverse
        limit = np.radians(_YAW_MAX_DEG)
        theta = np.clip(np.interp(yaw_change, curve, _YAW_TABLE), -limit, limit)
        return np.where(np.asarray(yaw_change) == 0.0, 0.0, theta)  # exactly still at rest

    def pitch_angle(self, pitch_change: np.ndarray) -> np.ndarray:
        """Pitch angles (radians, positive up) whose parallax changes this face's
        `nose_drop` by `pitch_change` (it falls when looking up; clipped to
        +-_PITCH_MAX_DEG)."""
        moved = self.landmarks[None, :] + self.shift(self.landmarks, 0.0, _YAW_TABLE)
        with np.errstate(divide="ignore", invalid="ignore"):
            curve = nose_drop(to_xy(self.landmarks)) - nose_drop(to_xy(moved))
        curve = np.maximum.accumulate(np.nan_to_num(curve))  # monotone, for the inverse
        limit = np.radians(_PITCH_MAX_DEG)
        phi = np.clip(np.interp(-np.asarray(pitch_change), curve, _YAW_TABLE), -limit, limit)
        return np.where(np.asarray(pitch_change) == 0.0, 0.0, phi)


def interior_points(s: np.ndarray, fx: complex, fy: complex, iod: float) -> np.ndarray:
    """Control points over the face interior (complex): forehead, nose bridge and sides, under
    the nose, cheeks, temples and jaw, placed from the source landmarks."""
    eyes = (s[LEFT_EYE] + s[RIGHT_EYE]) / 2
    mouth = (s[MOUTH_LEFT] + s[MOUTH_RIGHT]) / 2
    nose = s[NOSE]
    # nose height below the eye line, and the mouth's, in face units along fy
    ny = max(((nose - eyes) / fy).real / iod, 0.25)
    my = max(((mouth - eyes) / fy).real / iod, ny + 0.2)
    pts = [
        eyes + iod * fy * -0.5, eyes + iod * fy * -0.85,
        eyes + iod * (-0.45 * fx - 0.75 * fy), eyes + iod * (0.45 * fx - 0.75 * fy),
        eyes + iod * fy * 0.02, (eyes + nose) / 2,
        nose - 0.2 * iod * fx, nose + 0.2 * iod * fx, (nose + mouth) / 2,
    ]
    for side in (-1.0, 1.0):
        pts += [
            eyes + iod * (side * 0.95 * fx - 0.2 * fy),  # temple
            eyes + iod * (side * 0.85 * fx + ny * fy),  # cheek, nose height
            eyes + iod * (side * 0.8 * fx + (ny + my) / 2 * fy),  # lower cheek
            mouth + iod * (side * 0.7 * fx + 0.05 * fy),  # beside the mouth
            mouth + iod * (side * 0.45 * fx + 0.4 * fy),  # jaw
        ]
    return np.array(pts)

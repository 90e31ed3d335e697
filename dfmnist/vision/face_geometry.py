"""Face geometry shared by the demo's face rig and the landmark-warp generator.

* The face frame: origin at the eye midpoint, x along the eye line (image left to right), y
  perpendicular to it (image down), unit = the inter-ocular distance (IOD), from MTCNN's five
  landmarks (left eye, right eye, nose, mouth left, mouth right).
* A head model: a dome over an ellipse in the face frame plus a ridge along the nose, which
  gives every control point a depth toward the camera (parallax when the head turns).
* Control points in named groups.
* The painter of an open mouth's dark cavity.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)


def face_axes(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit x along the eye line, unit y perpendicular (image-down), and the inter-ocular size."""
    d = lm[RIGHT_EYE] - lm[LEFT_EYE]
    iod = float(np.hypot(*d))
    ux = d / max(iod, 1e-9)
    uy = np.array([-ux[1], ux[0]])
    return ux, uy, iod


@dataclass(frozen=True)
class FaceFrame:
    """The face frame of one set of landmarks, and the maps between it and image pixels."""

    origin: np.ndarray  # eye midpoint, image px
    axes: np.ndarray  # (2, 2): rows ux, uy (image directions of the frame's x and y)
    iod: float

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> FaceFrame:
        lm = np.asarray(landmarks, dtype=np.float64)
        ux, uy, iod = face_axes(lm)
        return cls((lm[LEFT_EYE] + lm[RIGHT_EYE]) / 2, np.stack([ux, uy]), iod)

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """Image points (..., 2) in face units."""
        return (np.asarray(points, dtype=np.float64) - self.origin) @ self.axes.T / self.iod

    def to_image(self, local: np.ndarray) -> np.ndarray:
        """Face-frame points (..., 2) in image pixels."""
        return self.origin + (np.asarray(local) @ self.axes) * self.iod


class PointGroups:
    """Control points in named groups, stacked for one vectorised call and split back by
    name, so adding a point to one group cannot shift another group's values."""

    def __init__(self, **groups: np.ndarray) -> None:
        self.slices: dict[str, slice] = {}
        start = 0
        for name, points in groups.items():
            self.slices[name] = slice(start, start + len(points))
            start += len(points)
        self.points = np.concatenate(list(groups.values()))

    def split(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Per-point `values` (last axis along the points) by group name."""
        if values.shape[-1] != len(self.points):
            raise ValueError(f"{values.shape[-1]} values for {len(self.points)} points")
        return {name: values[..., part] for name, part in self.slices.items()}


@dataclass(frozen=True)
class HeadShape:
    """A head in face units: a dome over the ellipse `centre` +- `axes` (depth `depth` at its
    centre, 0 on the rim) plus a nose ridge (`nose_height`, Gaussian of `nose_sigma` across and
    along). `profile` 'ellipsoid' is a round head (steep at the rim); 'paraboloid' a gentle cap
    (a steep rim would squash the far cheek into a fold under a warp). With `ridge_fade` the
    ridge fades out where the dome is below that fraction of its height."""

    centre: tuple[float, float]
    axes: tuple[float, float]
    depth: float = 1.0
    profile: str = "ellipsoid"
    nose_height: float = 0.0
    nose_sigma: tuple[float, float] = (0.16, 0.16)
    ridge_fade: float | None = None

    def cap(self, local: np.ndarray) -> np.ndarray:
        """1 at the ellipse centre, 0 on and outside its rim: 1 - (x/a)^2 - (y/b)^2."""
        local = np.asarray(local, dtype=np.float64)
        u = (local[..., 0] - self.centre[0]) / self.axes[0]
        v = (local[..., 1] - self.centre[1]) / self.axes[1]
        return np.clip(1.0 - u**2 - v**2, 0.0, None)

    def depth_at(self, local: np.ndarray, nose: np.ndarray) -> np.ndarray:
        """Depth toward the camera (face units) at face-frame points, the ridge on `nose`."""
        local = np.asarray(local, dtype=np.float64)
        cap = self.cap(local)
        dome = np.sqrt(cap) if self.profile == "ellipsoid" else cap
        sx, sy = self.nose_sigma
        dx = (local[..., 0] - nose[0]) / sx
        dy = (local[..., 1] - nose[1]) / sy
        ridge = self.nose_height * np.exp(-0.5 * (dx**2 + dy**2))
        if self.ridge_fade:
            ridge = ridge * np.clip(cap / self.ridge_fade, 0.0, 1.0)
        return self.depth * dome + ridge


def paint_cavity(image: np.ndarray, centre: np.ndarray, axis: np.ndarray, half_w: float,
                 half_h: float, inner: np.ndarray, edge: np.ndarray | None = None,
                 opacity: float = 1.0) -> None:
    """Blend an open mouth's dark cavity into `image` in place: an ellipse of half-axes
    `half_w` along `axis` (the mouth line, any length) and `half_h` across, centred at
    `centre` (x, y pixels).

    Without `edge`: a solid ellipse of colour `inner`, anti-aliased at its rim. With `edge`:
    opacity falls off as a dome toward the rim and the colour goes from `inner` in the middle
    to `edge` (the inner lips) at the rim.
    """
    pad = int(np.ceil(max(half_w, half_h))) + 3
    cx, cy = int(round(float(centre[0]))), int(round(float(centre[1])))
    x0, x1 = max(0, cx - pad), min(image.shape[1], cx + pad + 1)
    y0, y1 = max(0, cy - pad), min(image.shape[0], cy + pad + 1)
    if x0 >= x1 or y0 >= y1:
        return
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / max(float(np.hypot(*axis)), 1e-12)
    inner = np.asarray(inner, dtype=np.float64)
    if edge is None:
        alpha = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        shift = 4  # sub-pixel precision for cv2.ellipse
        cv2.ellipse(
            alpha,
            (int(round((centre[0] - x0) * 2**shift)), int(round((centre[1] - y0) * 2**shift))),
            (int(round(half_w * 2**shift)), int(round(half_h * 2**shift))),
            float(np.degrees(np.arctan2(axis[1], axis[0]))), 0, 360, 1.0, thickness=-1,
            lineType=cv2.LINE_AA, shift=shift,
        )
        alpha = (opacity * cv2.GaussianBlur(alpha, (3, 3), 0))[..., None]
        roi = image[y0:y1, x0:x1].astype(np.float32)
        blended = roi * (1 - alpha) + inner.astype(np.float32) * alpha
    else:
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        px, py = xx - centre[0], yy - centre[1]
        u = (px * axis[0] + py * axis[1]) / half_w
        v = (px * -axis[1] + py * axis[0]) / half_h
        r2 = np.clip(u**2 + v**2, 0.0, 1.0)
        alpha = (opacity * (1.0 - r2) ** 0.5)[..., None]
        colour = inner + (np.asarray(edge, dtype=np.float64) - inner) * r2[..., None]
        blended = image[y0:y1, x0:x1].astype(np.float64) * (1 - alpha) + colour * alpha
    image[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)

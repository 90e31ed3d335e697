"""The demo's face rig: control points on a face in its face frame (see
`dfmnist.vision.face_geometry`), with depths from a head model, a pose of head angles and expression
amounts, and the 3D head rotation that moves them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfmnist.demo.expressions import expression_shift
from dfmnist.demo.pose import FacePose
from dfmnist.vision.face_geometry import FaceFrame, HeadShape, PointGroups

# The head: an ellipsoid in the face frame plus a round nose bump.
HEAD = HeadShape(centre=(0.0, 0.40), axes=(1.15, 1.50), depth=1.0, profile="ellipsoid",
                 nose_height=0.55, nose_sigma=(0.16, 0.16))
_HEAD_CENTRE = np.array(HEAD.centre)
_HEAD_AXES = np.array(HEAD.axes)
# Rings (as multiples of the head ellipse) and how much of the head rotation each follows.
_RINGS = ((0.9, 1.0, 14), (1.3, 0.6, 12), (2.3, 0.0, 12))


def _ellipse(scale: float, count: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, count, endpoint=False) + np.pi / count
    return _HEAD_CENTRE + scale * _HEAD_AXES * np.stack([np.cos(a), np.sin(a)], axis=1)


def _grid(centre: np.ndarray, dxs: tuple[float, ...], dys: tuple[float, ...]) -> np.ndarray:
    gx, gy = np.meshgrid(dxs, dys)
    return centre + np.stack([gx.ravel(), gy.ravel()], axis=1)


_EYE_DX = (-0.30, -0.15, 0.0, 0.15, 0.30)
_EYE_DY = (-0.38, -0.20, -0.10, 0.0, 0.07, 0.20)
_MOUTH_DY = (-0.12, 0.0, 0.12, 0.30)


@dataclass
class FaceRig:
    """Control points of one face, in its face frame, mapped to image pixels."""

    origin: np.ndarray  # eye midpoint, image px
    axes: np.ndarray  # (2, 2): rows ux, uy (image directions of the face frame's x and y)
    iod: float
    local: np.ndarray  # (N, 2) control points in the face frame
    depth: np.ndarray  # (N,) toward the camera, IOD units, relative to the head centre plane
    follow: np.ndarray  # (N,) how much of the head rotation each point follows (0 = fixed)
    eyes: np.ndarray  # (2, 2) eye landmarks, face frame
    mouth: np.ndarray  # (2, 2) mouth corners, face frame
    upper_lip: int  # index of the upper-lip centre point
    lower_lip: int  # index of the lower-lip centre point
    inner: slice  # the points on the face (eyes, brows, nose, mouth, chin); the rings follow

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> FaceRig:
        face = FaceFrame.from_landmarks(landmarks)
        if face.iod < 2.0:
            raise ValueError(f"face too small for the demo rig (inter-ocular {face.iod:.1f}px)")
        loc = face.to_local(landmarks)
        eyes, nose, mouth = loc[:2], loc[2], loc[3:5]
        mc = mouth.mean(0)
        hw = max(float(np.hypot(*(mouth[1] - mouth[0]))) / 2, 0.2)
        columns = (-hw, -hw / 2, 0.0, hw / 2, hw)
        face_points = {
            "left_eye": _grid(eyes[0], _EYE_DX, _EYE_DY),
            "right_eye": _grid(eyes[1], _EYE_DX, _EYE_DY),
            "mouth": _grid(mc, columns, _MOUTH_DY),
            "beyond_corners": np.array([[mc[0] - hw - 0.2, mc[1]], [mc[0] + hw + 0.2, mc[1]]]),
            "chin": np.array([[mc[0], mc[1] + 0.55], [mc[0] - 0.45, mc[1] + 0.45],
                              [mc[0] + 0.45, mc[1] + 0.45]]),
            "nose": np.array([nose, [0.0, 0.0], nose / 2]),  # tip and bridge
            "cheeks_forehead": np.array([[-0.75, 0.6], [0.75, 0.6], [0.0, -0.65],
                                         [-0.5, -0.6], [0.5, -0.6]]),
        }
        rings = {f"ring{k}": _ellipse(scale, count)
                 for k, (scale, _, count) in enumerate(_RINGS)}
        groups = PointGroups(**face_points, **rings)
        inner = slice(0, groups.slices["cheeks_forehead"].stop)
        follow = np.ones(len(groups.points))
        for k, (_, weight, _) in enumerate(_RINGS):
            follow[groups.slices[f"ring{k}"]] = weight
        # The mouth grid's point at dy=0, dx=0 is the seam the jaw opens around; the points a
        # row above and below it are the upper- and lower-lip centres.
        mouth_at = groups.slices["mouth"].start
        row = len(columns)
        seam = mouth_at + _MOUTH_DY.index(0.0) * row + columns.index(0.0)
        local = groups.points
        depth = HEAD.depth_at(local, nose)
        return cls(face.origin, face.axes, face.iod, local, depth, follow, eyes.copy(),
                   mouth.copy(), seam - row, seam + row, inner)

    def to_image(self, local: np.ndarray) -> np.ndarray:
        return self.origin + (np.asarray(local) @ self.axes) * self.iod

    def posed(self, pose: FacePose) -> np.ndarray:
        """The control points under `pose`, in the face frame."""
        moved = self.local + expression_shift(self, pose)
        rotated = rotate_head(moved - _HEAD_CENTRE, self.depth, pose) + _HEAD_CENTRE
        return moved + self.follow[:, None] * (rotated - moved)

    def control_points(self, pose: FacePose) -> tuple[np.ndarray, np.ndarray]:
        """(targets, sources) in image pixels for tps.warp_image."""
        return self.to_image(self.posed(pose)), self.to_image(self.local)

    def roi(self, width: int, height: int, pad: int = 4) -> tuple[int, int, int, int]:
        """x0, y0, x1, y1 of the image region any pose can change (the fixed outer ring's box)."""
        pts = self.to_image(self.local[self.follow == 0.0])
        x0, y0 = np.floor(pts.min(0)).astype(int) - pad
        x1, y1 = np.ceil(pts.max(0)).astype(int) + pad
        return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def rotate_head(rel: np.ndarray, depth: np.ndarray, pose: FacePose) -> np.ndarray:
    """Rotate (x, y, depth) points about the head centre by yaw, pitch, then roll; project."""
    ya, pi, ro = np.radians([pose.yaw, pose.pitch, pose.roll])
    x, y, z = rel[:, 0], rel[:, 1], depth
    x, z = x * np.cos(ya) + z * np.sin(ya), z * np.cos(ya) - x * np.sin(ya)
    y = y * np.cos(pi) + z * np.sin(pi)
    x, y = x * np.cos(ro) - y * np.sin(ro), x * np.sin(ro) + y * np.cos(ro)
    return np.stack([x, y], axis=1)

"""Aligned face crops: a similarity transform from MTCNN's five landmarks to a mean face.

The mean face (`TEMPLATE_IOD`) is the published five-point template of the SphereFace/ArcFace
face-recognition crops (96x112, then 112x112 with 8 px added on the left): left eye
(38.2946, 51.6963), right eye (73.5318, 51.5014), nose (56.0252, 71.7366), mouth left
(41.5493, 92.3655), mouth right (70.7299, 92.2041) in a 112x112 crop: the reference points
those projects align MTCNN's five landmarks to, a mean face of their training sets, in MTCNN's
own order (left eye, right eye, nose, mouth left, mouth right; image left/right), the order
`dfmnist.vision.faces.FaceTrack` holds.
Here they are kept in face units: origin at the eye midpoint, x along the eye line, unit = the
inter-ocular distance (IOD), so only the face's shape is taken from that crop, not its framing.

The framing is faceswap's: the *template square* is its "face"-centred extract of a frontal
face (lib/align/aligned_face.py at `losses.FACESWAP_COMMIT`), computed from its 51-point mean
face (``_MEAN_FACE``; eye centre = mean of a six-point eye contour, IOD 0.5293 units): the
legacy square (the mean face's unit square, ``_EXTRACT_RATIOS["legacy"]`` 0.375 padding) is
moved by the pose offset of its 3D point (0, -1.5, 4.2) (``PoseEstimate._get_offset``, solved
by ``cv2.solvePnP`` on the mean face's own 3D points, those of the jaw left out as its 2D mean
face has none) and grown to ratio 0.5 (``_EXTRACT_RATIOS["face"]``): `TEMPLATE_SIDE` = 3.779
IOD wide, centred `TEMPLATE_CENTRE_DROP` = 0.220 IOD below the eye midpoint. `coverage` shows
the central fraction of it, as faceswap's ``coverage`` does: its default 87.5 %
(`DEFAULT_COVERAGE`) is 3.31 IOD, from 1.43 IOD above the eyes (mid-forehead) to 1.87 below
(the chin), ear to ear. faceswap moves the
face-centred square with the head's yaw and pitch (the skull's centre); ours stays at the
frontal place, so a turned head sits off centre by that much.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Five-point mean face in IOD units relative to the eye midpoint (x right, y down); the
#: SphereFace/ArcFace template (see the module docstring) divided by its 35.24 px IOD.
_ARCFACE_112 = np.array([
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
    [41.5493, 92.3655], [70.7299, 92.2041],
])


def _face_units(points: np.ndarray) -> np.ndarray:
    eyes = (points[0] + points[1]) / 2
    d = points[1] - points[0]
    iod = float(np.hypot(*d))
    c, s = d / iod
    rot = np.array([[c, s], [-s, c]])  # level the eye line
    return (points - eyes) @ rot.T / iod


TEMPLATE_IOD: np.ndarray = _face_units(_ARCFACE_112)
#: Side of the template square (coverage 1.0), in IOD: faceswap's face-centred extract.
TEMPLATE_SIDE: float = 3.779
#: The template square's centre lies this many IOD below the eye midpoint.
TEMPLATE_CENTRE_DROP: float = 0.220
#: faceswap's default coverage, 87.5 % (plugins/train/_config.py 59): crops of 3.31 IOD.
DEFAULT_COVERAGE: float = 0.875
#: Landmarks whose eyes are closer than this (frame pixels) cannot be aligned.
MIN_IOD_PX: float = 2.0


def template_points(size: int, coverage: float) -> np.ndarray:
    """The template's five landmarks (5, 2) in pixels of a `size` crop at `coverage`."""
    _check_crop(size, coverage)
    scale = size / (TEMPLATE_SIDE * coverage)
    centre = np.array([0.0, TEMPLATE_CENTRE_DROP])
    return (TEMPLATE_IOD - centre) * scale + size / 2


def _check_crop(size: int, coverage: float) -> None:
    if int(size) != size or size < 8:
        raise ValueError(f"crop size must be an integer >= 8, got {size!r}")
    if not 0.0 < float(coverage) <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage!r}")


def umeyama(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking `source` points
    (K, 2) onto `target` (K, 2), as a 2x3 matrix (Umeyama 1991, reflections excluded)."""
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    if var_s <= 0:
        raise ValueError("landmarks are all at one point")
    cov = d0.T @ s0 / len(src)
    u, sing, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = float((sing * sign).sum() / var_s)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - scale * rot @ mu_s
    return matrix


def invert_affine(matrices: np.ndarray) -> np.ndarray:
    """Inverse of each 2x3 affine matrix (..., 2, 3)."""
    m = np.asarray(matrices, dtype=np.float64)
    lin_inv = np.linalg.inv(m[..., :2])
    out = np.empty_like(m)
    out[..., :2] = lin_inv
    out[..., 2] = -(lin_inv @ m[..., 2:3])[..., 0]
    return out


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (..., K, 2) mapped through one 2x3 matrix or a matching stack (..., 2, 3)."""
    m = np.asarray(matrix, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return p @ np.swapaxes(m[..., :2], -1, -2) + m[..., None, :, 2]


def usable_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(N,) bool: landmark sets that can be aligned (all finite, eyes `MIN_IOD_PX` apart)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (5, 2):
        raise ValueError(f"landmarks must be (N, 5, 2), got shape {lm.shape}")
    finite = np.isfinite(lm).all(axis=(1, 2))
    iod = np.hypot(*(np.nan_to_num(lm[:, 1] - lm[:, 0])).T)
    return finite & (iod >= MIN_IOD_PX)


@dataclass
class AlignedFaces:
    """Aligned crops (N, S, S, 3) uint8 RGB and their matrices (N, 2, 3) float64, frame -> crop."""

    crops: np.ndarray
    matrices: np.ndarray

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    @property
    def size(self) -> int:
        return int(self.crops.shape[1])

    @property
    def inverse(self) -> np.ndarray:
        """(N, 2, 3) crop -> frame matrices."""
        return invert_affine(self.matrices)

    def crop_landmarks(self, landmarks: np.ndarray) -> np.ndarray:
        """Frame landmarks (N, K, 2) in crop pixels."""
        return transform_points(self.matrices, landmarks)


def alignment_matrices(landmarks: np.ndarray, size: int, coverage: float) -> np.ndarray:
    """(N, 2, 3) frame -> crop matrices taking each landmark set onto the template."""
    _check_crop(size, coverage)
    lm = np.asarray(landmarks, dtype=np.float64)
    ok = usable_landmarks(lm)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        raise ValueError(
            f"{len(bad)} landmark set(s) cannot be aligned (NaN or eyes < {MIN_IOD_PX} px apart),"
            f" first at index {int(bad[0])}"
        )
    target = template_points(size, coverage)
    return np.stack([umeyama(points, target) for points in lm]) if len(lm) else np.empty((0, 2, 3))


def warp_to_crop(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """One frame warped into a `size` crop; outside the frame repeats the frame's edge."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    # cubic when the crop enlarges the frame; linear (no ringing) when it shrinks it
    flags = cv2.INTER_CUBIC if scale > 1.0 else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, matrix, (size, size), flags=flags,
                          borderMode=cv2.BORDER_REPLICATE)


def align_faces(frames: np.ndarray, landmarks: np.ndarray, size: int,
                coverage: float) -> AlignedFaces:
    """Crop each frame's face onto the mean-face template (see the module docstring).

    frames (N, H, W, 3) uint8 RGB; landmarks (N, 5, 2) in MTCNN's order, frame pixels; every
    set must be usable (`usable_landmarks`). Training and conversion crops both come from here.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (len(frames), 5, 2):
        raise ValueError(f"landmarks must be ({len(frames)}, 5, 2), got shape {lm.shape}")
    size = int(size)
    matrices = alignment_matrices(lm, size, coverage)
    crops = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for i, (frame, matrix) in enumerate(zip(frames, matrices, strict=True)):
        crops[i] = warp_to_crop(frame, matrix, size)
    return AlignedFaces(crops, matrices)

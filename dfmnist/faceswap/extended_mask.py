"""faceswap's default mask, "extended", approximated from MTCNN's five landmarks.

faceswap (plugins/extract/mask/extended.py at `losses.FACESWAP_COMMIT`) fills the convex hulls
of groups of the 68 landmarks: jaw, cheeks, nose and eyebrows, with each eyebrow first raised
by half its distance from the eye below it (from a point a quarter of the way from the outer
eye corner to the jaw's end, then the eye contour), so the mask covers the lower forehead.
The union is one convex polygon: the jaw line below, the raised brows on top.

Five points have no jaw or brows, so the polygon is that hull on a mean face, moved with the
face: `EXTENDED_HULL` applies faceswap's rule to the 68-point mean shape of dlib's predictor as
OpenFace publishes it (cmusatyalab/openface, openface/align_dlib.py, ``TEMPLATE``, Apache-2.0),
made left-right symmetric, with x in inter-ocular distances (IOD) along the eye line from the
eye midpoint and y in eye-to-mouth drops (the mouth corners' midpoint lies 1.09 IOD below the
eyes on that mean face) down from the eye line. On a face, x scales with its IOD and y with
its own drop, so the mask keeps the face's height when a turned head shortens the IOD, as the
landmark ellipse of `blend` does. Difference from faceswap's: the jaw and brows follow the
mean shape rather than the face's own contour (a wide jaw or an open mouth's lowered chin is
not followed), and a turned head's hull stays symmetric about the eye midpoint.

Then faceswap's training-mask finish (lib/align/detected_face.py, ``Mask.mask``, 474-487, set
by ``mask_threshold`` 4 and ``mask_blur_kernel`` 3): values within 4 % of 0 or 1 snap to it,
then a Gaussian of kernel 3 (sigma 0.8 px) on its 128 px stored mask, which spans the
face-centred extract (`align.TEMPLATE_SIDE` IOD): `BLUR_SIGMA_IOD`.
"""

from __future__ import annotations

import cv2
import numpy as np

from dfmnist.faceswap.align import TEMPLATE_SIDE
from dfmnist.vision.face_geometry import (
    LEFT_EYE,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    RIGHT_EYE,
    face_axes,
)

#: The right half of the extended hull (x >= 0), top to chin: x in IOD, y in eye-to-mouth
#: drops below the eye line (see the module docstring). The left half mirrors it.
EXTENDED_HULL_RIGHT = np.array([
    [0.589, -0.465], [0.821, -0.459], [0.981, -0.302], [1.166, 0.013], [1.161, 0.297],
    [1.130, 0.583], [1.069, 0.867], [0.949, 1.129], [0.764, 1.360], [0.539, 1.556],
    [0.286, 1.717], [0.0, 1.763],
])
EXTENDED_HULL = np.concatenate([
    EXTENDED_HULL_RIGHT, EXTENDED_HULL_RIGHT[-2::-1] * [-1.0, 1.0],
])
#: faceswap's mask_threshold (percent) as a fraction of full scale.
MASK_THRESHOLD = 0.04
#: Its Gaussian of kernel 3 (OpenCV: sigma 0.3 ((3 - 1) / 2 - 1) + 0.8 = 0.8 px) on its 128 px
#: stored mask, in IOD.
BLUR_SIGMA_IOD = 0.8 * TEMPLATE_SIDE / 128
#: The smallest drop taken as a face's vertical unit, in IOD (a degenerate set of landmarks
#: with the mouth on the eye line still gets a face-sized mask).
MIN_DROP_IOD = 0.5


def extended_hull(landmarks: np.ndarray) -> np.ndarray:
    """The extended polygon (K, 2) in the pixels of five landmarks (5, 2), MTCNN's order."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.isfinite(lm).all():
        raise ValueError(f"landmarks must be five finite (x, y) points, got {lm.shape}")
    eyes = (lm[LEFT_EYE] + lm[RIGHT_EYE]) / 2
    ux, uy, iod = face_axes(lm)  # uy: image-down on an upright face
    if iod < 1e-6:
        raise ValueError("the eyes are at one point: no face frame")
    drop = float(((lm[MOUTH_LEFT] + lm[MOUTH_RIGHT]) / 2 - eyes) @ uy)
    drop = max(drop, MIN_DROP_IOD * iod)
    return eyes + np.outer(EXTENDED_HULL[:, 0] * iod, ux) + np.outer(EXTENDED_HULL[:, 1] * drop, uy)


def extended_mask(landmarks: np.ndarray, shape: int | tuple[int, int],
                  finish: bool = True) -> np.ndarray:
    """The extended mask of one face, float32 (H, W) in [0, 1]: its polygon filled with
    anti-aliased edges (1/16 px vertex precision), and with `finish` faceswap's threshold and
    blur (see the module docstring)."""
    height, width = (shape, shape) if isinstance(shape, int) else shape
    polygon = extended_hull(landmarks)
    canvas = np.zeros((height, width), np.float32)
    cv2.fillConvexPoly(canvas, np.round(polygon * 16).astype(np.int32), 1.0,
                       lineType=cv2.LINE_AA, shift=4)
    if not finish:
        return canvas
    canvas[canvas < MASK_THRESHOLD] = 0.0
    canvas[canvas > 1.0 - MASK_THRESHOLD] = 1.0
    lm = np.asarray(landmarks, dtype=np.float64)
    sigma = BLUR_SIGMA_IOD * float(np.hypot(*(lm[RIGHT_EYE] - lm[LEFT_EYE])))
    if sigma >= 0.3:  # below that a Gaussian kernel is a single tap
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    return np.clip(canvas, 0.0, 1.0)

"""Head-pose proxies and eye/mouth openness from MTCNN's five landmarks and the face image.

Landmarks are (..., 5, 2) in MTCNN order: left eye, right eye, nose, mouth left, mouth right
(image left/right). All measures are scale-free (divided by the inter-ocular distance).
"""

from __future__ import annotations

import cv2
import numpy as np

LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)


def interocular(lms: np.ndarray) -> np.ndarray:
    return np.linalg.norm(lms[..., RIGHT_EYE, :] - lms[..., LEFT_EYE, :], axis=-1)


def roll_degrees(lms: np.ndarray) -> np.ndarray:
    """In-plane head tilt: the angle of the eye line (positive: right eye lower, in image terms)."""
    d = lms[..., RIGHT_EYE, :] - lms[..., LEFT_EYE, :]
    return np.degrees(np.arctan2(d[..., 1], d[..., 0]))


def _derolled(lms: np.ndarray) -> np.ndarray:
    """Landmarks rotated so that the eye line is horizontal, centred on the eye midpoint."""
    angle = np.radians(roll_degrees(lms))
    c, s = np.cos(-angle), np.sin(-angle)
    centre = (lms[..., LEFT_EYE, :] + lms[..., RIGHT_EYE, :]) / 2
    rel = lms - centre[..., None, :]
    x = rel[..., 0] * c[..., None] - rel[..., 1] * s[..., None]
    y = rel[..., 0] * s[..., None] + rel[..., 1] * c[..., None]
    return np.stack([x, y], axis=-1)


def yaw_proxy(lms: np.ndarray) -> np.ndarray:
    """Horizontal offset of the nose from the face midline, in inter-ocular units (0 = frontal)."""
    r = _derolled(lms)
    midline = (r[..., LEFT_EYE, 0] + r[..., RIGHT_EYE, 0] + r[..., MOUTH_LEFT, 0]
               + r[..., MOUTH_RIGHT, 0]) / 4
    return (r[..., NOSE, 0] - midline) / interocular(lms)


def pitch_proxy(lms: np.ndarray) -> np.ndarray:
    """Where the nose sits between the eye line (0) and the mouth line (1); smaller = looking up."""
    r = _derolled(lms)
    mouth_y = (r[..., MOUTH_LEFT, 1] + r[..., MOUTH_RIGHT, 1]) / 2
    return r[..., NOSE, 1] / np.maximum(mouth_y, 1e-6)


def mouth_width(lms: np.ndarray) -> np.ndarray:
    """Mouth-corner distance in inter-ocular units (grows with a smile)."""
    return np.linalg.norm(lms[..., MOUTH_RIGHT, :] - lms[..., MOUTH_LEFT, :], axis=-1) / interocular(
        lms
    )


def face_height(lms: np.ndarray) -> np.ndarray:
    """Eye-line to mouth-line distance in inter-ocular units (shrinks when nodding away)."""
    r = _derolled(lms)
    return ((r[..., MOUTH_LEFT, 1] + r[..., MOUTH_RIGHT, 1]) / 2) / interocular(lms)


#: Typical frontal value of `pitch_proxy` (nose about 55% of the way from eyes to mouth).
FRONTAL_PITCH = 0.55


def frontalness(lms: np.ndarray) -> np.ndarray:
    """A frontal-pose score in (0, 1]: 1 is a perfectly frontal, upright face."""
    penalty = (
        np.abs(yaw_proxy(lms)) / 0.25
        + np.abs(roll_degrees(lms)) / 20.0
        + np.abs(pitch_proxy(lms) - FRONTAL_PITCH) / 0.25
    )
    return 1.0 / (1.0 + penalty)


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (higher is sharper)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def pose_table(lms: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame pose proxies for a (T, 5, 2) landmark track."""
    return {
        "yaw": yaw_proxy(lms),
        "pitch": pitch_proxy(lms),
        "roll": roll_degrees(lms),
        "mouth_width": mouth_width(lms),
        "face_height": face_height(lms),
    }

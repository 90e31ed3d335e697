"""Head-pose proxies and eye/mouth openness from MTCNN's five landmarks and the face image.

Landmarks are (..., 5, 2) in MTCNN order: left eye, right eye, nose, mouth left, mouth right
(image left/right). All measures are scale-free (divided by the inter-ocular distance).
"""

from __future__ import annotations

import cv2
import numpy as np

from dfmnist.vision.face_geometry import (
    LEFT_EYE,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE,
    RIGHT_EYE,
    face_axes,
)

__all__ = ["LEFT_EYE", "MOUTH_LEFT", "MOUTH_RIGHT", "NOSE", "RIGHT_EYE", "eye_openness",
           "face_axes", "face_height", "frontalness", "interocular", "motion_features",
           "mouth_openness", "mouth_width", "nose_drop", "pitch_proxy", "pose_table",
           "roll_degrees", "sharpness", "yaw_proxy"]


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


def nose_drop(lms: np.ndarray) -> np.ndarray:
    """How far the nose sits below the eye line, in inter-ocular units (smaller = looking up).
    Unlike `pitch_proxy` it ignores the mouth, which moves with expressions."""
    return _derolled(lms)[..., NOSE, 1] / interocular(lms)


def mouth_width(lms: np.ndarray) -> np.ndarray:
    """Mouth-corner distance in inter-ocular units (grows with a smile)."""
    width = np.linalg.norm(lms[..., MOUTH_RIGHT, :] - lms[..., MOUTH_LEFT, :], axis=-1)
    return width / interocular(lms)


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


# --- Eye and mouth openness: image measures at the landmarks ------------------------------------
#
# Five MTCNN points do not move when the eyes close or the jaw drops, so openness is read from
# the image: small patches are resampled in a face-aligned frame (x along the eye line, y down,
# unit = inter-ocular distance), and the fraction of "dark" pixels is counted. A pixel is dark
# when its red-channel value is below `dark_ratio` times the skin level, the median of a patch on
# the nose bridge. The red channel keeps lips and skin close while pupils, lashes and the mouth
# cavity stay dark. Both measures are scale-free, roll-invariant and insensitive to a global
# brightness factor.

#: Eye patch half-size (x, y) around each eye landmark, in inter-ocular units.
EYE_PATCH = (0.12, 0.13)
#: Mouth patch: x spans this fraction of the corner-to-corner half-width; y from -up to +down.
MOUTH_PATCH = (0.75, 0.12, 0.22)
#: Skin reference patch half-size, centred halfway between the eye midpoint and the nose.
SKIN_PATCH = 0.12
#: A pixel is dark below this fraction of the skin level.
DARK_RATIO = 0.5
_PATCH_PX = 24


def _as_track(frames: np.ndarray, lms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames = np.asarray(frames)
    lms = np.asarray(lms, dtype=np.float64)
    if frames.ndim in (2, 3) and lms.shape == (5, 2):
        frames, lms = frames[None], lms[None]
    if frames.ndim == 3:  # (T, H, W) grey
        frames = frames[..., None]
    if frames.ndim != 4 or lms.ndim != 3 or lms.shape[1:] != (5, 2):
        raise ValueError(f"expected frames (T, H, W[, C]) and landmarks (T, 5, 2), "
                         f"got {frames.shape} and {lms.shape}")
    if len(frames) != len(lms):
        raise ValueError(f"{len(frames)} frames but {len(lms)} landmark sets")
    return frames, lms


def _luma(patch: np.ndarray) -> np.ndarray:
    """The channel used for darkness: red for colour images (lips ~ skin), else the grey."""
    if patch.ndim == 3 and patch.shape[-1] >= 3:
        return patch[..., 0].astype(np.float32)
    return patch.reshape(patch.shape[:2]).astype(np.float32)


def _patch(frame: np.ndarray, centre: np.ndarray, ux: np.ndarray, uy: np.ndarray,
           half: tuple[float, float], px: int = _PATCH_PX) -> np.ndarray:
    """Resample the rectangle centre +- half[0]*ux +- half[1]*uy to a (h, px) luma patch."""
    hx, hy = half
    h = max(2, int(round(px * hy / hx)))
    # Patch pixel (i, j) -> image point centre + ((i+0.5)/px*2-1)*hx*ux + ((j+0.5)/h*2-1)*hy*uy.
    ax = ux * (2 * hx / px)
    ay = uy * (2 * hy / h)
    origin = centre - hx * ux - hy * uy + 0.5 * ax + 0.5 * ay
    m = np.array([[ax[0], ay[0], origin[0]], [ax[1], ay[1], origin[1]]], dtype=np.float64)
    img = frame if frame.shape[-1] in (1, 3) else np.ascontiguousarray(frame[..., :3])
    out = cv2.warpAffine(img, m, (px, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return _luma(out)


def _skin_level(frame: np.ndarray, lm: np.ndarray, ux: np.ndarray, uy: np.ndarray,
                iod: float) -> float:
    centre = ((lm[LEFT_EYE] + lm[RIGHT_EYE]) / 2 + lm[NOSE]) / 2
    patch = _patch(frame, centre, ux * iod, uy * iod, (SKIN_PATCH, SKIN_PATCH), px=16)
    return float(np.median(patch))


def _dark_fraction(patch: np.ndarray, skin: float, dark_ratio: float) -> float:
    return float(np.mean(patch < dark_ratio * max(skin, 1.0)))


def _measurable(frames: np.ndarray, lms: np.ndarray):
    """(index, frame, landmarks, face axes (ux, uy, iod), skin level) of each frame whose
    landmarks are finite and apart: the frames an openness can be measured on."""
    for t, (frame, lm) in enumerate(zip(frames, lms, strict=True)):
        if not np.isfinite(lm).all():
            continue
        ux, uy, iod = face_axes(lm)
        if iod < 1e-6:
            continue
        yield t, frame, lm, (ux, uy, iod), _skin_level(frame, lm, ux, uy, iod)


def eye_openness(
    frames: np.ndarray, lms: np.ndarray, dark_ratio: float = DARK_RATIO
) -> np.ndarray:
    """Per-frame eye openness (T,): dark fraction in patches around both eyes, averaged.

    Each patch is `EYE_PATCH` inter-ocular units around the eye landmark, aligned with the eye
    line; it drops when lids close over the iris and rises when the eyes widen. NaN where the
    landmarks are not finite.
    """
    frames, lms = _as_track(frames, lms)
    out = np.full(len(frames), np.nan)
    for t, frame, lm, (ux, uy, iod), skin in _measurable(frames, lms):
        vals = [
            _dark_fraction(_patch(frame, lm[i], ux * iod, uy * iod, EYE_PATCH), skin, dark_ratio)
            for i in (LEFT_EYE, RIGHT_EYE)
        ]
        out[t] = float(np.mean(vals))
    return out


def mouth_openness(
    frames: np.ndarray, lms: np.ndarray, dark_ratio: float = DARK_RATIO
) -> np.ndarray:
    """Per-frame mouth openness (T,): dark fraction in the region between the mouth corners.

    The region spans the inner part of the corner-to-corner segment and extends `MOUTH_PATCH`
    inter-ocular units above and below it (more below: the jaw drops); an open mouth shows a
    dark cavity there. NaN where the landmarks are not finite.
    """
    frames, lms = _as_track(frames, lms)
    frac, up, down = MOUTH_PATCH
    out = np.full(len(frames), np.nan)
    for t, frame, lm, (_, _, iod), skin in _measurable(frames, lms):
        corners = lm[MOUTH_RIGHT] - lm[MOUTH_LEFT]
        width = float(np.hypot(*corners))
        mx = corners / max(width, 1e-9)
        my = np.array([-mx[1], mx[0]])
        half_w = max(frac * width / 2, 0.05 * iod)
        centre = (lm[MOUTH_LEFT] + lm[MOUTH_RIGHT]) / 2 + my * (down - up) / 2 * iod
        half_h = (up + down) / 2 * iod
        patch = _patch(frame, centre, mx, my, (half_w, half_h))
        out[t] = _dark_fraction(patch, skin, dark_ratio)
    return out


def motion_features(frames: np.ndarray, lms: np.ndarray) -> dict[str, np.ndarray]:
    """`pose_table` plus `eye_open` and `mouth_open` for a (T, 5, 2) track and its frames."""
    frames, lms = _as_track(frames, lms)
    table = pose_table(lms)
    table["eye_open"] = eye_openness(frames, lms)
    table["mouth_open"] = mouth_openness(frames, lms)
    return table

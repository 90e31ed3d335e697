"""Face-local motions of the demo rig's control points: eyelids, jaw, smile (face frame, IOD)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dfmnist.demo.pose import FacePose

if TYPE_CHECKING:
    from dfmnist.demo.rig import FaceRig


def _window(d: np.ndarray, full: float, zero: float) -> np.ndarray:
    """1 for |d| <= full, cosine falloff to 0 at |d| = zero."""
    x = np.clip((np.abs(d) - full) / (zero - full), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))


# Eyelid profiles: vertical shift (IOD) against the offset below the eye centre.
_LID_DY = (-0.55, -0.38, -0.20, -0.10, 0.0, 0.07, 0.20, 0.35)
_BLINK_SHIFT = (0.0, 0.0, 0.05, 0.135, 0.05, -0.01, 0.0, 0.0)
_WIDEN_SHIFT = (0.0, -0.12, -0.09, -0.05, 0.0, 0.025, 0.0, 0.0)
# Jaw profile: vertical shift (fraction of the drop) against the offset below the mouth line.
_JAW_DY = (-0.30, -0.12, 0.0, 0.12, 0.30, 0.55, 0.90, 1.40)
_JAW_SHIFT = (0.0, -0.03, 0.45, 1.0, 1.0, 0.9, 0.4, 0.0)


def eyelid_shift(rig: FaceRig, blink: float, widen: float) -> np.ndarray:
    """Eyelid displacements: `blink` closes the eyes, `widen` opens them wide.

    Blink: the upper lid (below the crease) slides down over the eye, squashing it into a thin
    line just above the lower lid. Widen: lids apart, brows up. Only points near an eye move.
    """
    out = np.zeros_like(rig.local)
    if not (blink or widen):
        return out
    for eye in rig.eyes:
        dx = rig.local[:, 0] - eye[0]
        dy = rig.local[:, 1] - eye[1]
        shift = blink * np.interp(dy, _LID_DY, _BLINK_SHIFT) + widen * np.interp(
            dy, _LID_DY, _WIDEN_SHIFT
        )
        out[:, 1] += _window(dx, 0.10, 0.38) * shift
    return out


def jaw_shift(rig: FaceRig, jaw: float) -> np.ndarray:
    """Jaw drop: upper lip stays, the lip seam opens, lower lip and chin move down by `jaw`."""
    out = np.zeros_like(rig.local)
    if not jaw:
        return out
    mc = rig.mouth.mean(0)
    hw = float(np.hypot(*(rig.mouth[1] - rig.mouth[0]))) / 2
    dx = rig.local[:, 0] - mc[0]
    dy = rig.local[:, 1] - mc[1]
    lips = np.abs(dy) < 0.2
    column = np.where(lips, 0.3 + 0.7 * _window(dx, 0.3 * hw, 1.05 * hw), _window(dx, 0.6, 1.3))
    out[:, 1] = jaw * column * np.interp(dy, _JAW_DY, _JAW_SHIFT)
    # Corners pulled in a little as the lips part.
    out[:, 0] = -0.12 * jaw * np.sign(dx) * np.exp(-((np.abs(dx) - hw) ** 2 + dy**2) / 0.02)
    return out


def smile_shift(rig: FaceRig, smile: float) -> np.ndarray:
    """Smile: mouth corners out and up, cheeks up, lower lids slightly up."""
    out = np.zeros_like(rig.local)
    if not smile:
        return out
    for corner, side in zip(rig.mouth, (-1.0, 1.0), strict=True):
        g = np.exp(-((rig.local - corner) ** 2).sum(1) / (2 * 0.17**2))
        out += smile * g[:, None] * np.array([0.13 * side, -0.11])
        cheek = corner + np.array([0.15 * side, -0.35])
        g = np.exp(-((rig.local - cheek) ** 2).sum(1) / (2 * 0.2**2))
        out[:, 1] -= smile * 0.05 * g
    for eye in rig.eyes:
        dx = rig.local[:, 0] - eye[0]
        dy = rig.local[:, 1] - eye[1]
        out[:, 1] -= smile * 0.025 * _window(dx, 0.1, 0.35) * np.interp(
            dy, (0.0, 0.07, 0.2, 0.35), (0.0, 1.0, 0.6, 0.0))
    return out


def expression_shift(rig: FaceRig, pose: FacePose) -> np.ndarray:
    """The face-local displacement of every control point for `pose` (face frame, IOD)."""
    return (eyelid_shift(rig, pose.blink, pose.widen) + jaw_shift(rig, pose.jaw)
            + smile_shift(rig, pose.smile))

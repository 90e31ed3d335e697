"""A weight-free generator: MTCNN landmark motion transferred with a thin-plate-spline warp.

The driving clip's motion is taken relative to its first frame (like FOMM's relative mode) and
replayed on the source face:

* a similarity A fitted from driving frame 0's landmarks onto the source's maps driving
  displacements into source coordinates: ``lms_t = source_lms + L (d_t - d_0)``, where L is A's
  linear part (rotation and scale with ``adapt_scale``, rotation only without);
* a ring of points around the face follows the similarity part of the driving motion (so the
  head, hair and jaw move together), border anchors pin the background;
* points above and below each eye follow the driving's ``eye_openness`` ratio to frame 0
  (blinks and widening), points around the mouth follow the change of ``mouth_openness``
  (jaw drop); an opening mouth gets a dark cavity painted between the lips;
* head turns (yaw) get a 3D-ish parallax: the driving's yaw angle relative to frame 0 is read
  off the change of its ``yaw_proxy`` through a small head model (`HeadModel`: a cap inside the
  ring plus a nose ridge), and every control point on the face, including a grid over the face
  interior, shifts along the source face's horizontal axis by its depth times sin(yaw) (the
  nose most, the ring not at all; the side turning away is compressed). The source turns until
  its own model yaw_proxy has changed by ``yaw_gain`` times the driving's. The similarity that
  the turn induces on the driving landmarks is taken out of the driving motion, so the rigid
  ring (outline, hair) stays while the face turns inside it. Five MTCNN points alone cannot
  show a turn: MTCNN places the nose by appearance, so the whole inner face has to move;
* looking up and nodding (pitch) get the same parallax along the face's vertical axis, read off
  the change of ``nose_drop`` (the nose below the eye line; the mouth moves with expressions)
  and amplified by ``pitch_gain``;
* mouth corners drag the skin around them along, and their spreading (a smile) is amplified
  by ``smile_gain``.

Everything is plain numpy/OpenCV and deterministic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dfmnist.generators.base import Generator, check_inputs
from dfmnist.generators.parallax import HeadModel, fit_similarity, interior_points
from dfmnist.generators.parallax import to_complex as _c
from dfmnist.generators.parallax import to_xy as _xy
from dfmnist.vision import motion
from dfmnist.vision.face_geometry import (
    LEFT_EYE,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE,
    RIGHT_EYE,
    PointGroups,
    paint_cavity,
)
from dfmnist.vision.faces import smooth_series
from dfmnist.vision.tps import GridWarper, border_anchors

__all__ = ["ALGORITHM_VERSION", "HeadModel", "LandmarkWarpGenerator", "fit_similarity",
           "median_series"]

#: Bump when the rendering changes, so content keys change with it.
ALGORITHM_VERSION = 3


# Local control offsets, in source inter-ocular units along the face axes (x right, y down).
_EYE_LID = motion.EYE_PATCH[1]  # lid points sit on the edge of the openness patch
_EYE_FIXED = ((0.0, -0.38), (0.0, 0.34), (-0.24, 0.0), (0.24, 0.0))  # brow, cheek, corners
_LIP = 0.08  # upper/lower lip points from the mouth-corner line
_CHIN = 0.5  # jaw point below the mouth
_JAW_SHARE = 0.7  # fraction of the lower-lip drop that the jaw point follows
_CAVITY_HALF_WIDTH = 0.3  # painted cavity half-width, as a fraction of the mouth width
# Points around each mouth corner that follow its own motion: (outward, down) offsets in face
# units and the share of the corner's motion they follow.
_CORNER_PTS = ((0.15, 0.0, 0.9), (0.1, -0.14, 0.7), (0.1, 0.14, 0.7), (0.3, -0.05, 0.5))
_SMILE_DEADBAND = 0.02  # widening (face units per corner) below this is not amplified
_OPENNESS_EPS = 0.03  # keeps eye-openness ratios finite for dark-free eye patches

_INTERIOR_GAP = 0.12  # interior points closer than this to another control point are dropped


class LandmarkWarpGenerator(Generator):
    """Relative landmark-motion transfer rendered with a thin-plate-spline warp (no weights).

    Options: `relative` (displacements from driving frame 0, else absolute driving landmarks
    mapped by the frame-0 similarity), `adapt_scale` (scale displacements by the face-size
    ratio), `smooth_window` (frames: centred moving average of the landmarks, running median
    of the openness signals),
    `grid_step` (TPS evaluation grid, pixels), `ring_points`/`ring_scale` (rigid ring around
    the face), `eye_gain`/`mouth_gain` (strength of the openness transfer), `deadband`
    (openness changes smaller than this are ignored: measurement noise), `paint_mouth`,
    `smile_gain` (mouth-corner spreading beyond the head motion is amplified by this),
    `yaw_gain` (the source turns until its yaw_proxy has changed by this times the driving's;
    0 turns the parallax off), `yaw_deadband` (yaw_proxy changes smaller than this are
    ignored), `pitch_gain`/`pitch_deadband` (the same for nose_drop).
    Eye and mouth openness and yaw always act relative to driving frame 0, also in absolute
    mode.
    """

    name = "landmark_warp"
    weights_sha256 = None

    def __init__(
        self,
        relative: bool = True,
        adapt_scale: bool = True,
        smooth_window: int = 3,
        grid_step: int = 4,
        ring_points: int = 12,
        ring_scale: float = 1.1,
        eye_gain: float = 1.25,
        mouth_gain: float = 1.0,
        deadband: float = 0.05,
        paint_mouth: bool = True,
        smile_gain: float = 2.0,
        yaw_gain: float = 1.5,
        yaw_deadband: float = 0.02,
        pitch_gain: float = 1.5,
        pitch_deadband: float = 0.02,
    ) -> None:
        if smooth_window < 1 or grid_step < 1 or ring_points < 4 or ring_scale <= 0:
            raise ValueError("smooth_window and grid_step must be >= 1, ring_points >= 4, "
                             "ring_scale > 0")
        if min(yaw_gain, yaw_deadband, pitch_gain, pitch_deadband, smile_gain) < 0:
            raise ValueError("smile_gain, yaw_gain, yaw_deadband, pitch_gain and "
                             "pitch_deadband must be >= 0")
        self.relative = bool(relative)
        self.adapt_scale = bool(adapt_scale)
        self.smooth_window = int(smooth_window)
        self.grid_step = int(grid_step)
        self.ring_points = int(ring_points)
        self.ring_scale = float(ring_scale)
        self.eye_gain = float(eye_gain)
        self.mouth_gain = float(mouth_gain)
        self.deadband = float(deadband)
        self.paint_mouth = bool(paint_mouth)
        self.smile_gain = float(smile_gain)
        self.yaw_gain = float(yaw_gain)
        self.yaw_deadband = float(yaw_deadband)
        self.pitch_gain = float(pitch_gain)
        self.pitch_deadband = float(pitch_deadband)

    def params(self) -> dict[str, Any]:
        return {
            "version": ALGORITHM_VERSION,
            "relative": self.relative,
            "adapt_scale": self.adapt_scale,
            "smooth_window": self.smooth_window,
            "grid_step": self.grid_step,
            "ring_points": self.ring_points,
            "ring_scale": self.ring_scale,
            "eye_gain": self.eye_gain,
            "mouth_gain": self.mouth_gain,
            "deadband": self.deadband,
            "paint_mouth": self.paint_mouth,
            "smile_gain": self.smile_gain,
            "yaw_gain": self.yaw_gain,
            "yaw_deadband": self.yaw_deadband,
            "pitch_gain": self.pitch_gain,
            "pitch_deadband": self.pitch_deadband,
        }

    # -- driving signals -------------------------------------------------------------------

    def driving_signals(
        self, driving: np.ndarray, driving_landmarks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Smoothed landmarks (T, 5, 2), eye-lid scale (T,) and mouth-openness change (T,)."""
        t = len(driving)
        lms = smooth_series(driving_landmarks.reshape(t, 10), self.smooth_window).reshape(t, 5, 2)
        eye = motion.eye_openness(driving, driving_landmarks)
        mouth = motion.mouth_openness(driving, driving_landmarks)
        signals = np.stack([eye, mouth], axis=1)
        signals = np.where(np.isfinite(signals), signals, np.nanmedian(signals, axis=0))
        eye, mouth = median_series(signals, self.smooth_window).T
        ratio = (eye + _OPENNESS_EPS) / (eye[0] + _OPENNESS_EPS)
        lid = np.clip(1.0 - self.eye_gain * _dead(1.0 - ratio, self.deadband), 0.1, 1.6)
        opening = self.mouth_gain * _dead(mouth - mouth[0], self.deadband / 2)
        return lms, lid, opening

    def driving_yaw(self, lms: np.ndarray) -> np.ndarray:
        """The change of `motion.yaw_proxy` since frame 0 (T,) of smoothed driving landmarks:
        running median against detector spikes, soft deadband against jitter (0 at frame 0)."""
        return self._proxy_change(motion.yaw_proxy, lms, self.yaw_deadband)

    def driving_pitch(self, lms: np.ndarray, yaw_angle: np.ndarray) -> np.ndarray:
        """The change of `motion.nose_drop` since frame 0 (T,), as `driving_yaw`. A turn
        foreshortens the inter-ocular distance by cos(yaw), which would read as looking down:
        `yaw_angle` (radians, per frame) corrects it."""
        return self._proxy_change(lambda x: motion.nose_drop(x) * np.cos(yaw_angle), lms,
                                  self.pitch_deadband)

    def _proxy_change(self, proxy, lms: np.ndarray, deadband: float) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.nan_to_num(proxy(lms), nan=0.0, posinf=0.0, neginf=0.0)
        value = median_series((value - value[0])[:, None], self.smooth_window)[:, 0]
        return _dead(value - value[0], deadband)

    # -- rendering -------------------------------------------------------------------------

    def animate(
        self,
        source: np.ndarray,
        source_landmarks: np.ndarray,
        driving: np.ndarray,
        driving_landmarks: np.ndarray,
    ) -> np.ndarray:
        """Render the source once per driving frame: (T, H, W, 3) uint8, deterministic.

        In relative mode frame 0 is the source itself (no motion yet). Raises ValueError for
        malformed inputs (see `check_inputs`).
        """
        source, src_lms, driving, drv_lms = check_inputs(
            source, source_landmarks, driving, driving_landmarks
        )
        h, w = source.shape[:2]
        d, lid, opening = self.driving_signals(driving, drv_lms)

        s = _c(src_lms)
        ux, uy, iod = motion.face_axes(src_lms)
        fx, fy = complex(*ux), complex(*uy)  # source face axes as complex unit vectors
        a_map, b_map = fit_similarity(d[0], src_lms)
        lin = a_map if self.adapt_scale else a_map / abs(a_map)

        # Control points on the source (complex): rigid ring + fixed border.
        centre = s.mean()
        ang = np.linspace(0, 2 * np.pi, self.ring_points, endpoint=False)
        ring = centre + iod * self.ring_scale * (1.15 * np.cos(ang) * fx + 1.45 * np.sin(ang) * fy)
        margin = 0.06 * min(w, h)
        ring = np.clip(ring.real, margin, w - 1 - margin) + 1j * np.clip(
            ring.imag, margin, h - 1 - margin
        )
        border = _c(border_anchors(w, h))
        eye_fixed = np.array([complex(x, y) for x, y in _EYE_FIXED])
        eye_fixed_off = iod * (eye_fixed.real * fx + eye_fixed.imag * fy)
        lid_off = iod * _EYE_LID * fy * np.array([-1.0, 1.0])
        mouth_c = (s[MOUTH_LEFT] + s[MOUTH_RIGHT]) / 2
        mouth_w = abs(s[MOUTH_RIGHT] - s[MOUTH_LEFT])
        lip_off = iod * fy * np.array([-_LIP, _LIP, _CHIN])

        eye_pts = np.concatenate([s[LEFT_EYE] + eye_fixed_off, s[RIGHT_EYE] + eye_fixed_off,
                                  s[LEFT_EYE] + lid_off, s[RIGHT_EYE] + lid_off])
        eye_idx = np.repeat([LEFT_EYE, RIGHT_EYE, LEFT_EYE, RIGHT_EYE],
                            [len(eye_fixed_off)] * 2 + [len(lid_off)] * 2)
        lip_pts = mouth_c + lip_off
        m_axis = (s[MOUTH_RIGHT] - s[MOUTH_LEFT]) / max(mouth_w, 1e-9)
        corner_idx = np.repeat([MOUTH_LEFT, MOUTH_RIGHT], len(_CORNER_PTS))
        corner_off = np.array([iod * (side * o * m_axis + dy * fy) for side in (-1.0, 1.0)
                               for o, dy, _ in _CORNER_PTS])
        corner_pts = s[corner_idx] + corner_off
        corner_slack = 1.0 - np.array([f for _ in range(2) for _, _, f in _CORNER_PTS])
        fixed = np.concatenate([s, ring, border, eye_pts, lip_pts, corner_pts])
        interior = _keep_apart(interior_points(s, fx, fy, iod), fixed, _INTERIOR_GAP * iod)
        sources = np.concatenate([fixed, interior])
        src_xy = _xy(sources)

        # Yaw parallax: the driving's yaw angle (for taking its parallax out of its motion) and
        # the source's (for putting the turn, times yaw_gain, back in).
        yaw = self.driving_yaw(d)
        src_head = HeadModel(src_lms, self.ring_scale)
        drv_head = HeadModel(d[0], self.ring_scale)
        theta_drv = drv_head.yaw_angle(yaw)
        theta_src = src_head.yaw_angle(self.yaw_gain * yaw)
        pitch = self.driving_pitch(d, theta_drv)  # looking up, nodding: the same, vertically
        phi_drv = drv_head.pitch_angle(pitch)
        phi_src = src_head.pitch_angle(self.pitch_gain * pitch)
        # the points that turn, by name
        head_pts = PointGroups(landmarks=s, eyes=eye_pts, lips=lip_pts, corners=corner_pts,
                               interior=interior)

        # Opening in source pixels: the cavity that adds `opening` to the patch's dark fraction.
        frac, up, down = motion.MOUTH_PATCH
        patch_area = frac * mouth_w * (up + down) * iod
        cavity_hw = _CAVITY_HALF_WIDTH * mouth_w
        drop = np.clip(opening * patch_area / (np.pi * cavity_hw / 2), -0.05 * iod, 0.5 * iod)
        cavity_colour = 0.22 * _skin_colour(source, src_lms)

        warper = GridWarper(w, h, self.grid_step)
        d0 = _c(d[0])
        out = np.empty((len(d),) + source.shape, dtype=np.uint8)
        for t in range(len(d)):
            dt = _c(d[t])
            # The driving's parallax at its landmarks, and the source's at its control points
            # (exactly 0 without a turn).
            drv_par = drv_head.shift(d0, theta_drv[t], phi_drv[t])
            par = head_pts.split(src_head.shift(head_pts.points, theta_src[t], phi_src[t]))
            par_lms = par["landmarks"]
            # The driving's similarity motion once its own turn is taken out, and what is left
            # at each landmark (expressions, measurement noise).
            a_t, b_t = fit_similarity(_xy(d0 + drv_par), d[t])
            rest = dt - (a_t * (d0 + drv_par) + b_t)
            if self.relative:
                lms_t = s + lin * (dt - d0 - a_t * drv_par) + a_t * par_lms
                to_src = lin

                def rigid(p: np.ndarray, a=a_t, b=b_t) -> np.ndarray:
                    return p + lin * ((a - 1) * ((p - b_map) / a_map) + b)
            else:
                lms_t = a_map * (dt - a_t * drv_par) + b_map + a_t * par_lms
                to_src = a_map

                def rigid(p: np.ndarray, a=a_t, b=b_t) -> np.ndarray:
                    return a_map * (a * ((p - b_map) / a_map) + b) + b_map
            rot = a_t  # the driving's own rotation and scale change, applied to local offsets
            # Mouth corners: their own motion since frame 0, beyond head motion and turn; its
            # widening part is amplified by smile_gain, the points around each corner follow
            # part of it.
            own = to_src * rest[[MOUTH_LEFT, MOUTH_RIGHT]]
            axis_t = m_axis * rot / abs(rot)
            widen = ((own[1] - own[0]) * np.conj(axis_t)).real / 2
            extra = (self.smile_gain - 1.0) * max(widen - _SMILE_DEADBAND * iod * abs(rot), 0.0)
            spread = extra * axis_t * np.array([-1.0, 1.0])
            own = own + spread
            lms_t[[MOUTH_LEFT, MOUTH_RIGHT]] += spread
            corner_own = np.repeat(own, len(_CORNER_PTS))
            mouth_t = (lms_t[MOUTH_LEFT] + lms_t[MOUTH_RIGHT]) / 2
            par_mouth = (par_lms[MOUTH_LEFT] + par_lms[MOUTH_RIGHT]) / 2
            lids = lid_off * lid[t]
            eye_off = np.concatenate([eye_fixed_off, eye_fixed_off, lids, lids])
            lips = lip_off + fy * np.array([0.0, drop[t], _JAW_SHARE * drop[t]])
            targets = np.concatenate([
                lms_t, rigid(ring), border,
                lms_t[eye_idx] + rot * (eye_off + par["eyes"] - par_lms[eye_idx]),
                mouth_t + rot * (lips + par["lips"] - par_mouth),
                lms_t[corner_idx] + rot * (corner_off + par["corners"] - par_lms[corner_idx])
                - corner_slack * corner_own,
                rigid(interior) + rot * par["interior"],
            ])
            tgt_xy = _xy(targets)
            if np.abs(tgt_xy - src_xy).max() < 1e-6:
                out[t] = source
                continue
            frame = warper.warp(source, tgt_xy, src_xy)
            if self.paint_mouth and drop[t] > 0.5:
                centre_t = mouth_t + rot * fy * (drop[t] / 2)
                axis = lms_t[MOUTH_RIGHT] - lms_t[MOUTH_LEFT]
                paint_cavity(frame, _xy(centre_t), _xy(axis), abs(rot) * cavity_hw,
                             abs(rot) * drop[t] / 2, cavity_colour)
            out[t] = frame
        return out


def median_series(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median along axis 0 (edge-padded): removes spikes, keeps steps."""
    window = int(window)
    if window <= 1 or len(values) < 2:
        return values.astype(float).copy()
    pad = window // 2
    padded = np.pad(values.astype(float), [(pad, pad)] + [(0, 0)] * (values.ndim - 1), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)
    return np.median(windows, axis=-1)[: len(values)]


def _keep_apart(points: np.ndarray, others: np.ndarray, gap: float) -> np.ndarray:
    """The `points` (complex) at least `gap` from every point of `others` and from each other
    (earlier points win)."""
    kept: list[complex] = []
    for p in points:
        if np.min(np.abs(others - p)) >= gap and all(abs(p - k) >= gap for k in kept):
            kept.append(complex(p))
    return np.array(kept, dtype=complex)


def _dead(x: np.ndarray, width: float) -> np.ndarray:
    """Soft deadband: values within +-width become 0, larger ones shrink towards 0 by width."""
    return np.sign(x) * np.maximum(np.abs(x) - width, 0.0)


def _skin_colour(image: np.ndarray, lms: np.ndarray) -> np.ndarray:
    """Median RGB of the nose-bridge patch (the openness measures' skin reference)."""
    iod = float(motion.interocular(lms))
    centre = ((lms[LEFT_EYE] + lms[RIGHT_EYE]) / 2 + lms[NOSE]) / 2
    half = motion.SKIN_PATCH * iod
    x0, x1 = int(max(0, centre[0] - half)), int(min(image.shape[1], centre[0] + half + 1))
    y0, y1 = int(max(0, centre[1] - half)), int(min(image.shape[0], centre[1] + half + 1))
    patch = image[y0:y1, x0:x1].reshape(-1, 3)
    if len(patch) == 0:
        return np.full(3, 128.0)
    return np.median(patch, axis=0).astype(np.float64)

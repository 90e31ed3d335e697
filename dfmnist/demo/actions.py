"""The ten actions as per-frame poses over normalised time: ease-in / hold / ease-out profiles
and each action's amplitudes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dfmnist import ACTIONS
from dfmnist.demo.pose import FacePose

# Action amplitudes (degrees for head rotations, IOD units for the jaw).
YAW_DEG = 28.0
NOD_DEG = 20.0
LOOK_UP_DEG = 18.0
SLOPE_DEG = 20.0
JAW_OPEN = 0.35


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _bump(t: np.ndarray, start: float, rise: float, hold: float, fall: float) -> np.ndarray:
    """0 before `start`, eases to 1 over `rise`, holds for `hold`, eases back to 0 over `fall`."""
    up = _smoothstep((t - start) / rise)
    down = _smoothstep((t - start - rise - hold) / fall)
    return up * (1.0 - down)


#: The profile kinds of `action_profile`.
PROFILES = ("hold", "twice", "blink", "sustain", "swing")


def action_profile(t: np.ndarray, kind: str) -> np.ndarray:
    """An action's amplitude over normalised time `t` in [0, 1] (0 at t=0).

    hold: ease in, hold, ease out (back to 0 by t=0.9). twice: two such bumps (nod).
    blink: two short bumps. sustain: ease in, then hold to the end (look up).
    swing: to +1, hold, through 0 to -1, hold, back to 0 (turn one way, then the other).
    """
    t = np.asarray(t, dtype=np.float64)
    if kind == "hold":
        return _bump(t, 0.10, 0.25, 0.30, 0.25)
    if kind == "twice":
        return _bump(t, 0.05, 0.15, 0.10, 0.15) + _bump(t, 0.52, 0.15, 0.10, 0.15)
    if kind == "blink":
        return _bump(t, 0.15, 0.10, 0.08, 0.10) + _bump(t, 0.57, 0.10, 0.08, 0.10)
    if kind == "sustain":
        return _smoothstep((t - 0.10) / 0.30)
    if kind == "swing":
        return _bump(t, 0.05, 0.18, 0.12, 0.13) - _bump(t, 0.48, 0.18, 0.12, 0.13)
    raise ValueError(f"unknown profile kind {kind!r}; known: {', '.join(PROFILES)}")


def _poses(**series: np.ndarray) -> list[FacePose]:
    n = len(next(iter(series.values())))
    return [FacePose(**{k: float(v[i]) for k, v in series.items()}) for i in range(n)]


def blink_poses(t: np.ndarray) -> list[FacePose]:
    """Eyes close and reopen, twice."""
    return _poses(blink=action_profile(t, "blink"))


def open_mouth_poses(t: np.ndarray) -> list[FacePose]:
    """The jaw drops, holds, closes."""
    return _poses(jaw=JAW_OPEN * action_profile(t, "hold"))


def yaw_poses(t: np.ndarray) -> list[FacePose]:
    """Turn toward the image right (subject's left, yaw_proxy > 0), then the image left."""
    return _poses(yaw=YAW_DEG * action_profile(t, "swing"))


def nod_poses(t: np.ndarray) -> list[FacePose]:
    """Pitch down and back up, twice (pitch_proxy rises at each nod)."""
    return _poses(pitch=NOD_DEG * action_profile(t, "twice"))


def look_up_poses(t: np.ndarray) -> list[FacePose]:
    """Pitch up and hold (pitch_proxy falls)."""
    return _poses(pitch=-LOOK_UP_DEG * action_profile(t, "sustain"))


def right_slope_poses(t: np.ndarray) -> list[FacePose]:
    """Head tilts toward the image right: clockwise on screen, motion.roll_degrees > 0."""
    return _poses(roll=SLOPE_DEG * action_profile(t, "hold"))


def left_slope_poses(t: np.ndarray) -> list[FacePose]:
    """Head tilts toward the image left: anticlockwise on screen, roll_degrees < 0."""
    return _poses(roll=-SLOPE_DEG * action_profile(t, "hold"))


def smile_poses(t: np.ndarray) -> list[FacePose]:
    """Mouth corners out and up (mouth_width rises)."""
    return _poses(smile=action_profile(t, "hold"))


def surprise_poses(t: np.ndarray) -> list[FacePose]:
    """Eyes widen, brows up, the mouth opens."""
    p = action_profile(t, "hold")
    return _poses(widen=p, jaw=0.7 * JAW_OPEN * p)


def embarrassment_poses(t: np.ndarray) -> list[FacePose]:
    """Head lowered and turned aside (toward the image left), a slight smile."""
    p = action_profile(t, "hold")
    return _poses(pitch=14.0 * p, yaw=-14.0 * p, roll=-4.0 * p, smile=0.45 * p)


#: action -> per-frame poses over normalised time.
ACTION_POSES: dict[str, Callable[[np.ndarray], list[FacePose]]] = {
    "blink": blink_poses,
    "open_mouth": open_mouth_poses,
    "yaw": yaw_poses,
    "nod": nod_poses,
    "right_slope": right_slope_poses,
    "left_slope": left_slope_poses,
    "look_up": look_up_poses,
    "smile": smile_poses,
    "surprise": surprise_poses,
    "embarrassment": embarrassment_poses,
}
assert set(ACTION_POSES) == set(ACTIONS)

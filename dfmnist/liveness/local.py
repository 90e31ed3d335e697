"""A local, network-free liveness checker built on MTCNN landmarks and `dfmnist.vision.motion`.

The video is decoded, one face is tracked (FaceDetector), and per-frame motion features
(`dfmnist.vision.motion.motion_features`: yaw, pitch, roll, mouth_width, face_height, eye_open,
mouth_open) are compared with their baseline, the median of the first `baseline_frames`
frames. Each action has a small check in `CHECKS` that turns the features into named
measurements; each measurement has a threshold in `thresholds[action]`.

Score: ``score = clip(0.5 * max_k(measure_k / threshold_k), 0, 1)``, so a measurement equal to
its threshold scores 0.5, twice the threshold (or more) scores 1, no motion scores 0;
``passed = score >= 0.5``.

Sign conventions (image coordinates, x right, y down; MTCNN's "left eye" is the eye on the
image's left):

* roll = `dfmnist.vision.motion.roll_degrees`, the angle of the left-eye -> right-eye line; positive
  when the eye line descends towards the image's right, i.e. the head turned clockwise on
  screen with its top moving towards the image's right.
  `right_slope` passes when roll INCREASES by the threshold (head tilts towards the image's
  right; for an unmirrored camera that is the subject's own left shoulder), `left_slope`
  when roll DECREASES.
* pitch = `vision.motion.pitch_proxy` (0 at the eye line, 1 at the mouth line): it grows when
  the head tips down (nose tip moves towards the mouth) and shrinks when looking up.
* yaw = `dfmnist.vision.motion.yaw_proxy`, nose offset from the face midline in inter-ocular units;
  either direction counts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfmnist import ACTIONS
from dfmnist.liveness.base import LivenessProvider, Verdict
from dfmnist.storage.store import content_key
from dfmnist.storage.video import read_video
from dfmnist.vision import motion
from dfmnist.vision.faces import FaceDetector, detector_identity

#: Bump when a check's maths changes, so cached verdicts are invalidated.
CHECKS_VERSION = 1

#: Default thresholds per action, by measurement name (see the check functions for units).
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "blink": {"eye_drop": 0.3},
    "open_mouth": {"mouth_rise": 0.1},
    "yaw": {"yaw": 0.15},
    "nod": {"pitch_nod": 0.08},
    "right_slope": {"roll_right": 10.0},
    "left_slope": {"roll_left": 10.0},
    "look_up": {"pitch_up": 0.08},
    "smile": {"mouth_widen": 0.12},
    "surprise": {"eye_widen": 0.25, "mouth_rise": 0.1},
    "embarrassment": {"pitch_down": 0.08, "yaw": 0.12},
}


@dataclass
class Analysis:
    """What a provider measured on one video: `features` is None when too few faces."""

    frames: int
    missing_fraction: float
    found: int
    features: dict[str, np.ndarray] | None


@dataclass
class Signals:
    """Motion features of one video, their baselines, and the robustness settings."""

    features: dict[str, np.ndarray]
    baseline: dict[str, float]
    min_frames: int
    hold_frames: int

    def delta(self, key: str) -> np.ndarray:
        """Feature minus its baseline."""
        return self.features[key] - self.baseline[key]

    def peak(self, values: np.ndarray, frames: int | None = None) -> float:
        """The largest value reached in at least `frames` (default min_frames) frames."""
        k = max(1, min(frames or self.min_frames, len(values)))
        return float(np.sort(values)[-k])


def _relative(sig: Signals, key: str, floor: float = 0.05) -> np.ndarray:
    return sig.delta(key) / max(abs(sig.baseline[key]), floor)


def _excursion_and_return(sig: Signals, values: np.ndarray) -> tuple[float, float, int]:
    """Peak of `values` (robust), the frame where it is reached, and how far it comes back."""
    peak = sig.peak(values)
    at = int(np.flatnonzero(values >= peak)[0])
    back = float(peak - np.min(values[at:]))
    return peak, back, at


def check_blink(sig: Signals) -> dict[str, float]:
    """eye_drop: relative fall of eye_open below baseline AND its recovery (the smaller)."""
    drop, recovery, at = _excursion_and_return(sig, -_relative(sig, "eye_open"))
    return {"eye_drop": min(drop, recovery), "drop": drop, "recovery": recovery, "frame": at}


def check_open_mouth(sig: Signals) -> dict[str, float]:
    """mouth_rise: rise of mouth_open (dark fraction of the mouth region) over baseline."""
    return {"mouth_rise": sig.peak(sig.delta("mouth_open"))}


def check_yaw(sig: Signals) -> dict[str, float]:
    """yaw: largest |yaw - baseline| (inter-ocular units), either direction."""
    d = sig.delta("yaw")
    return {"yaw": sig.peak(np.abs(d)), "yaw_max": float(d.max()), "yaw_min": float(d.min())}


def check_nod(sig: Signals) -> dict[str, float]:
    """pitch_nod: head goes down (pitch rises) AND comes back up (the smaller of the two)."""
    down, back, at = _excursion_and_return(sig, sig.delta("pitch"))
    return {"pitch_nod": min(down, back), "down": down, "back_up": back, "frame": at}


def check_right_slope(sig: Signals) -> dict[str, float]:
    """roll_right: increase of roll_degrees (degrees; clockwise on screen)."""
    d = sig.delta("roll")
    return {"roll_right": sig.peak(d), "roll_max": float(d.max()), "roll_min": float(d.min())}


def check_left_slope(sig: Signals) -> dict[str, float]:
    """roll_left: decrease of roll_degrees (degrees; counter-clockwise on screen)."""
    d = sig.delta("roll")
    return {"roll_left": sig.peak(-d), "roll_max": float(d.max()), "roll_min": float(d.min())}


def check_look_up(sig: Signals) -> dict[str, float]:
    """pitch_up: decrease of the pitch proxy held for at least hold_frames frames."""
    up = -sig.delta("pitch")
    return {"pitch_up": sig.peak(up, sig.hold_frames), "pitch_up_max": float(up.max())}


def check_smile(sig: Signals) -> dict[str, float]:
    """mouth_widen: relative growth of mouth_width (mouth corners apart)."""
    return {"mouth_widen": sig.peak(_relative(sig, "mouth_width"))}


def check_surprise(sig: Signals) -> dict[str, float]:
    """eye_widen: relative rise of eye_open; mouth_rise: rise of mouth_open (either suffices)."""
    return {
        "eye_widen": sig.peak(_relative(sig, "eye_open")),
        "mouth_rise": sig.peak(sig.delta("mouth_open")),
    }


def check_embarrassment(sig: Signals) -> dict[str, float]:
    """pitch_down: head lowers (pitch rises); yaw: turns aside (either suffices)."""
    return {
        "pitch_down": sig.peak(sig.delta("pitch")),
        "yaw": sig.peak(np.abs(sig.delta("yaw"))),
    }


#: The per-action checks: features -> named measurements (threshold keys plus audit values).
CHECKS: dict[str, Callable[[Signals], dict[str, float]]] = {
    "blink": check_blink,
    "open_mouth": check_open_mouth,
    "yaw": check_yaw,
    "nod": check_nod,
    "right_slope": check_right_slope,
    "left_slope": check_left_slope,
    "look_up": check_look_up,
    "smile": check_smile,
    "surprise": check_surprise,
    "embarrassment": check_embarrassment,
}
assert set(CHECKS) == set(ACTIONS) == set(DEFAULT_THRESHOLDS)


def merge_thresholds(
    overrides: Mapping[str, Mapping[str, float] | float] | None,
) -> dict[str, dict[str, float]]:
    """DEFAULT_THRESHOLDS updated by `overrides` ({action: {measure: value}} or {action: value}
    for single-measure actions). Unknown actions or measures raise ValueError."""
    merged = {action: dict(values) for action, values in DEFAULT_THRESHOLDS.items()}
    for action, value in (overrides or {}).items():
        if action not in merged:
            known = ", ".join(ACTIONS)
            raise ValueError(f"unknown action {action!r} in thresholds; known: {known}")
        if not isinstance(value, Mapping):
            if len(merged[action]) != 1:
                raise ValueError(f"{action!r} has several thresholds {sorted(merged[action])}; "
                                 "give them as a dict")
            value = {next(iter(merged[action])): value}
        for key, v in value.items():
            if key not in merged[action]:
                raise ValueError(f"unknown threshold {key!r} for {action!r}; "
                                 f"known: {', '.join(merged[action])}")
            if not float(v) > 0:
                raise ValueError(f"threshold {action}.{key} must be > 0, got {v}")
            merged[action][key] = float(v)
    return merged


class LocalProvider(LivenessProvider):
    """Landmark- and image-based action check with a local MTCNN; no network.

    `detector` is a ready FaceDetector, else one is built lazily from `detector_options`.
    `max_missing`: largest fraction of frames without a face before the verdict fails.
    `fps`: resample videos to this rate before judging (None keeps the native rate).
    """

    name = "local"

    def __init__(
        self,
        thresholds: Mapping[str, Mapping[str, float] | float] | None = None,
        detector: FaceDetector | None = None,
        detector_options: Mapping[str, Any] | None = None,
        baseline_frames: int = 5,
        min_frames: int = 2,
        hold_frames: int = 5,
        max_missing: float = 0.3,
        min_prob: float = 0.9,
        fps: float | None = None,
    ) -> None:
        if detector is not None and detector_options:
            raise ValueError("give either a ready detector or detector_options, not both")
        if baseline_frames < 1 or min_frames < 1 or hold_frames < 1:
            raise ValueError("baseline_frames, min_frames and hold_frames must be >= 1")
        if not 0.0 <= max_missing < 1.0:
            raise ValueError(f"max_missing must be in [0, 1), got {max_missing}")
        self.thresholds = merge_thresholds(thresholds)
        self.detector_options = dict(detector_options or {})
        unknown = set(self.detector_options) - set(inspect.signature(FaceDetector).parameters)
        if unknown:
            raise ValueError(f"unknown detector_options {sorted(unknown)}")
        self._detector = detector
        self.baseline_frames = int(baseline_frames)
        self.min_frames = int(min_frames)
        self.hold_frames = int(hold_frames)
        self.max_missing = float(max_missing)
        self.min_prob = float(min_prob)
        self.fps = float(fps) if fps else None
        self.cache_size = 8
        self._cache: dict[tuple, Analysis] = {}

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector(**self.detector_options)
        return self._detector

    def _detector_settings(self) -> dict[str, Any]:
        """Detector settings that change detections, and the detector's identity (its grid,
        batch and float platform, dfmnist.vision.faces). The same values whether the detector was
        given or will be built from options."""
        if self._detector is not None:
            det = self._detector
            thresholds = getattr(getattr(det, "_mtcnn", None), "thresholds", None)
            return {
                "min_face_size": int(det.min_face_size),
                "detect_max_side": int(det.detect_max_side),
                "thresholds": [float(x) for x in thresholds] if thresholds is not None else None,
                **det.identity(),
            }
        defaults = {
            name: p.default for name, p in inspect.signature(FaceDetector).parameters.items()
        }
        opts = {**defaults, **self.detector_options}
        return {
            "min_face_size": int(opts["min_face_size"]),
            "detect_max_side": int(opts["detect_max_side"]),
            "thresholds": [float(x) for x in opts["thresholds"]],
            **detector_identity(str(opts["device"]), int(opts["batch_size"])),
        }

    def settings(self) -> dict[str, Any]:
        """Every setting that can change a verdict."""
        return {
            "provider": self.name,
            "checks_version": CHECKS_VERSION,
            "thresholds": self.thresholds,
            "baseline_frames": self.baseline_frames,
            "min_frames": self.min_frames,
            "hold_frames": self.hold_frames,
            "max_missing": self.max_missing,
            "min_prob": self.min_prob,
            "fps": self.fps,
            "detector": self._detector_settings(),
            "openness": {"eye_patch": motion.EYE_PATCH, "mouth_patch": motion.MOUTH_PATCH,
                         "skin_patch": motion.SKIN_PATCH, "dark_ratio": motion.DARK_RATIO},
        }

    def config_version(self) -> str:
        """First 16 hex digits of the sha256 of `settings()`."""
        return content_key(self.settings())[:16]

    def verify(self, video_path: Path, action: str) -> Verdict:
        """Decode, track, measure and judge. Undecodable videos raise storage.video.VideoError.

        The analysis of the most recent videos is kept in memory (keyed by path, size and
        mtime), so judging one video for several actions decodes and tracks it once.
        """
        self.check_action(action)
        return self.judge(self.analyse_video(video_path), action)

    def analyse_video(self, video_path: Path) -> Analysis:
        """`analyse` the decoded video, memoised for the last `cache_size` videos."""
        path = Path(video_path)
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        analysis = self._cache.pop(key, None)
        if analysis is None:
            analysis = self.analyse(read_video(path, fps=self.fps).frames)
        self._cache[key] = analysis
        while len(self._cache) > self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        return analysis

    def verify_frames(self, frames: np.ndarray, action: str) -> Verdict:
        """Judge decoded RGB frames (T, H, W, 3) for `action`."""
        self.check_action(action)
        return self.judge(self.analyse(frames), action)

    def analyse(self, frames: np.ndarray) -> Analysis:
        """Track the face and compute motion features (None when too few faces were found)."""
        frames = np.asarray(frames)
        if len(frames) < self.baseline_frames + 1:
            return Analysis(len(frames), 1.0, 0, None)
        track = self.detector.track(frames, min_prob=self.min_prob)
        found = int(track.found.sum())
        if track.missing_fraction > self.max_missing:
            return Analysis(len(frames), track.missing_fraction, found, None)
        lms = track.interpolate().landmarks
        features = motion.motion_features(frames, lms)
        for key, values in features.items():  # openness is NaN only for degenerate landmarks
            if not np.isfinite(values).all():
                fill = np.nanmedian(values) if np.isfinite(values).any() else 0.0
                features[key] = np.where(np.isfinite(values), values, fill)
        return Analysis(len(frames), track.missing_fraction, found, features)

    def judge(self, analysis: Analysis, action: str) -> Verdict:
        """Turn an analysis into a verdict for `action`."""
        self.check_action(action)
        thresholds = self.thresholds[action]
        n = analysis.frames
        details: dict[str, Any] = {"frames": n, "thresholds": dict(thresholds)}
        if n < self.baseline_frames + 1:
            details["reason"] = (f"too short: {n} frames, need more than "
                                 f"{self.baseline_frames} (the baseline)")
            return self._verdict(False, 0.0, action, details)
        details["missing_fraction"] = round(analysis.missing_fraction, 4)
        if analysis.features is None:
            details["reason"] = (f"no face in {n - analysis.found} of {n} frames "
                                 f"(more than max_missing={self.max_missing:g})")
            return self._verdict(False, 0.0, action, details)
        features = analysis.features
        baseline = {k: float(np.median(v[: self.baseline_frames])) for k, v in features.items()}
        signals = Signals(features, baseline, self.min_frames, self.hold_frames)
        measured = CHECKS[action](signals)
        ratios = {k: measured[k] / thresholds[k] for k in thresholds}
        score = min(1.0, max(0.0, 0.5 * float(max(ratios.values()))))
        details["measured"] = {k: round(float(v), 4) for k, v in measured.items()}
        details["baseline"] = {k: round(v, 4) for k, v in baseline.items()}
        details["deciding"] = max(ratios, key=ratios.get)
        return self._verdict(score >= 0.5, score, action, details)

    def _verdict(self, passed: bool, score: float, action: str, details: dict) -> Verdict:
        details["config_version"] = self.config_version()
        return Verdict(passed=bool(passed), score=round(float(score), 4), provider=self.name,
                       action=action, details=details)

"""Driving-video crop: one smoothed square face window per frame, resized to VoxCeleb framing.

Two steps, so that a take without a usable face can be rejected before anything is cropped:
`track_take` decodes the take (upright, constant frame rate, audio ignored) and links one face
track; `take_verdict` accepts or rejects it; `crop_take` crops an accepted take.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dfmnist.faces import (
    FaceDetector,
    FaceTrack,
    crop_frames,
    crop_jitter,
    crop_windows,
    raw_windows,
    transform_track,
)
from dfmnist.io import Video, probe_video, read_video


class NoFaceError(ValueError):
    """A driving take has too few frames with a face to be cropped."""


@dataclass
class TakeInfo:
    """What the tracking step learnt about one raw take (saved as JSON beside its track)."""

    path: str
    frames: int
    fps: float
    width: int           # upright frame size
    height: int
    source_fps: float
    rotation: int
    codec: str
    faces_found: int
    missing_fraction: float
    accepted: bool
    reason: str | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DrivingCrop:
    frames: np.ndarray       # (T, size, size, 3)
    fps: float
    track: FaceTrack         # in crop coordinates, missing frames interpolated
    windows: np.ndarray      # (T, 3) cx, cy, side in source-frame coordinates, smoothed
    source_size: tuple[int, int]
    jitter_raw: float        # crop-centre jitter (output pixels) before smoothing
    jitter: float            # and after


def decode_take(path: str | Path, fps: float = 0.0) -> tuple[Video, float, dict]:
    """Frames upright at a constant rate: `fps`, or the source's nominal rate when 0."""
    info = probe_video(path)
    rate = float(fps) if fps else info.fps
    video = read_video(path, fps=rate or None)
    facts = {"source_fps": info.fps, "rotation": info.rotation, "codec": info.codec}
    return video, rate or video.fps, facts


def take_verdict(track: FaceTrack, max_missing: float) -> str | None:
    """None when the take is usable, else the reason it is rejected."""
    found = int(track.found.sum())
    if found == 0:
        return f"no face found in any of {len(track)} frames"
    if track.missing_fraction > max_missing:
        return (f"face found in {found}/{len(track)} frames: {track.missing_fraction:.0%} "
                f"missing, more than the allowed {max_missing:.0%}")
    return None


def track_take(
    path: str | Path, detector: FaceDetector, fps: float = 0.0, min_prob: float = 0.9,
    max_missing: float = 0.5,
) -> tuple[FaceTrack, TakeInfo]:
    """Decode a raw take, track its dominant face (source coordinates) and judge it."""
    video, rate, facts = decode_take(path, fps)
    track = detector.track(video.frames, min_prob=min_prob)
    reason = take_verdict(track, max_missing)
    width, height = video.size
    info = TakeInfo(path=str(path), frames=len(video), fps=rate, width=width, height=height,
                    faces_found=int(track.found.sum()),
                    missing_fraction=float(track.missing_fraction), accepted=reason is None,
                    reason=reason, **facts)
    return track, info


def crop_take(
    path: str | Path, track: FaceTrack, fps: float = 0.0, size: int = 256, margin: float = 0.4,
    smooth_window: int = 9, decoded: tuple[Video, float] | None = None,
) -> DrivingCrop:
    """Crop an accepted take along its track: smoothed square windows, edge-padded, resized.

    `decoded`: the (video, rate) already decoded with the same `fps`, to skip a second decode.
    """
    video, rate = decoded if decoded else decode_take(path, fps)[:2]
    if len(video) != len(track):
        raise ValueError(f"{path}: {len(video)} frames decoded but the track has {len(track)}")
    windows = crop_windows(track, margin=margin, smooth_window=smooth_window)
    crops = crop_frames(video.frames, windows, size=size)
    cropped_track = transform_track(track.interpolate(), windows, size)
    return DrivingCrop(crops, rate, cropped_track, windows, video.size,
                       *window_jitter(track, size, margin, smooth_window))


def crop_driving(
    path: str | Path, detector: FaceDetector, size: int = 256, margin: float = 0.4,
    smooth_window: int = 9, min_prob: float = 0.9, max_missing: float = 0.5, fps: float = 0.0,
) -> DrivingCrop:
    """Track and crop one take in one call; raises NoFaceError when it would be rejected."""
    video, rate, _ = decode_take(path, fps)
    track = detector.track(video.frames, min_prob=min_prob)
    reason = take_verdict(track, max_missing)
    if reason:
        raise NoFaceError(f"{path}: {reason}")
    return crop_take(path, track, size=size, margin=margin, smooth_window=smooth_window,
                     decoded=(video, rate))


def take_accepted(info_path: str | Path) -> bool:
    """Whether the tracking step accepted a take, from its saved TakeInfo JSON."""
    return bool(json.loads(Path(info_path).read_text())["accepted"])


def window_jitter(
    track: FaceTrack, size: int = 256, margin: float = 0.4, smooth_window: int = 9
) -> tuple[float, float]:
    """Crop-centre jitter (output pixels) of a source-coordinate track, before and after
    smoothing, exactly as `crop_take` would window it."""
    return (crop_jitter(raw_windows(track, margin), size),
            crop_jitter(crop_windows(track, margin=margin, smooth_window=smooth_window), size))

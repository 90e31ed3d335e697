"""Driving-video crop: one smoothed square face window per frame, resized to VoxCeleb framing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfmnist.faces import FaceDetector, FaceTrack, crop_frames, crop_windows, transform_track
from dfmnist.io import read_video


class NoFaceError(ValueError):
    """A driving take has too few frames with a face to be cropped."""


@dataclass
class DrivingCrop:
    frames: np.ndarray       # (T, size, size, 3)
    fps: float
    track: FaceTrack         # in crop coordinates
    windows: np.ndarray      # (T, 3) cx, cy, side in source-frame coordinates
    source_size: tuple[int, int]


def crop_driving(
    path: str | Path, detector: FaceDetector, size: int = 256, margin: float = 0.4,
    smooth_window: int = 9, min_prob: float = 0.9, max_missing: float = 0.5,
) -> DrivingCrop:
    """Decode, track the face, and crop each frame to a smoothed square window."""
    video = read_video(path)
    track = detector.track(video.frames, min_prob=min_prob)
    if track.missing_fraction > max_missing:
        raise NoFaceError(
            f"{path}: face found in {track.found.sum()}/{len(track)} frames "
            f"(more than {max_missing:.0%} missing)"
        )
    windows = crop_windows(track, margin=margin, smooth_window=smooth_window)
    crops = crop_frames(video.frames, windows, size=size)
    cropped_track = transform_track(track.interpolate(), windows, size)
    return DrivingCrop(crops, video.fps, cropped_track, windows, video.size)

"""Driving-video crop: one smoothed square face window per frame, resized to VoxCeleb framing.

Two steps, so that a take without a usable face can be rejected before anything is cropped:
`track_take` decodes the take (upright, constant frame rate, audio ignored) and links one face
track; `take_verdict` accepts or rejects it; `crop_take`/`write_crop` crop an accepted take.
Both steps stream the take in chunks of frames, so memory does not grow with its length or
resolution (a 4K phone take is decoded twice rather than held).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dfmnist.storage.video import LOSSLESS_RGB, VideoReader, VideoWriter
from dfmnist.vision.faces import (
    FaceDetector,
    FaceTrack,
    crop_frames,
    crop_jitter,
    crop_windows,
    raw_windows,
    track_from_detections,
    transform_track,
)

#: Decoded bytes per chunk while streaming a take: two 4K frames, hundreds of small ones
#: (torch and MTCNN alone take about 1.2 GB of RSS, so this keeps a 4K take under 1.5 GB).
CHUNK_BYTES = 64 << 20


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


def open_take(path: str | Path, fps: float = 0.0) -> VideoReader:
    """A take's frames upright at a constant rate: `fps`, or the source's nominal rate when 0."""
    return VideoReader(path, fps=float(fps) or None)


def chunk_frames(reader: VideoReader) -> int:
    """Frames per decoded chunk: CHUNK_BYTES of them, at least one."""
    return max(1, CHUNK_BYTES // (reader.width * reader.height * 3))


def take_verdict(track: FaceTrack, max_missing: float, min_frames: int = 0) -> str | None:
    """None when the take is usable, else the reason it is rejected."""
    if len(track) < min_frames:
        return (f"too short: {len(track)} frame{'s' if len(track) != 1 else ''}, fewer than "
                f"driving.min_frames ({min_frames})")
    found = int(track.found.sum())
    if found == 0:
        return f"no face found in any of {len(track)} frames"
    if track.missing_fraction > max_missing:
        return (f"face found in {found}/{len(track)} frames: {track.missing_fraction:.0%} "
                f"missing, more than the allowed {max_missing:.0%}")
    return None


def track_take(
    path: str | Path, detector: FaceDetector, fps: float = 0.0, min_prob: float = 0.9,
    max_missing: float = 0.5, min_frames: int = 0,
) -> tuple[FaceTrack, TakeInfo]:
    """Decode a raw take chunk by chunk, track its dominant face (source coordinates) and
    judge it. An unreadable or damaged take raises storage.video.VideoError (its `reason`)."""
    reader = open_take(path, fps)
    detections = []
    for chunk in reader.chunks(chunk_frames(reader)):
        detections += detector.detect(chunk)
    track = track_from_detections(detections, min_prob=min_prob)
    reason = take_verdict(track, max_missing, min_frames)
    info = TakeInfo(path=str(path), frames=len(track), fps=reader.fps, width=reader.width,
                    height=reader.height, source_fps=reader.info.fps,
                    rotation=reader.info.rotation, codec=reader.info.codec,
                    faces_found=int(track.found.sum()),
                    missing_fraction=float(track.missing_fraction), accepted=reason is None,
                    reason=reason)
    return track, info


def iter_crops(
    path: str | Path, track: FaceTrack, fps: float = 0.0, size: int = 256, margin: float = 0.4,
    smooth_window: int = 9,
) -> tuple[VideoReader, np.ndarray, Iterator[np.ndarray]]:
    """(reader, smoothed windows, chunks of crops) for a take along its source-frame track."""
    reader = open_take(path, fps)
    windows = crop_windows(track, margin=margin, smooth_window=smooth_window)

    def chunks() -> Iterator[np.ndarray]:
        start = 0
        for frames in reader.chunks(chunk_frames(reader)):
            if start + len(frames) > len(track):
                raise ValueError(f"{path}: more frames decoded than the track's {len(track)}")
            yield crop_frames(frames, windows[start : start + len(frames)], size=size)
            start += len(frames)
        if start != len(track):
            raise ValueError(f"{path}: {start} frames decoded but the track has {len(track)}")

    return reader, windows, chunks()


def crop_take(
    path: str | Path, track: FaceTrack, fps: float = 0.0, size: int = 256, margin: float = 0.4,
    smooth_window: int = 9,
) -> DrivingCrop:
    """Crop an accepted take along its track, in memory (see `write_crop` for long takes)."""
    reader, windows, chunks = iter_crops(path, track, fps, size, margin, smooth_window)
    crops = np.concatenate(list(chunks))
    return _crop_result(crops, reader, track, windows, size, margin, smooth_window)


def write_crop(
    path: str | Path, track: FaceTrack, out: str | Path, fps: float = 0.0, size: int = 256,
    margin: float = 0.4, smooth_window: int = 9,
) -> DrivingCrop:
    """Crop an accepted take straight into the video `out` (lossless RGB), chunk by chunk;
    the result carries no frames."""
    reader, windows, chunks = iter_crops(path, track, fps, size, margin, smooth_window)
    with VideoWriter(out, size, size, reader.fps, LOSSLESS_RGB) as writer:
        for crops in chunks:
            writer.write(crops)
    empty = np.empty((0, size, size, 3), np.uint8)
    return _crop_result(empty, reader, track, windows, size, margin, smooth_window)


def _crop_result(crops: np.ndarray, reader: VideoReader, track: FaceTrack, windows: np.ndarray,
                 size: int, margin: float, smooth_window: int) -> DrivingCrop:
    cropped_track = transform_track(track.interpolate(), windows, size)
    return DrivingCrop(crops, reader.fps, cropped_track, windows, (reader.width, reader.height),
                       *window_jitter(track, size, margin, smooth_window))


def crop_driving(
    path: str | Path, detector: FaceDetector, size: int = 256, margin: float = 0.4,
    smooth_window: int = 9, min_prob: float = 0.9, max_missing: float = 0.5, fps: float = 0.0,
) -> DrivingCrop:
    """Track and crop one take in one call; raises NoFaceError when it would be rejected."""
    track, info = track_take(path, detector, fps=fps, min_prob=min_prob, max_missing=max_missing)
    if not info.accepted:
        raise NoFaceError(f"{path}: {info.reason}")
    return crop_take(path, track, fps=fps, size=size, margin=margin, smooth_window=smooth_window)


def window_jitter(
    track: FaceTrack, size: int = 256, margin: float = 0.4, smooth_window: int = 9
) -> tuple[float, float]:
    """Crop-centre jitter (output pixels) of a source-coordinate track, before and after
    smoothing, exactly as `crop_take` would window it."""
    return (crop_jitter(raw_windows(track, margin), size),
            crop_jitter(crop_windows(track, margin=margin, smooth_window=smooth_window), size))

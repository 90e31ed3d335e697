from pathlib import Path

import numpy as np
import pytest

from dfmnist.driving.crop import NoFaceError, crop_driving
from dfmnist.storage.video import read_video, write_video
from dfmnist.vision.faces import (
    FaceTrack,
    crop_frames,
    crop_windows,
    smooth_series,
    track_from_detections,
    transform_track,
)


def test_detects_the_astronaut_face(detector, astronaut):
    boxes, probs, lms = detector.detect(astronaut)[0]
    assert len(boxes) == 1 and probs[0] > 0.99
    x0, y0, x1, y1 = boxes[0]
    assert 150 < x0 < x1 < 300 and 30 < y0 < y1 < 200
    # eyes above the nose, nose above the mouth corners
    assert lms[0, :2, 1].max() < lms[0, 2, 1] < lms[0, 3:, 1].min()


def test_track_and_crop_real_clip(detector, carphone_path: Path):
    video = read_video(carphone_path, max_frames=40)
    track = detector.track(video.frames)
    assert track.found.all() and len(track) == 40
    windows = crop_windows(track, margin=0.4, smooth_window=9)
    crops = crop_frames(video.frames, windows, size=128)
    assert crops.shape == (40, 128, 128, 3)
    cropped = transform_track(track, windows, 128)
    # the face sits in the middle of every crop and fills a VoxCeleb-like share of it
    centres = (cropped.boxes[:, :2] + cropped.boxes[:, 2:]) / 2
    assert np.abs(centres - 64).max() < 16
    widths = cropped.boxes[:, 2] - cropped.boxes[:, 0]
    assert ((widths > 0.35 * 128) & (widths < 0.8 * 128)).all()


def test_table_roundtrip_and_interpolation():
    boxes = np.array([[0, 0, 10, 10], [np.nan] * 4, [4, 4, 14, 14]], float)
    lms = np.stack([np.full((5, 2), v) for v in (1.0, np.nan, 3.0)])
    track = FaceTrack(boxes, np.array([0.99, 0, 0.98]), lms, np.array([True, False, True]))
    assert track.missing_fraction == pytest.approx(1 / 3)
    filled = track.interpolate()
    assert np.allclose(filled.boxes[1], [2, 2, 12, 12]) and np.allclose(filled.landmarks[1], 2)
    back = FaceTrack.from_frame(filled.to_frame())
    assert np.allclose(back.boxes, filled.boxes) and list(back.found) == [True, False, True]


def test_tracker_follows_the_same_face_when_a_second_appears():
    big = np.array([[100, 100, 200, 200]], float)
    lm = np.zeros((1, 5, 2))
    two = (np.array([[400, 100, 520, 220], [105, 100, 205, 200]], float), np.array([0.99, 0.99]),
           np.zeros((2, 5, 2)))
    dets = [(big, np.array([0.99]), lm), two, (big + 10, np.array([0.99]), lm)]
    track = track_from_detections(dets)
    assert track.found.all()
    assert track.boxes[1, 0] == 105  # stayed on the first face, not the larger newcomer


def test_smoothing_reduces_jitter():
    rng = np.random.default_rng(0)
    path = np.stack([np.linspace(100, 140, 60), np.full(60, 200.0), np.full(60, 150.0)], 1)
    shaky = path + rng.normal(0, 3, path.shape)
    smooth = smooth_series(shaky, 9)
    jitter = lambda v: np.abs(np.diff(v[:, :2], axis=0)).mean()  # noqa: E731
    assert jitter(smooth) < jitter(shaky) / 3


def test_crop_driving_pads_off_frame_and_rejects_faceless(tmp_path, detector, astronaut):
    # face pushed to the top-left corner: the window leaves the frame and is edge-padded
    frames = np.stack([astronaut[40:300, 150:410]] * 6)
    path = write_video(tmp_path / "corner.mp4", frames, 25.0)
    crop = crop_driving(path, detector, size=96, margin=0.5, smooth_window=3)
    assert crop.frames.shape == (6, 96, 96, 3) and crop.fps == pytest.approx(25.0)
    assert (crop.windows[:, 1] - crop.windows[:, 2] / 2 < 0).all()
    blank = write_video(tmp_path / "blank.mp4", np.full((6, 96, 96, 3), 127, np.uint8), 25.0)
    with pytest.raises(NoFaceError, match="no face found in any of 6 frames"):
        crop_driving(blank, detector, size=96)

"""Driving crops from phone-like inputs built with ffmpeg from real photos: HEVC in .mov with a
rotation flag and audio, variable frame rate, two faces, a face leaving the frame, shaky
footage, missing faces and takes without any face."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest

from dfmnist.driving.crop import NoFaceError, crop_driving, track_take, window_jitter
from dfmnist.storage.video import Encoding, ffmpeg_exe, probe_video, read_video, write_video
from dfmnist.vision.faces import crop_jitter, crop_windows, raw_windows
from dfmnist.vision.motion import roll_degrees

GREY = 110


def place(canvas_hw: tuple[int, int], face: np.ndarray, x: int, y: int) -> np.ndarray:
    """The face image pasted at (x, y) on a grey canvas; parts outside the canvas are cut."""
    h, w = canvas_hw
    out = np.full((h, w, 3), GREY, np.uint8)
    fy0, fx0 = max(0, -y), max(0, -x)
    y0, x0 = max(0, y), max(0, x)
    y1, x1 = min(h, y + face.shape[0]), min(w, x + face.shape[1])
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = face[fy0 : fy0 + y1 - y0, fx0 : fx0 + x1 - x0]
    return out


@pytest.fixture(scope="module")
def small_face(grace_hopper) -> np.ndarray:
    return cv2.resize(grace_hopper, (128, 150), interpolation=cv2.INTER_AREA)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                   check=True)


def has_encoder(name: str) -> bool:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True,
                         text=True).stdout
    return f" {name} " in out


def test_portrait_hevc_mov_with_rotation_flag_and_audio_comes_out_upright(tmp_path, small_face):
    if not has_encoder("libx265"):
        pytest.skip("this ffmpeg has no libx265")
    # upright portrait frames (320 tall, 240 wide), stored sideways as a phone does
    upright = np.stack([place((320, 240), small_face, 56 + t, 80) for t in range(12)])
    sideways = write_video(tmp_path / "sideways.mp4", np.rot90(upright, k=-1, axes=(1, 2)),
                           30.0, Encoding(crf=12, preset="veryfast"))
    hevc = tmp_path / "hevc.mov"
    ffmpeg("-i", str(sideways), "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
           "-map", "1:a", "-map", "0:v",  # audio first, as some phones write it
           "-c:v", "libx265", "-x265-params", "log-level=error", "-crf", "14", "-tag:v", "hvc1",
           "-c:a", "aac", "-shortest", str(hevc))
    phone = tmp_path / "IMG_0001.MOV"  # the rotation flag set on the stream, pixels untouched
    ffmpeg("-display_rotation:v:0", "90", "-i", str(hevc), "-map", "0", "-c", "copy", str(phone))
    info = probe_video(phone)
    assert info.codec == "hevc" and info.rotation in (90, 270)
    assert (info.width, info.height) == (320, 240) and info.display_size == (240, 320)
    decoded = read_video(phone)
    assert decoded.frames.shape == upright.shape  # upright, every frame, audio ignored
    assert np.abs(decoded.frames.astype(float) - upright).mean() < 6

    from dfmnist.vision.faces import FaceDetector

    crop = crop_driving(phone, FaceDetector(min_face_size=40), size=256, smooth_window=3)
    assert crop.frames.shape == (12, 256, 256, 3) and crop.fps == pytest.approx(30.0)
    # the face is upright in the crop: eyes level and above the nose, nose above the mouth
    lms = crop.track.landmarks
    assert np.abs(roll_degrees(lms)).max() < 10
    assert (lms[:, :2, 1].max(axis=1) < lms[:, 2, 1]).all()
    assert (lms[:, 2, 1] < lms[:, 3:, 1].min(axis=1)).all()


def test_variable_frame_rate_is_resampled_to_the_configured_rate(tmp_path, small_face, detector):
    # a 60 fps recording of which only frames 0, 1, 4, 5, 8, 9, ... are kept with their own
    # timestamps: 16 frames, alternately 1/60 s and 3/60 s apart, as a phone drops frames
    steady = np.stack([place((240, 240), small_face, 40 + t, 40) for t in range(32)])
    cfr = write_video(tmp_path / "cfr.mp4", steady, 60.0)
    vfr = tmp_path / "vfr.mp4"
    ffmpeg("-i", str(cfr), "-vf", "select=lt(mod(n\\,4)\\,2)", "-fps_mode", "vfr",
           "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", str(vfr))
    # the file really holds 16 unevenly timed frames
    cap = cv2.VideoCapture(str(vfr))
    stamps = []
    while cap.read()[0]:
        stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
    steps = np.diff(stamps)
    assert len(stamps) == 16 and steps.max() > 40 and steps.min() < 20
    track, info = track_take(vfr, detector, fps=30.0)
    assert info.fps == 30.0 and info.accepted
    assert info.frames == pytest.approx(0.5333 * 30, abs=1.5)  # constant 30 fps timeline
    crop = crop_driving(vfr, detector, size=128, smooth_window=3, fps=30.0)
    assert len(crop.frames) == info.frames and crop.fps == 30.0
    # the face moves right steadily in time, so resampled window centres never go backwards
    assert (np.diff(crop.windows[:, 0]) > -1.0).all()


def test_two_faces_the_larger_consistent_one_is_cropped(tmp_path, astronaut, small_face,
                                                        detector):
    big = cv2.resize(astronaut[20:240, 150:330], (180, 220))
    frames = []
    for t in range(8):
        frame = place((320, 480), big, 40 + t, 50)
        frame[60 : 60 + 150, 320 + t : 448 + t] = small_face  # a smaller passer-by
        frames.append(frame)
    path = write_video(tmp_path / "two.mp4", np.stack(frames), 25.0)
    dets = detector.detect(read_video(path).frames)
    assert all(len(b) >= 2 for b, _, _ in dets)  # both faces are detected in every frame
    crop = crop_driving(path, detector, size=128, smooth_window=3)
    # every window is centred on the astronaut (x < 230), never on the passer-by (x > 320)
    assert (crop.windows[:, 0] > 60).all() and (crop.windows[:, 0] < 230).all()
    centres = (crop.track.boxes[:, :2] + crop.track.boxes[:, 2:]) / 2
    assert np.abs(centres - 64).max() < 14


def test_face_leaving_the_frame_is_edge_padded_and_interpolated(tmp_path, small_face, detector):
    # the face slides left until most of it has left the frame
    frames = np.stack([place((240, 320), small_face, 100 - 14 * t, 40) for t in range(16)])
    path = write_video(tmp_path / "leaving.mp4", frames, 25.0)
    track, info = track_take(path, detector, max_missing=0.5)
    assert info.accepted and track.found[:4].all() and not track.found.all()
    assert not track.found[-1]  # the last frames, face mostly gone, have no detection
    crop = crop_driving(path, detector, size=128, margin=0.4, smooth_window=3)
    assert len(crop.frames) == 16 and np.isfinite(crop.track.boxes).all()
    # the window leaves the frame on the left; the crop there repeats the frame's edge column
    left = crop.windows[:, 0] - crop.windows[:, 2] / 2
    assert left[-1] < 0
    t = int(np.argmin(left))
    outside = int(np.floor(-left[t] * 128 / crop.windows[t, 2])) - 2
    assert outside > 4
    pad = crop.frames[t, :, :outside].astype(int)
    assert np.abs(pad - pad[:, :1]).max() <= 3  # each row constant: replicated border


def test_missing_faces_are_interpolated_or_the_take_is_rejected(tmp_path, small_face, detector):
    face = [place((240, 240), small_face, 40 + 3 * t, 40) for t in range(12)]
    blank = np.full_like(face[0], GREY)
    gap = np.stack(face[:5] + [blank] * 3 + face[8:])
    path = write_video(tmp_path / "gap.mp4", gap, 25.0)
    track, info = track_take(path, detector)
    assert list(np.flatnonzero(~track.found)) == [5, 6, 7] and info.accepted
    filled = track.interpolate()
    # the gap is bridged linearly between its neighbours
    expected = np.linspace(filled.boxes[4, 0], filled.boxes[8, 0], 5)[1:-1]
    assert np.allclose(filled.boxes[5:8, 0], expected)
    mostly_blank = np.stack(face[:3] + [blank] * 9)
    path = write_video(tmp_path / "mostly_blank.mp4", mostly_blank, 25.0)
    _, info = track_take(path, detector, max_missing=0.5)
    assert not info.accepted and info.reason.startswith("face found in 3/12 frames: 75% missing")
    nothing = write_video(tmp_path / "nothing.mp4", np.stack([blank] * 6), 25.0)
    _, info = track_take(nothing, detector)
    assert not info.accepted and info.reason == "no face found in any of 6 frames"
    with pytest.raises(NoFaceError, match="no face found in any of 6 frames"):
        crop_driving(nothing, detector)


def test_smoothing_removes_crop_jitter_on_shaky_footage(tmp_path, small_face, detector):
    rng = np.random.default_rng(3)
    shake = rng.normal(0, 3.0, (30, 2))
    frames = np.stack([
        place((240, 320), small_face, int(round(60 + 2 * t + dx)), int(round(40 + dy)))
        for t, (dx, dy) in enumerate(shake)
    ])
    path = write_video(tmp_path / "shaky.mp4", frames, 25.0)
    track, _ = track_take(path, detector)
    assert track.found.all()
    before, after = window_jitter(track, size=256, margin=0.4, smooth_window=9)
    assert before > 2.0  # the shake is really there in the detections (output pixels)
    assert after < before / 4
    # the smoothed window still follows the steady pan: 2 px per frame
    smooth = crop_windows(track, margin=0.4, smooth_window=9)
    assert np.polyfit(np.arange(30), smooth[:, 0], 1)[0] == pytest.approx(2.0, abs=0.3)
    # a steady pan with no shake has no jitter at all
    pan = np.stack([np.arange(30.0) * 2 + 100, np.full(30, 80.0), np.full(30, 120.0)], 1)
    assert crop_jitter(pan) == pytest.approx(0.0, abs=1e-9)
    assert crop_jitter(raw_windows(track)) == pytest.approx(before)

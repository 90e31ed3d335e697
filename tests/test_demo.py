"""The embedded demo on real photos, with real MTCNN and real H.264 encodes (no mocks).

Driving-video checks measure the performed action from MTCNN's landmarks on the decoded video
(dfmnist.vision.motion proxies), at the frames where the action's time profile peaks.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dfmnist import ACTIONS, demo
from dfmnist.config.checks import demo_clip_relpaths
from dfmnist.storage.video import probe_video, read_video
from dfmnist.vision import motion
from dfmnist.vision.faces import FaceDetector

# Driving videos in these tests: 1 s at 30 fps (frame i is at normalised time i / 29).
W, H, FPS, SECONDS = 360, 640, 30.0, 1.0
HOLD_PEAK = 15  # t=0.52, middle of the "hold" plateau [0.35, 0.65]
SWING_PLATEAUS = ((8, 9), (20, 21))  # +1 over t in [0.23, 0.35], -1 over [0.66, 0.78]
TWICE_PEAKS = (7, 21)  # nod: plateaus [0.20, 0.30] and [0.67, 0.77]
TWICE_GAP = 14  # t=0.48, between the two nods
BLINK_PEAKS = (8, 20)  # blink: closed over [0.25, 0.33] and [0.67, 0.75]


@pytest.fixture(scope="module")
def mtcnn() -> FaceDetector:
    return FaceDetector(min_face_size=40)


@pytest.fixture(scope="module")
def grace() -> np.ndarray:
    return demo.load_photo("builtin:grace_hopper")


@pytest.fixture(scope="module")
def builtin_astronaut() -> np.ndarray:
    return demo.load_photo("builtin:astronaut")


@pytest.fixture(scope="module")
def driving(tmp_path_factory, mtcnn, grace):
    """action -> decoded frames of a 360x640 driving video of Grace Hopper (made once)."""
    out = tmp_path_factory.mktemp("driving")
    cache: dict[str, np.ndarray] = {}

    def get(action: str) -> np.ndarray:
        if action not in cache:
            path = demo.make_driving_video(grace, action, out / f"{action}.mp4", mtcnn, width=W,
                                           height=H, fps=FPS, seconds=SECONDS, seed=0)
            cache[action] = read_video(path).frames
        return cache[action]

    return get


def largest_faces(detector: FaceDetector, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (T, 4) and landmarks (T, 5, 2) of the largest face per frame; every frame has one."""
    boxes, lms = [], []
    for i, (b, p, lm) in enumerate(detector.detect(frames)):
        keep = p >= 0.9
        assert keep.any(), f"no face in frame {i}"
        b, lm = b[keep], lm[keep]
        j = int(np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))
        boxes.append(b[j])
        lms.append(lm[j])
    return np.array(boxes), np.array(lms)


# --- Photos --------------------------------------------------------------------------------------


def test_builtin_photos_are_real_faces(mtcnn):
    assert set(demo.BUILTIN_PHOTOS) == {"astronaut", "camera", "grace_hopper", "carphone"}
    for name in demo.BUILTIN_PHOTOS:
        photo = demo.load_photo(f"builtin:{name}")
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3, name
        assert photo.flags["C_CONTIGUOUS"]
        box, lms = demo.find_face(photo, mtcnn)
        h, w = photo.shape[:2]
        assert box.shape == (4,) and lms.shape == (5, 2)
        assert 0 <= box[0] < box[2] <= w + 2 and 0 <= box[1] < box[3] <= h + 2, name
        assert box[2] - box[0] >= 30, name
    assert demo.load_photo("builtin:carphone").shape == (144, 176, 3)
    camera = demo.load_photo("builtin:camera")
    assert (camera[..., 0] == camera[..., 1]).all() and (camera[..., 1] == camera[..., 2]).all()
    # Colour photos come out RGB: Grace Hopper's background is blue sky-like, not orange.
    grace = demo.load_photo("builtin:grace_hopper")
    top_right = grace[:80, -80:].reshape(-1, 3).mean(0)
    assert top_right[2] > top_right[0] + 30


def test_load_photo_from_files(tmp_path, grace):
    png = tmp_path / "grace.png"
    cv2.imwrite(str(png), cv2.cvtColor(grace, cv2.COLOR_RGB2BGR))
    assert np.array_equal(demo.load_photo(str(png)), grace)
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), cv2.cvtColor(grace, cv2.COLOR_RGB2GRAY))
    loaded = demo.load_photo(str(grey))
    assert loaded.shape == grace.shape and loaded.dtype == np.uint8
    rgba = tmp_path / "rgba.png"
    bgra = cv2.cvtColor(grace, cv2.COLOR_RGB2BGRA)
    bgra[..., 3] = 7
    cv2.imwrite(str(rgba), bgra)
    assert np.array_equal(demo.load_photo(str(rgba)), grace)


def test_load_photo_errors(tmp_path):
    with pytest.raises(ValueError, match=r"builtin:nobody.*grace_hopper"):
        demo.load_photo("builtin:nobody")
    missing = tmp_path / "missing.jpg"
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        demo.load_photo(str(missing))
    bogus = tmp_path / "notes.png"
    bogus.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        demo.load_photo(str(bogus))


def test_load_identity_gives_real_frames_for_carphone():
    photo, frames = demo.load_identity("builtin:carphone")
    assert frames is not None and frames.shape == (120, 144, 176, 3)
    assert np.array_equal(photo, frames[0])
    photo, frames = demo.load_identity("builtin:astronaut")
    assert frames is None and photo.shape == (512, 512, 3)


def test_find_face_without_a_face(mtcnn):
    rng = np.random.default_rng(0)
    wall = cv2.GaussianBlur(rng.integers(90, 160, (240, 320, 3), dtype=np.uint8), (0, 0), 4)
    with pytest.raises(ValueError, match=r"no face found in the 320x240 photo"):
        demo.find_face(wall, mtcnn)


# --- Profiles ------------------------------------------------------------------------------------


def test_action_profiles():
    t = np.linspace(0, 1, 1001)
    for kind in demo.PROFILES:
        p = demo.action_profile(t, kind)
        assert p.shape == t.shape and p[0] == 0.0 and np.abs(p).max() == pytest.approx(1.0)
        assert np.abs(np.diff(p)).max() < 0.03, f"{kind} is not smooth"
    hold = demo.action_profile(t, "hold")
    assert hold[500] == 1.0 and hold[-1] == 0.0
    twice = demo.action_profile(t, "twice")
    assert twice[250] == 1.0 and twice[720] == 1.0 and twice[485] == 0.0
    swing = demo.action_profile(t, "swing")
    assert swing[280] == 1.0 and swing[720] == -1.0 and swing[-1] == 0.0
    assert demo.action_profile(t, "sustain")[-1] == 1.0
    with pytest.raises(ValueError, match="wobble"):
        demo.action_profile(t, "wobble")


# --- Source clips --------------------------------------------------------------------------------


def test_source_clips_voxceleb_layout_framing_and_motion(tmp_path, mtcnn, builtin_astronaut):
    config = {"demo": {"videos_per_identity": 1, "clips_per_video": 2}}
    wanted = [tmp_path / rel for rel in demo_clip_relpaths(config, "astronaut")]
    paths = demo.make_source_clips(builtin_astronaut, "astronaut", wanted, mtcnn, videos=1,
                                   clips_per_video=2, seconds=1.0, fps=25.0, seed=0)
    assert paths == wanted
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "astronaut/demo00/00001.mp4", "astronaut/demo00/00002.mp4"]
    clips = []
    for path in paths:
        info = probe_video(path)
        assert (info.width, info.height, info.codec) == (256, 256, "h264")
        video = read_video(path)
        assert video.frames.shape == (25, 256, 256, 3)
        assert video.fps == pytest.approx(25.0)
        clips.append(video.frames.astype(np.int16))
    # The face is found near the centre, about half the frame wide, in every sampled frame.
    boxes, _ = largest_faces(mtcnn, np.concatenate([c[::12] for c in clips]).astype(np.uint8))
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert np.abs(centre - 128).max() < 0.12 * 256
    width = (boxes[:, 2] - boxes[:, 0]) / 256
    assert width.min() > 0.38 and width.max() < 0.65
    for frames in clips:
        step = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
        assert step.min() > 0.1, "consecutive frames identical: no motion"
        assert step.max() < 8.0, "motion is not slight"
        assert np.abs(frames[-1] - frames[0]).mean() < 30.0
    # Each clip moves its own way.
    assert np.abs(clips[0][12] - clips[1][12]).mean() > 1.0


def test_source_clips_are_deterministic_per_seed(tmp_path, mtcnn, builtin_astronaut):
    def clip(folder: str, seed: int) -> Path:
        return demo.make_source_clips(builtin_astronaut, "astronaut", [tmp_path / folder / "c.mp4"],
                                      mtcnn, clips_per_video=1, seconds=0.4, seed=seed)[0]

    a, b, c = clip("a", 0), clip("b", 0), clip("c", 1)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    fa, fc = read_video(a).frames.astype(np.int16), read_video(c).frames.astype(np.int16)
    assert np.abs(fa[-1] - fc[-1]).mean() > 1.0


def test_source_clips_from_real_frames(tmp_path, mtcnn):
    frames = demo.load_builtin_video("carphone")[:30]
    two = [tmp_path / "1.mp4", tmp_path / "2.mp4"]
    paths = demo.make_source_clips(frames[0], "carphone", two, mtcnn, clips_per_video=2,
                                   seconds=1.0, fps=25.0, real_frames=frames)
    clips = [read_video(p).frames for p in paths]
    assert [c.shape for c in clips] == [(25, 256, 256, 3)] * 2
    # Windows of consecutive real frames: 30 frames, 25 per clip -> clips start at 0 and 5.
    to_second = np.abs(clips[0].astype(np.int16) - clips[1][0]).mean(axis=(1, 2, 3))
    assert int(np.argmin(to_second)) == 5, to_second.round(2)
    assert to_second[5] < 0.5 * np.delete(to_second, 5).min(), to_second.round(2)
    boxes, _ = largest_faces(mtcnn, np.stack([clips[0][0], clips[1][-1]]))
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert np.abs(centre - 128).max() < 0.12 * 256
    assert 0.35 < ((boxes[:, 2] - boxes[:, 0]) / 256).min()


def test_clip_indices_bounce_on_short_videos():
    assert demo._clip_indices(2, 4, 10).tolist() == [2, 3, 4, 5]
    assert demo._clip_indices(0, 7, 3).tolist() == [0, 1, 2, 1, 0, 1, 2]


# --- Driving videos ------------------------------------------------------------------------------


def test_driving_video_is_a_raw_portrait_with_the_face_off_centre(tmp_path, mtcnn, grace):
    path = demo.make_driving_video(grace, "smile", tmp_path / "take.mp4", mtcnn, seconds=1.0)
    info = probe_video(path)
    assert (info.width, info.height, info.codec) == (720, 1280, "h264")
    video = read_video(path)
    assert video.frames.shape == (30, 1280, 720, 3) and video.fps == pytest.approx(30.0)
    boxes, _ = largest_faces(mtcnn, video.frames[:1])
    cx, cy = (boxes[0, :2] + boxes[0, 2:]) / 2
    assert 0.28 < cx / 720 < 0.45, "face should sit left of centre"
    assert 0.32 < cy / 1280 < 0.48
    assert 0.2 < (boxes[0, 2] - boxes[0, 0]) / 720 < 0.4
    # Hand-held: the still first frames are not identical (camera shake of a few pixels).
    first = video.frames[:3].astype(np.int16)
    assert np.abs(first[1] - first[0]).mean() > 0.2


def test_driving_rejects_unknown_action(tmp_path, mtcnn, grace):
    with pytest.raises(ValueError, match="dance"):
        demo.make_driving_video(grace, "dance", tmp_path / "x.mp4", mtcnn)
    assert not (tmp_path / "x.mp4").exists()


def test_driving_render_is_seeded(grace):
    box, lms = np.array([163.7, 105.8, 347.6, 344.0]), np.array(
        [[220.3, 189.9], [308.5, 187.1], [269.2, 238.9], [230.4, 282.6], [306.8, 279.6]])
    a = demo.render_driving_frames(grace, box, lms, "nod", 180, 320, 10, 0.5, seed=3)
    b = demo.render_driving_frames(grace, box, lms, "nod", 180, 320, 10, 0.5, seed=3)
    c = demo.render_driving_frames(grace, box, lms, "nod", 180, 320, 10, 0.5, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_slopes_roll_in_opposite_directions(driving, mtcnn):
    _, right = largest_faces(mtcnn, driving("right_slope")[[0, HOLD_PEAK]])
    _, left = largest_faces(mtcnn, driving("left_slope")[[0, HOLD_PEAK]])
    right_roll, left_roll = motion.roll_degrees(right), motion.roll_degrees(left)
    # right_slope: head tilts toward the image right, the right eye lower: roll > 0.
    assert right_roll[1] > 8 and right_roll[1] - right_roll[0] > 8
    assert left_roll[1] < -8 and left_roll[1] - left_roll[0] < -8


def test_yaw_turns_both_ways(driving, mtcnn):
    # Two frames on each plateau: MTCNN's nose point is noisy behind Grace Hopper's glasses.
    (a, b), (c, d) = SWING_PLATEAUS
    _, lms = largest_faces(mtcnn, driving("yaw")[[0, a, b, c, d]])
    yaw = motion.yaw_proxy(lms)
    assert yaw[1:3].mean() - yaw[0] > 0.1, yaw  # toward the image right first
    assert yaw[0] - yaw[3:].mean() > 0.1, yaw  # then the image left


def test_nod_pitches_down_twice(driving, mtcnn):
    _, lms = largest_faces(mtcnn, driving("nod")[[0, TWICE_PEAKS[0], TWICE_GAP, TWICE_PEAKS[1]]])
    pitch = motion.pitch_proxy(lms)
    assert pitch[1] > pitch[0] + 0.08 and pitch[3] > pitch[0] + 0.08, pitch
    assert pitch[2] < min(pitch[1], pitch[3]) - 0.05, pitch  # back up between the nods


def test_look_up_lowers_pitch_and_holds(driving, mtcnn):
    _, lms = largest_faces(mtcnn, driving("look_up")[[0, 20, 29]])
    pitch = motion.pitch_proxy(lms)
    assert pitch[1] < pitch[0] - 0.1 and pitch[2] < pitch[0] - 0.1, pitch


def test_smile_widens_the_mouth(driving, mtcnn):
    _, lms = largest_faces(mtcnn, driving("smile")[[0, HOLD_PEAK]])
    width = motion.mouth_width(lms)
    assert width[1] > width[0] + 0.06, width


def _undo_shake(reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """`frame` registered onto `reference` (a rigid fit, ECC): removes the hand-held shake."""
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in (reference, frame)]
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5)
    _, warp = cv2.findTransformECC(grey[0], grey[1], warp, cv2.MOTION_EUCLIDEAN, criteria, None, 5)
    return cv2.warpAffine(frame, warp, frame.shape[1::-1],
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


def _patch_diff(a: np.ndarray, b: np.ndarray, centres: np.ndarray, half: int) -> float:
    """Mean absolute difference of two frames over square patches around `centres`."""
    diffs = []
    for x, y in np.round(centres).astype(int):
        window = np.s_[y - half:y + half, x - half:x + half]
        diffs.append(np.abs(a[window].astype(int) - b[window]).mean())
    return float(np.mean(diffs))


def test_blink_changes_the_eyes_not_the_rest(driving, mtcnn):
    frames = driving("blink")
    _, lms = largest_faces(mtcnn, frames[[0, *BLINK_PEAKS]])
    lm = lms[0]
    iod = float(motion.interocular(lm))
    half = int(0.25 * iod)
    # Control patches: the mouth, the cheeks below each eye, the forehead above the brows.
    others = np.array([lm[3:].mean(0), lm[0] + [0, 0.75 * iod], lm[1] + [0, 0.75 * iod],
                       lm[:2].mean(0) - [0, 0.8 * iod]])
    for peak in BLINK_PEAKS:
        closed = _undo_shake(frames[0], frames[peak])
        eye_diff = _patch_diff(frames[0], closed, lm[:2], half)
        other_diff = _patch_diff(frames[0], closed, others, half)
        assert eye_diff > 12 and eye_diff > 3 * other_diff, (eye_diff, other_diff)
    openness = motion.eye_openness(frames[[0, *BLINK_PEAKS]], lms)
    assert openness[1] < openness[0] - 0.08 and openness[2] < openness[0] - 0.08, openness


def test_open_mouth_opens_the_mouth(driving, mtcnn):
    frames = driving("open_mouth")[[0, HOLD_PEAK]]
    _, lms = largest_faces(mtcnn, frames)
    opening = motion.mouth_openness(frames, lms)
    assert opening[1] > opening[0] + 0.2, opening
    # Only the mouth: the eyes stay as they were.
    eyes = motion.eye_openness(frames, lms)
    assert abs(eyes[1] - eyes[0]) < 0.1, eyes


def test_surprise_widens_the_eyes_and_opens_the_mouth(driving, mtcnn):
    frames = driving("surprise")[[0, HOLD_PEAK]]
    _, lms = largest_faces(mtcnn, frames)
    eyes = motion.eye_openness(frames, lms)
    mouth = motion.mouth_openness(frames, lms)
    assert eyes[1] > eyes[0] + 0.08, eyes
    assert mouth[1] > mouth[0] + 0.15, mouth


def test_embarrassment_lowers_and_turns_the_head(driving, mtcnn):
    _, lms = largest_faces(mtcnn, driving("embarrassment")[[0, HOLD_PEAK]])
    pitch, yaw = motion.pitch_proxy(lms), motion.yaw_proxy(lms)
    assert pitch[1] > pitch[0] + 0.08, pitch
    assert yaw[1] < yaw[0] - 0.04, yaw


def test_every_action_has_a_pose_table():
    assert set(demo.ACTION_POSES) == set(ACTIONS)
    t = np.linspace(0, 1, 30)
    for action in ACTIONS:
        poses = demo.ACTION_POSES[action](t)
        assert len(poses) == 30 and poses[0].is_neutral(), action
        assert not all(p.is_neutral() for p in poses), action

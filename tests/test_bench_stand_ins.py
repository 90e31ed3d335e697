"""The two stand-ins that let a benchmark run every stage after generation at thousands of
fakes: the `source_copy` generator and the `unchecked` liveness provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfmnist.generators import make_generator
from dfmnist.liveness import make_provider


@pytest.fixture(scope="module")
def astronaut_face(detector, astronaut) -> tuple[np.ndarray, np.ndarray]:
    """A 128x128 crop of a real face and its MTCNN landmarks."""
    import cv2

    crop = np.ascontiguousarray(cv2.resize(astronaut[20:300, 120:400], (128, 128)))
    _, _, landmarks = detector.detect(crop)[0]
    return crop, landmarks[0]


def test_source_copy_moves_the_source_with_the_driving_face(astronaut_face):
    source, landmarks = astronaut_face
    generator = make_generator("source_copy")
    # a driving face half the source's size, moving 2 px right and 1 px down per frame: the
    # source moves twice that (the motion is scaled to the source's face size)
    small = landmarks / 2 + 10
    steps = np.array([[2 * t, t] for t in range(6)], float)
    driving_landmarks = small[None] + steps[:, None, :]
    driving = np.zeros((6, 64, 64, 3), np.uint8)
    frames = generator.animate(source, landmarks, driving, driving_landmarks)
    assert frames.shape == (6, 128, 128, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[0], source)
    for t in range(1, 6):
        dx, dy = 4 * t, 2 * t
        # inside the frame an exact copy of the source, shifted; the edge repeats its border
        assert np.array_equal(frames[t][dy:, dx:], source[:128 - dy, :128 - dx])
        assert np.array_equal(frames[t][:dy, dx:], np.repeat(source[:1, :128 - dx], dy, 0))
    # another take's motion is another video
    still = generator.animate(source, landmarks, driving, np.repeat(small[None], 6, axis=0))
    assert all(np.array_equal(f, source) for f in still) and not np.array_equal(still, frames)


def test_source_copy_checks_its_inputs(astronaut_face):
    source, landmarks = astronaut_face
    with pytest.raises(ValueError, match="driving_landmarks"):
        make_generator("source_copy").animate(source, landmarks, np.zeros((3, 8, 8, 3), np.uint8),
                                              np.zeros((2, 5, 2)))


def test_unchecked_passes_every_video_without_judging(carphone_path: Path, tmp_path: Path):
    provider = make_provider("unchecked")
    verdict = provider.verify(carphone_path, "blink")
    assert verdict.passed and verdict.score == 1.0 and verdict.provider == "unchecked"
    assert verdict.details["reason"] == "not checked"
    with pytest.raises(FileNotFoundError):
        provider.verify(tmp_path / "missing.mp4", "blink")
    with pytest.raises(ValueError, match="unknown action"):
        provider.verify(carphone_path, "dance")

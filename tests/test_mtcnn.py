"""The batched MTCNN cascade against facenet-pytorch's own detector, on real photos and video."""

from __future__ import annotations

import numpy as np
import pytest

from dfmnist.io import read_video
from dfmnist.mtcnn import Cascade


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def cascade() -> Cascade:
    return Cascade(min_face_size=20)


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_cascade_agrees_with_facenet_pytorch(request, cascade, photo):
    from facenet_pytorch import MTCNN

    image = request.getfixturevalue(photo)[::2, ::2].copy()  # half size: a faster test
    stock_boxes, stock_probs, stock_points = MTCNN(
        keep_all=True, min_face_size=20, post_process=False
    ).detect(image, landmarks=True)
    boxes, probs, points = cascade.detect(image)[0]
    assert len(boxes) == len(stock_boxes) == 1 and probs[0] > 0.99
    # the same networks, resampling and suppression: equal up to float rounding
    assert iou(boxes[0], stock_boxes[0]) > 0.999
    assert np.abs(boxes - stock_boxes).max() < 0.01
    assert np.abs(probs - stock_probs).max() < 1e-5
    assert np.abs(points - stock_points).max() < 0.01


def test_a_batch_gives_the_same_detections_as_single_frames(cascade, carphone_path):
    from facenet_pytorch import MTCNN

    frames = read_video(carphone_path, max_frames=6).frames
    batched = cascade.detect(frames)
    stock = MTCNN(keep_all=True, min_face_size=20, post_process=False)
    stock_boxes, _, stock_points = stock.detect(frames, landmarks=True)
    for frame, (boxes, probs, points), sb, sp in zip(frames, batched, stock_boxes, stock_points,
                                                       strict=True):
        # a small real frame, where box floors must match facenet-pytorch's float32 exactly
        assert len(boxes) == len(sb) and np.abs(boxes - sb).max() < 0.01
        assert np.abs(points - sp).max() < 0.01
        single_boxes, single_probs, single_points = cascade.detect(frame)[0]
        assert len(boxes) == len(single_boxes) >= 1
        assert np.allclose(boxes, single_boxes, atol=1e-2)
        assert np.allclose(probs, single_probs, atol=1e-4)
        assert np.allclose(points, single_points, atol=1e-2)


def test_no_face_and_pyramid(cascade):
    blank = np.full((3, 120, 160, 3), 128, np.uint8)
    assert all(len(b) == 0 for b, _, _ in cascade.detect(blank))
    scales = cascade.scales(120, 160)
    # the smallest face (20 px) maps to P-Net's 12 px window; the last level is >= 12 px
    assert scales[0] == pytest.approx(12 / 20)
    assert 120 * scales[-1] >= 12 > 120 * scales[-1] * 0.709

"""The batched MTCNN cascade against facenet-pytorch's own detector, on real photos and video."""

from __future__ import annotations

import numpy as np
import pytest

from dfmnist.storage.video import read_video
from dfmnist.vision.mtcnn import Cascade

from numerics import MARGIN

pytestmark = pytest.mark.numerics  # .ci/run runs these again on AVX2


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def cascade() -> Cascade:
    return Cascade(min_face_size=20)


def stock_detections(frames: np.ndarray, dtype: str) -> tuple:
    """facenet-pytorch's own MTCNN.detect; its detect_face casts the frames to the networks'
    dtype, so `.double()` runs the same cascade in float64 (the truth for float32 bounds)."""
    from facenet_pytorch import MTCNN

    stock = MTCNN(keep_all=True, min_face_size=20, post_process=False)
    return (stock.double() if dtype == "float64" else stock).detect(frames, landmarks=True)


def rounding_bound(stock32: np.ndarray, stock64: np.ndarray) -> float:
    """MARGIN times facenet-pytorch's own float32 error on these values (tests/numerics), and
    at least MARGIN float32 spacings of them, since a float32 output can be no closer."""
    spacing = float(np.spacing(np.abs(stock64).astype(np.float32)).max())
    return MARGIN * max(float(np.abs(stock32 - stock64).max()), spacing)


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_cascade_agrees_with_facenet_pytorch(request, cascade, photo):
    image = request.getfixturevalue(photo)[::2, ::2].copy()  # half size: a faster test
    stock32 = stock_detections(image, "float32")
    stock64 = stock_detections(image, "float64")
    boxes, probs, points = cascade.detect(image)[0]
    assert len(boxes) == len(stock32[0]) == len(stock64[0]) == 1 and probs[0] > 0.99
    assert iou(boxes[0], stock64[0][0]) > 0.999
    # the same networks, resampling and suppression: as close to the float64 cascade as
    # facenet-pytorch's own float32 (boxes, probabilities, landmarks in turn)
    for ours, s32, s64 in zip((boxes, probs, points), stock32, stock64, strict=True):
        assert np.abs(ours - s64).max() <= rounding_bound(s32, s64)


def test_a_batch_gives_the_same_detections_as_single_frames(cascade, carphone_path):
    frames = read_video(carphone_path, max_frames=6).frames
    batched = cascade.detect(frames)
    stock32 = stock_detections(frames, "float32")
    stock64 = stock_detections(frames, "float64")
    for t, (frame, (boxes, probs, points)) in enumerate(zip(frames, batched, strict=True)):
        # a small real frame, where a box taken one pixel off (another floor() of a float32
        # coordinate) would move the results by far more than any bound below
        single = cascade.detect(frame)[0]
        assert len(boxes) == len(single[0]) == len(stock64[0][t]) >= 1
        # batched and single frames alike are within rounding of the float64 cascade
        for i, ours in enumerate((boxes, probs, points)):
            s32, s64 = stock32[i][t], stock64[i][t]
            assert np.abs(ours - s64).max() <= rounding_bound(s32, s64), (t, i)
            assert np.abs(single[i] - s64).max() <= rounding_bound(s32, s64), (t, i)


def test_no_face_and_pyramid(cascade):
    blank = np.full((3, 120, 160, 3), 128, np.uint8)
    assert all(len(b) == 0 for b, _, _ in cascade.detect(blank))
    scales = cascade.scales(120, 160)
    # the smallest face (20 px) maps to P-Net's 12 px window; the last level is >= 12 px
    assert scales[0] == pytest.approx(12 / 20)
    assert 120 * scales[-1] >= 12 > 120 * scales[-1] * 0.709

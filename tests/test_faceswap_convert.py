"""Face-swap alignment and conversion on real faces: the carphone clip (target identity A) and
the Grace Hopper and astronaut photos, with MTCNN as the judge of where faces and eyes are."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfmnist.faceswap.align import (
    DEFAULT_COVERAGE,
    align_faces,
    template_points,
    transform_points,
    umeyama,
)
from dfmnist.faceswap.blend import COLOUR_METHODS, BlendSettings, face_mask, match_colour
from dfmnist.faceswap.convert import swap_chunks, swap_frames
from dfmnist.storage.video import read_video

from numerics import assert_float64_equal

SIZE = 128


def _one_face(detector, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    boxes, probs, landmarks = detector.detect(image)[0]
    assert len(boxes) >= 1 and probs.max() > 0.95
    best = int(np.argmax(probs))
    return boxes[best], landmarks[best]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def target(carphone_path, detector):
    """16 real frames of the carphone clip and MTCNN's track of its face."""
    frames = read_video(carphone_path).frames[:16]
    track = detector.track(frames)
    assert track.found.all()
    return frames, track


@pytest.fixture(scope="module")
def hopper_crop(grace_hopper, detector) -> np.ndarray:
    """Identity B: Grace Hopper's face aligned like A's crops."""
    _, landmarks = _one_face(detector, grace_hopper)
    return align_faces(grace_hopper[None], landmarks[None], SIZE, DEFAULT_COVERAGE).crops[0]


def test_umeyama_recovers_a_similarity_exactly():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.4, 1.7, np.array([12.0, -30.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = umeyama(points, points @ rot.T + shift)
    # exact in real arithmetic, float64 (an SVD of a 2x2): FLOAT64_EXACT of the 100-pixel scale
    assert_float64_equal(matrix[:, :2], rot, "rotation and scale")
    assert_float64_equal(matrix[:, 2] / 100.0, shift / 100.0, "shift")


@pytest.mark.parametrize("photo, turn", [("astronaut", 0.0), ("astronaut", 25.0),
                                         ("grace_hopper", -20.0)])
def test_aligned_crop_has_the_eyes_on_the_template(photo, turn, request, detector):
    image = request.getfixturevalue(photo)
    if turn:  # a tilted head: the crop must level it
        h, w = image.shape[:2]
        image = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), turn, 1.0), (w, h),
                               borderMode=cv2.BORDER_REFLECT)
    _, landmarks = _one_face(detector, image)
    aligned = align_faces(image[None], landmarks[None], SIZE, 1.0)
    _, found = _one_face(detector, aligned.crops[0])
    template = template_points(SIZE, 1.0)
    iod = np.linalg.norm(template[1] - template[0])
    # what is left: a five-point similarity fit of a real face to a mean face, and MTCNN's
    # own jitter on a new framing of the same face
    error = np.linalg.norm(found[:2] - template[:2], axis=1) / iod
    assert error.max() < 0.15, error
    eye_line = found[1] - found[0]
    assert abs(np.degrees(np.arctan2(eye_line[1], eye_line[0]))) < 5.0


def test_align_then_warp_back_reproduces_the_frame(target):
    frames, track = target
    aligned = align_faces(frames, track.landmarks, SIZE, DEFAULT_COVERAGE)
    h, w = frames.shape[1:3]
    for frame, crop, inverse in zip(frames, aligned.crops, aligned.inverse, strict=True):
        back = cv2.warpAffine(crop, inverse, (w, h), flags=cv2.INTER_LINEAR)
        inside = cv2.warpAffine(np.ones((SIZE, SIZE), np.uint8), inverse, (w, h),
                                flags=cv2.INTER_NEAREST)
        inside = cv2.erode(inside, np.ones((5, 5), np.uint8)).astype(bool)
        assert inside.sum() > 0.1 * h * w  # the face region, not a sliver
        diff = np.abs(back.astype(float) - frame.astype(float))[inside]
        # two bilinear resamplings of uint8 pixels blur edges: grey levels, not rounding
        assert diff.mean() < 3.0 and np.percentile(diff, 99) < 25


def test_identity_swap_keeps_the_frames(target):
    frames, track = target
    landmarks = track.landmarks.copy()
    landmarks[5] = np.nan  # no usable landmarks: the frame passes through

    def same(crops):
        return crops.copy(), None

    out = swap_frames(frames, landmarks, same, SIZE, DEFAULT_COVERAGE, BlendSettings())
    assert out.shape == frames.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[5], frames[5])
    h, w = frames.shape[1:3]
    aligned = align_faces(frames, track.landmarks, SIZE, DEFAULT_COVERAGE)
    for t in (0, 8, 15):
        footprint = cv2.warpAffine(np.ones((SIZE, SIZE), np.uint8), aligned.inverse[t], (w, h),
                                   flags=cv2.INTER_NEAREST)
        outside = ~cv2.dilate(footprint, np.ones((5, 5), np.uint8)).astype(bool)
        np.testing.assert_array_equal(out[t][outside], frames[t][outside])
        x0, y0, x1, y1 = track.boxes[t].astype(int)
        face_diff = np.abs(out[t, y0:y1, x0:x1].astype(float) - frames[t, y0:y1, x0:x1])
        # the face is resampled twice and feathered in: grey levels, not rounding
        assert face_diff.mean() < 2.0 and face_diff.max() < 40


def test_swap_with_another_face_puts_a_face_where_the_target_was(target, hopper_crop, detector):
    frames, track = target

    def hopper(crops):
        return np.repeat(hopper_crop[None], len(crops), axis=0), None

    out = swap_frames(frames, track.landmarks, hopper, SIZE, DEFAULT_COVERAGE, BlendSettings(),
                      batch_size=6)
    assert out.shape == frames.shape and out.dtype == np.uint8
    for t, found in enumerate(detector.detect(out)):
        x0, y0, x1, y1 = track.boxes[t].astype(int)
        changed = np.abs(out[t, y0:y1, x0:x1].astype(float) - frames[t, y0:y1, x0:x1]).mean()
        assert changed > 8.0, (t, changed)
        boxes, probs, _ = found
        assert len(boxes) and probs.max() > 0.9
        assert max(_iou(track.boxes[t], b) for b in boxes) > 0.5


def test_batches_and_chunks_give_the_same_frames(target, hopper_crop):
    frames, track = target

    def hopper(crops):
        return np.repeat(hopper_crop[None], len(crops), axis=0), None

    settings = BlendSettings(colour="lab_mean_std", erode=0.05)
    whole = swap_frames(frames, track.landmarks, hopper, SIZE, DEFAULT_COVERAGE, settings,
                        batch_size=16)
    chunks = [(frames[i:i + 5], track.landmarks[i:i + 5]) for i in range(0, 16, 5)]
    streamed = np.concatenate(list(swap_chunks(chunks, hopper, SIZE, DEFAULT_COVERAGE,
                                               settings)))
    np.testing.assert_array_equal(whole, streamed)


def test_model_mask_decides_where_the_swap_shows(target, hopper_crop):
    frames, track = target
    frames, landmarks = frames[:4], track.landmarks[:4]

    def hopper_without_face(crops):  # a model whose mask says "no face here"
        n = len(crops)
        return np.repeat(hopper_crop[None], n, 0), np.zeros((n, SIZE, SIZE), np.float32)

    unchanged = swap_frames(frames, landmarks, hopper_without_face, SIZE, DEFAULT_COVERAGE,
                            BlendSettings(mask="model"))
    np.testing.assert_array_equal(unchanged, frames)
    by_landmarks = swap_frames(frames, landmarks, hopper_without_face, SIZE, DEFAULT_COVERAGE,
                               BlendSettings(mask="landmarks"))
    assert np.abs(by_landmarks.astype(float) - frames).mean() > 1.0


@pytest.mark.parametrize("method", [m for m in COLOUR_METHODS if m != "none"])
def test_colour_matching_moves_the_swap_toward_the_target(method, target, hopper_crop):
    frames, track = target
    aligned = align_faces(frames[:1], track.landmarks[:1], SIZE, DEFAULT_COVERAGE)
    crop_landmarks = transform_points(aligned.matrices[0], track.landmarks[0])
    _, region = face_mask(BlendSettings(), crop_landmarks, None, SIZE)
    assert region.mean() > 0.2
    target_mean = aligned.crops[0][region].mean(axis=0)
    before = np.abs(hopper_crop[region].mean(axis=0) - target_mean)
    matched = match_colour(hopper_crop, aligned.crops[0], region, method)
    after = np.abs(matched[region].mean(axis=0) - target_mean)
    assert before.sum() > 20  # a real difference to remove (an old photo vs a car video)
    assert after.sum() < 0.25 * before.sum(), (before, after)


def test_bad_settings_and_swapper_outputs_are_refused(target):
    frames, track = target
    with pytest.raises(ValueError, match="colour must be one of"):
        BlendSettings(colour="sepia")
    with pytest.raises(ValueError, match="mask must be one of"):
        BlendSettings(mask="hull")
    with pytest.raises(ValueError, match="coverage must be in"):
        align_faces(frames[:1], track.landmarks[:1], SIZE, 1.5)
    with pytest.raises(ValueError, match="swapper returned faces"):
        swap_frames(frames[:2], track.landmarks[:2], lambda c: (c[:, :64, :64], None), SIZE,
                    DEFAULT_COVERAGE, BlendSettings())
    with pytest.raises(ValueError, match=r"landmarks must be \(2, 5, 2\)"):
        swap_frames(frames[:2], track.landmarks[:3], lambda c: (c, None), SIZE,
                    DEFAULT_COVERAGE, BlendSettings())


def test_landmark_mask_covers_the_face_and_erode_blur_shape_its_edge(target):
    frames, track = target
    aligned = align_faces(frames[:1], track.landmarks[:1], SIZE, DEFAULT_COVERAGE)
    points = aligned.crop_landmarks(track.landmarks[:1])[0]
    plain, region = face_mask(BlendSettings(blur=0.0), points, None, SIZE)
    # eyes, nose and mouth corners well inside the swapped area; the crop's border outside
    x, y = np.round(points).astype(int).T
    assert (plain[y, x] == 1.0).all()
    assert plain[0].max() == 0 and plain[:, 0].max() == 0
    eroded, _ = face_mask(BlendSettings(blur=0.0, erode=0.05), points, None, SIZE)
    grown, _ = face_mask(BlendSettings(blur=0.0, erode=-0.05), points, None, SIZE)
    assert eroded.sum() < 0.85 * plain.sum() and grown.sum() > 1.1 * plain.sum()
    soft, soft_region = face_mask(BlendSettings(blur=0.04), points, None, SIZE)
    np.testing.assert_array_equal(soft_region, region)  # colour statistics ignore the feather

    def partial(mask: np.ndarray) -> int:
        return int(((mask > 0.02) & (mask < 0.98)).sum())

    assert partial(soft) > 3 * partial(plain)


def test_a_face_cut_by_the_frame_edge_is_swapped_inside_the_frame(target, hopper_crop):
    frames, track = target
    cut = np.ascontiguousarray(frames[:4, :, 80:])  # the left half of the face is off-frame
    landmarks = track.landmarks[:4] - (80, 0)

    def hopper(crops):
        return np.repeat(hopper_crop[None], len(crops), axis=0), None

    out = swap_frames(cut, landmarks, hopper, SIZE, DEFAULT_COVERAGE, BlendSettings())
    assert out.shape == cut.shape
    changed = np.abs(out.astype(float) - cut).max(axis=-1) > 0
    assert changed[:, :, :20].mean() > 0.2  # the visible half of the face is swapped
    assert not changed[:, :, 60:].any()  # nothing beyond the face's right side

"""faceswap's training recipe around the loss: colour augmentation (against faceswap's own code
when a checkout is given), the extended mask from five landmarks, training masks that follow
each face through the augmentation, faceswap's Adam settings, and its face-centred framing.
Real faces throughout (the demo photos, the carphone clip)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfmnist.faceswap.align import DEFAULT_COVERAGE, align_faces, template_points
from dfmnist.faceswap.augment import BatchRecipe, colour_augment, resize_faces, training_batch
from dfmnist.faceswap.blend import BlendSettings, landmark_mask
from dfmnist.faceswap.extended_mask import extended_hull, extended_mask
from dfmnist.faceswap.training import TrainSettings, train_swap
from dfmnist.storage.video import read_video

RUNNER = Path(__file__).with_name("faceswap_original.py")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def aligned(detector, carphone_path) -> dict:
    """Twelve real frames of the carphone clip aligned at 128 px, with their crop landmarks."""
    frames = read_video(carphone_path, max_frames=96).frames[::8]
    track = detector.track(frames)
    assert track.found.all()
    faces = align_faces(frames, track.landmarks, 128, DEFAULT_COVERAGE)
    return {"crops": faces.crops, "landmarks": faces.crop_landmarks(track.landmarks)}


def test_colour_augmentation_equals_faceswaps_own_code(aligned, tmp_path) -> None:
    """faceswap's ImageAugmentation.color_adjust itself, run from a checkout at
    09c7d8aca3c6 (FACESWAP_SRC; tqdm on FACESWAP_LIBS) in its own process, with its numpy
    draws served from the generator ours gets: the same bytes, CLAHE picks included."""
    source = os.environ.get("FACESWAP_SRC")
    if not source:
        pytest.skip("FACESWAP_SRC (a faceswap checkout) is not set")
    faces, seed, rounds = aligned["crops"][:6], 11, 8
    np.savez(tmp_path / "in.npz", faces=faces, seed=seed, rounds=rounds)
    env = {**os.environ, "FACESWAP_BACKEND": "cpu",
           "PYTHONPATH": os.environ.get("FACESWAP_LIBS", "")}
    subprocess.run([sys.executable, str(RUNNER), source, str(tmp_path / "in.npz"),
                    str(tmp_path / "out.npz")], check=True, env=env, cwd=tmp_path)
    theirs = np.load(tmp_path / "out.npz")["faces"]
    rng = np.random.Generator(np.random.PCG64(seed))
    ours = np.stack([colour_augment(faces, rng, 128) for _ in range(rounds)])
    changed = np.abs(ours.astype(int) - faces.astype(int)).mean()
    print(f"faceswap's colour_adjust vs ours: {rounds} batches of {len(faces)} real faces, "
          f"{np.count_nonzero(ours != theirs)} bytes differ of {ours.size} (mean change "
          f"{changed:.1f} levels)")
    assert np.array_equal(ours, theirs)


def test_colour_augmentation_moves_lightness_within_faceswaps_range(aligned) -> None:
    """Each face's L moves toward white or black by up to 30 %, its a and b by up to 8 %; the
    same generator state gives the same batch."""
    faces = aligned["crops"]
    lab = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2LAB) for f in faces]).astype(float)
    changes = []
    for seed in range(6):
        out = colour_augment(faces, np.random.default_rng(seed), 128)
        again = colour_augment(faces, np.random.default_rng(seed), 128)
        assert np.array_equal(out, again) and out.shape == faces.shape
        new = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2LAB) for f in out]).astype(float)
        changes.append((new - lab).mean(axis=(1, 2)))
    changes = np.concatenate(changes)
    assert np.abs(changes[:, 0]).max() <= 0.3 * 255 + 2
    assert np.abs(changes[:, 1:]).max() <= 0.08 * 255 + 2
    assert (changes[:, 0] > 5).any() and (changes[:, 0] < -5).any()  # both ways happen


def test_extended_mask_holds_the_face_from_jaw_to_forehead(grace_hopper, detector) -> None:
    """On a real face: every landmark deep inside, the lower forehead in, the cheeks beyond the
    ears out; wider and taller than the landmark ellipse; it turns with the face."""
    track = detector.track(grace_hopper[None])
    faces = align_faces(grace_hopper[None], track.landmarks, 256, DEFAULT_COVERAGE)
    points = faces.crop_landmarks(track.landmarks)[0]
    mask = extended_mask(points, 256)
    assert mask.dtype == np.float32 and mask.shape == (256, 256)
    for x, y in points:
        assert mask[int(round(y)), int(round(x))] == 1.0
    eyes = (points[0] + points[1]) / 2
    iod = float(np.hypot(*(points[1] - points[0])))
    assert mask[int(eyes[1] - 0.35 * iod), int(eyes[0])] == 1.0  # the lower forehead
    assert mask[int(eyes[1] - 0.8 * iod), int(eyes[0])] == 0.0  # not the hair line
    assert mask[int(eyes[1]), int(eyes[0] + 1.4 * iod)] == 0.0  # beyond the cheek
    assert mask.sum() > 1.1 * landmark_mask(points, 256).sum()
    # rolled by 90 degrees about the crop centre, the mask rolls with it
    turn = cv2.getRotationMatrix2D((127.5, 127.5), 90, 1.0)
    turned = extended_mask(points @ turn[:, :2].T + turn[:, 2], 256)
    expected = cv2.warpAffine(mask, turn, (256, 256))
    overlap = np.minimum(turned, expected).sum() / np.maximum(turned, expected).sum()
    assert overlap > 0.97, overlap
    with pytest.raises(ValueError, match="five finite"):
        extended_hull(np.full((5, 2), np.nan))
    assert BlendSettings().mask == "extended"


def test_training_masks_follow_each_face_through_flips_and_turns(aligned) -> None:
    """faceswap recipe batches: the extended mask and the eye and mouth areas sit on each
    augmented face: the mouth area below the eyes even when the face was mirrored (MTCNN's
    left and right swap with the image), all inside the face mask."""
    pool = resize_faces(aligned["crops"], 64)
    marks = (aligned["landmarks"] + 0.5) * 64 / 128 - 0.5
    recipe = BatchRecipe(face_mask="extended", regions=True, colour=True, source_size=128)
    indices = np.arange(len(pool))
    batch = training_batch(pool, indices, 64, 64, np.random.default_rng(4), recipe, marks)
    for name in ("face_masks", "eye_masks", "mouth_masks"):
        masks = getattr(batch, name)
        assert masks.shape == (len(pool), 1, 64, 64) and masks.dtype == np.float32, name
    rows = np.arange(64)[:, None]
    for face, eye, mouth in zip(batch.face_masks[:, 0], batch.eye_masks[:, 0],
                                batch.mouth_masks[:, 0], strict=True):
        eye_row = (eye.sum(axis=1) * rows[:, 0]).sum() / eye.sum()
        mouth_row = (mouth.sum(axis=1) * rows[:, 0]).sum() / mouth.sum()
        assert mouth_row > eye_row + 8, (eye_row, mouth_row)
        assert (np.minimum(eye + mouth, 1) * (1 - face)).sum() < 0.05 * (eye + mouth).sum()
    # the colour changes target and input alike: the input is still a warp of the target
    small = torch.nn.functional.interpolate(torch.from_numpy(batch.targets), size=64,
                                            mode="area").numpy()
    assert np.abs(batch.inputs - small).mean() < 0.15


@pytest.mark.parametrize(("recipe", "betas"), [("faceswap", (0.5, 0.99)), ("simple", (0.9, 0.999))])
def test_the_recipe_sets_adam_and_trains(aligned, tmp_path, recipe, betas) -> None:
    """faceswap's Adam (beta_1 0.5, beta_2 0.99, epsilon 1e-7) with its recipe, torch's betas
    with the simple one; both train a real couple (the carphone faces vs their mirror)."""
    faces_a = aligned["crops"]
    faces_b = np.ascontiguousarray(faces_a[:, :, ::-1])
    marks_b = aligned["landmarks"].copy()
    marks_b[..., 0] = 127 - marks_b[..., 0]
    marks_b = marks_b[:, [1, 0, 2, 4, 3]]
    settings = TrainSettings(iterations=30, batch_size=4, lr=2e-3, seed=1, checkpoint_every=30,
                             recipe=recipe)
    result = train_swap("faceswap", 0.0625, faces_a, faces_b, settings, tmp_path / "m.pt",
                        landmarks_a=aligned["landmarks"], landmarks_b=marks_b)
    state = torch.load(tmp_path / "m.pt", weights_only=False)
    group = state["optimiser"]["param_groups"][0]
    assert tuple(group["betas"]) == betas and group["eps"] == 1e-7
    assert state["identity"]["recipe"] == recipe
    losses = np.asarray(result["reconstruction"])
    assert losses[-5:].mean() < 0.9 * losses[:5].mean(), losses
    with pytest.raises(ValueError, match="landmarks_a must be"):
        train_swap("faceswap", 0.0625, faces_a, faces_b, settings, tmp_path / "x.pt",
                   landmarks_a=aligned["landmarks"][:2])
    with pytest.raises(ValueError, match="recipe must be one of"):
        TrainSettings(iterations=1, batch_size=1, lr=1e-3, seed=0, checkpoint_every=1,
                      recipe="dfl")


def test_crops_frame_the_face_as_faceswaps_face_centred_extract() -> None:
    """At faceswap's 87.5 % coverage a crop is 3.31 eye distances wide, its centre 0.22 of
    them below the eye midpoint (faceswap's face centring of a frontal face)."""
    points = template_points(256, DEFAULT_COVERAGE)
    iod = float(np.hypot(*(points[1] - points[0])))
    assert 256 / iod == pytest.approx(3.779 * 0.875, abs=1e-3)
    assert (128 - (points[0, 1] + points[1, 1]) / 2) / iod == pytest.approx(0.220, abs=1e-3)

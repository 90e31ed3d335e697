"""faceswap's default loss (`dfmnist.faceswap.losses`) against its definition.

The reference SSIM is written from faceswap's DSSIMObjective (lib/model/losses_tf.py at
09c7d8aca3c6): loops over its 3x3 patches in numpy, in its (B, H, W, C) layout, on the
astronaut and Grace Hopper photos aligned by MTCNN's landmarks."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dfmnist.faceswap.align import DEFAULT_COVERAGE, align_faces
from dfmnist.faceswap.augment import face_ellipse, resize_faces
from dfmnist.faceswap.losses import (
    EYE_HALF_HEIGHT,
    EYE_HALF_WIDTH,
    FACESWAP_DEFAULTS,
    FACESWAP_SOURCES,
    MOUTH_CENTRE_DROP,
    landmark_regions,
    penalized_mask_loss,
    region_masks,
    ssim_loss,
    ssim_loss_map,
)

from numerics import assert_float64_equal, assert_within_rounding, reference_rounding

# faceswap's DSSIMObjective defaults (losses_tf.py 63-70), kept apart from the module's own
K_1, K_2, KERNEL, MAX_VALUE = 0.01, 0.03, 3, 1.0
C_1, C_2 = (K_1 * MAX_VALUE) ** 2, (K_2 * MAX_VALUE) ** 2


def reference_dssim(pred: np.ndarray, target: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Per-patch (1 - SSIM) / 2 of (B, H, W, C) images, (B, H // 3, W // 3), one patch at a
    time: all 27 values of a block pooled, population variances, cov = E[xy] - E[x]E[y]."""
    x, y = target.astype(dtype), pred.astype(dtype)
    c_1, c_2, one, two = dtype(C_1), dtype(C_2), dtype(1), dtype(2)
    rows, cols = x.shape[1] // KERNEL, x.shape[2] // KERNEL
    out = np.empty((x.shape[0], rows, cols), dtype)
    for b in range(x.shape[0]):
        for i in range(rows):
            for j in range(cols):
                block = np.s_[b, i * KERNEL:(i + 1) * KERNEL, j * KERNEL:(j + 1) * KERNEL]
                p_t, p_p = x[block].ravel(), y[block].ravel()
                u_t, u_p = p_t.mean(), p_p.mean()
                var_t, var_p = ((p_t - u_t) ** 2).mean(), ((p_p - u_p) ** 2).mean()
                cov = (p_t * p_p).mean() - u_t * u_p
                ssim = (two * u_t * u_p + c_1) * (two * cov + c_2) / (
                    (u_t ** 2 + u_p ** 2 + c_1) * (var_p + var_t + c_2))
                out[b, i, j] = (one - ssim) / two
    return out


def nchw(images: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    """(B, H, W, C) numpy -> (B, C, H, W) tensor, our training layout."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(dtype)


@pytest.fixture(scope="module")
def aligned(default_detector, astronaut, grace_hopper) -> dict:
    """Both photos aligned onto the template at 128 px, their landmarks in crop pixels."""
    crops, landmarks = [], []
    for photo in (astronaut, grace_hopper):
        track = default_detector.track(photo[None])
        assert track.found.all(), "MTCNN missed a demo face"
        faces = align_faces(photo[None], track.landmarks, 128, DEFAULT_COVERAGE)
        crops.append(faces.crops[0])
        landmarks.append(faces.crop_landmarks(track.landmarks)[0])
    return {"crops": np.stack(crops), "landmarks": np.stack(landmarks)}


def perturbed_pairs(crops: np.ndarray, size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(pred, target) pairs of float64 (B, S, S, 3) images in [0, 1]."""
    target = resize_faces(crops, size).astype(np.float64) / 255
    rng = np.random.default_rng(7)
    blurred = np.stack([cv2.GaussianBlur(face, (0, 0), 1.2) for face in target])
    return {
        "noise": (np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1), target),
        "blur": (blurred, target),
        "shift": (np.roll(target, (1, 2), axis=(1, 2)), target),
        "other face": (target[::-1].copy(), target),
        "same": (target.copy(), target),
    }


@pytest.mark.numerics
@pytest.mark.parametrize("size", [64, 128])
def test_ssim_matches_the_reference_on_real_faces(aligned, size: int) -> None:
    for name, (pred, target) in perturbed_pairs(aligned["crops"], size).items():
        truth = reference_dssim(pred, target)
        ours64 = ssim_loss_map(nchw(pred), nchw(target))
        assert ours64.shape == truth.shape == (2, size // 3, size // 3)
        assert_float64_equal(ours64, truth, f"{name} {size} map")
        assert_float64_equal(ssim_loss(nchw(pred), nchw(target)), truth.mean(), name)
        # float32: ours may miss the float64 truth by 4x what the float32 reference misses it by
        ours32 = ssim_loss_map(nchw(pred, torch.float32), nchw(target, torch.float32))
        assert ours32.dtype == torch.float32
        reference = reference_rounding(
            [reference_dssim(pred.astype(np.float32), target.astype(np.float32), np.float32)],
            truth)
        assert_within_rounding(ours32, truth, reference, what=f"{name} {size} float32")
        # the scalar loss, a mean over thousands of patches: measured within 1.3e-6 here
        scalar = abs(float(ssim_loss(nchw(pred, torch.float32), nchw(target, torch.float32)))
                     - float(truth.mean()))
        assert scalar < 1e-5, f"{name} {size}: float32 loss off by {scalar:.2e}"
        if name != "same":  # a real difference: the loss is far from 0
            assert truth.mean() > 0.01, name


def test_constants_window_and_mapping_by_hand() -> None:
    # flat patches: SSIM = (2ab + c1) / (a^2 + b^2 + c1), so black vs white pins c1 and the map
    black, white = torch.zeros(1, 3, 6, 6, dtype=torch.float64), torch.ones(1, 3, 6, 6,
                                                                             dtype=torch.float64)
    expected = (1 - C_1 / (1 + C_1)) / 2
    assert torch.allclose(ssim_loss_map(black, white), torch.full((1, 2, 2), expected,
                                                                  dtype=torch.float64))
    # a patch and its mirror about the mean: equal means and variances, cov = -var, so
    # SSIM = (c2 - 2 var) / (c2 + 2 var) with var over all 27 values (channels pooled)
    rng = np.random.default_rng(3)
    x = rng.uniform(0.3, 0.7, (1, 3, 3, 3))
    y = 2 * x.mean() - x
    var = x.var()
    expected = (1 - (C_2 - 2 * var) / (C_2 + 2 * var)) / 2
    got = float(ssim_loss(torch.from_numpy(y), torch.from_numpy(x)))
    assert got == pytest.approx(expected, rel=1e-12)
    # constant channels: a per-channel SSIM would see no structure; the pooled one does
    a = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)[None, :, None, None].expand(1, 3, 3, 3)
    b = a.flip(1)
    mean_ab = float((a * b).mean())
    ssim = (C_2 + 2 * (mean_ab - 0.25)) / (C_2 + 2 * 0.06)
    assert float(ssim_loss(a, b)) == pytest.approx((1 - ssim) / 2, rel=1e-12)


def test_patches_tile_without_overlap_and_drop_the_remainder() -> None:
    rng = np.random.default_rng(5)
    target = torch.from_numpy(rng.uniform(0, 1, (1, 3, 67, 65)))
    pred = torch.from_numpy(rng.uniform(0, 1, (1, 3, 67, 65)))
    base = ssim_loss_map(pred, target)
    assert base.shape == (1, 22, 21)
    edited = pred.clone()
    edited[..., 66, :] = 0.0  # row 66: beyond 22 patches of 3
    edited[..., :, 63:] = 1.0  # columns 63-64: beyond 21 patches
    assert torch.equal(ssim_loss_map(edited, target), base)
    edited = pred.clone()
    edited[0, 1, 4, 5] += 0.3  # inside patch (1, 1) only
    changed = ssim_loss_map(edited, target) != base
    assert changed[0, 1, 1] and int(changed.sum()) == 1


def test_zero_for_identical_symmetric_and_channel_order_free(aligned) -> None:
    pairs = perturbed_pairs(aligned["crops"], 64)
    pred, target = nchw(pairs["noise"][0]), nchw(pairs["noise"][1])
    assert abs(float(ssim_loss(target, target))) < 1e-12
    # float32 is not exactly 0: cov = E[xy] - E[x]E[y] and var = E[(x - E[x])^2] round apart
    # (faceswap's float32 does the same), by about 1e-6 on these faces
    assert abs(float(ssim_loss(target.float(), target.float()))) < 1e-5
    assert torch.equal(ssim_loss_map(pred, target), ssim_loss_map(target, pred))
    # faceswap trains on BGR, we on RGB: reordering both images' channels changes nothing
    bgr = ssim_loss(pred.flip(1), target.flip(1))
    assert_float64_equal(bgr, ssim_loss(pred, target), "BGR vs RGB")


def test_grows_with_noise(aligned) -> None:
    target = nchw(resize_faces(aligned["crops"], 64).astype(np.float64) / 255)
    noise = torch.from_numpy(np.random.default_rng(11).normal(size=tuple(target.shape)))
    losses = [float(ssim_loss((target + s * noise).clamp(0, 1), target))
              for s in (0.005, 0.02, 0.05, 0.1, 0.2, 0.4)]
    assert all(a < b for a, b in zip(losses, losses[1:], strict=False)), losses
    assert 0 < losses[0] < 0.05 and 0.2 < losses[-1] <= 1.0


def test_gradient_flows(aligned) -> None:
    target = nchw(resize_faces(aligned["crops"], 64).astype(np.float32) / 255, torch.float32)
    pred = (target + 0.1 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
            ).clamp(0, 1).requires_grad_(True)
    ssim_loss(pred, target).backward()
    assert pred.grad is not None and pred.grad.shape == pred.shape
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    # the analytic gradient is the numerical one (float64, a small crop)
    small = torch.rand(1, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    start = (small + 0.1).clamp(0, 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: ssim_loss(p, small), (start,))


def test_batches_and_shapes(aligned) -> None:
    pred, target = perturbed_pairs(aligned["crops"], 64)["blur"]
    batch = ssim_loss(nchw(pred), nchw(target))
    singles = [ssim_loss(nchw(pred[i:i + 1]), nchw(target[i:i + 1])) for i in range(len(pred))]
    assert batch.shape == ()
    assert_float64_equal(batch, torch.stack(singles).mean(), "batch mean")
    with pytest.raises(ValueError, match="differ in shape"):
        ssim_loss(nchw(pred), nchw(target[:1]))
    with pytest.raises(ValueError, match="H, W >= 3"):
        ssim_loss(torch.zeros(1, 3, 2, 8), torch.zeros(1, 3, 2, 8))
    with pytest.raises(ValueError, match="float dtype"):
        ssim_loss(nchw(pred), nchw(target, torch.float32))


# --- the penalized mask loss -----------------------------------------------------------------


@pytest.fixture(scope="module")
def crops64(aligned) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets (2, 3, 64, 64), their eye and mouth masks (2, 1, 64, 64), float64."""
    target = nchw(resize_faces(aligned["crops"], 64).astype(np.float64) / 255)
    eyes, mouths = region_masks(aligned["landmarks"] * 64 / 128, 64)
    assert eyes.shape == mouths.shape == (2, 1, 64, 64) and eyes.dtype == torch.float32
    return target, eyes.double(), mouths.double()


def test_mask_loss_ignores_everything_outside_the_masks(crops64) -> None:
    target, eyes, mouths = crops64
    face = torch.from_numpy(face_ellipse(64, DEFAULT_COVERAGE)).double()[None, None]
    outside = ((face == 0) & (eyes == 0) & (mouths == 0)).expand_as(target)
    assert outside.float().mean() > 0.2, "the test needs pixels outside every mask"
    rng = np.random.default_rng(2)
    losses = []
    for _ in range(2):
        junk = torch.from_numpy(rng.uniform(0, 1, tuple(target.shape)))
        pred = torch.where(outside, junk, target)
        losses.append(penalized_mask_loss(pred, target, face, eyes, mouths))
    assert torch.equal(losses[0], losses[1])
    assert abs(float(losses[0])) < 1e-12
    inside = target.clone()
    inside[:, :, 32, 32] = 1 - inside[:, :, 32, 32]  # the face ellipse's middle
    assert float(penalized_mask_loss(inside, target, face, eyes, mouths)) > 1e-5


def test_eye_and_mouth_terms_add_three_and_two_times_the_base_loss(crops64) -> None:
    target, eyes, mouths = crops64
    face = torch.ones_like(eyes)
    # one pixel each: the middle of an eye, of the mouth, and a face pixel outside both
    spots = {"face": tuple(int(v) for v in torch.nonzero((eyes[0, 0] == 0)
                                                         & (mouths[0, 0] == 0))[0])}
    for name, region, other in (("eye", eyes, mouths), ("mouth", mouths, eyes)):
        weight = torch.where(other[0, 0] == 0, region[0, 0], 0.0)
        spots[name] = divmod(int(weight.argmax()), weight.shape[1])
        assert weight.max() > 0.95, f"no {name} pixel at full weight"
    losses = {}
    for name, (row, col) in spots.items():
        pred = target.clone()
        pred[0, 1, row, col] += 0.25
        losses[name] = float(penalized_mask_loss(pred, target, face, eyes, mouths,
                                                 loss=F.l1_loss, l2_weight=0.0))
    # faceswap adds a term per area, so an eye pixel counts 1 + 3 m_eye, a mouth pixel
    # 1 + 2 m_mouth (m: the area mask there, 1 in its middle)
    assert losses["face"] == pytest.approx(0.25 / target.numel(), rel=1e-9)
    m_eye = float(eyes[(0, 0, *spots["eye"])])
    m_mouth = float(mouths[(0, 0, *spots["mouth"])])
    assert losses["eye"] / losses["face"] == pytest.approx(1 + 3 * m_eye, rel=1e-9)
    assert losses["mouth"] / losses["face"] == pytest.approx(1 + 2 * m_mouth, rel=1e-9)
    assert 1 + 3 * m_eye > 3.9 and 1 + 2 * m_mouth > 2.9


@pytest.mark.numerics
def test_default_mask_loss_is_faceswaps_sum_of_terms(crops64) -> None:
    target, eyes, mouths = crops64
    face = torch.from_numpy(face_ellipse(64, DEFAULT_COVERAGE)).double()[None, None]
    rng = np.random.default_rng(4)
    pred = (target + torch.from_numpy(rng.normal(0, 0.08, tuple(target.shape)))).clamp(0, 1)
    expected = 0.0
    for mask, weight in ((face, 1), (eyes, 3), (mouths, 2)):
        m_pred = (pred * mask).permute(0, 2, 3, 1).numpy()
        m_true = (target * mask).permute(0, 2, 3, 1).numpy()
        expected += weight * reference_dssim(m_pred, m_true).mean()
        expected += 1.0 * np.mean((m_pred - m_true) ** 2)  # l2_reg_term 100 %, unscaled
    assert_float64_equal(penalized_mask_loss(pred, target, face, eyes, mouths), expected,
                         "penalized mask loss")
    # a multiplier of 1 drops the area; no face mask (penalized_mask_loss off) drops both
    without_eyes = penalized_mask_loss(pred, target, face, None, mouths)
    assert torch.equal(penalized_mask_loss(pred, target, face, eyes, mouths, eye_multiplier=1),
                       without_eyes)
    unmasked = ssim_loss(pred, target) + F.mse_loss(pred, target)
    assert_float64_equal(penalized_mask_loss(pred, target, None, eyes, mouths), unmasked,
                         "unmasked")


# faceswap's areas on its 68-point mean face (lib/align/aligned_face.py _MEAN_FACE), in IOD:
# each eye's hull 0.402 x 0.125, the outer lip hull 0.344 tall, both grown by the dilation
# of size // 32 on a crop 3.78 IOD wide (about 0.059 each side), then blurred by a Gaussian
# of ksize size // 16 + 1, sigma 0.3 ((k - 1) / 2 - 1) + 0.8 = 2.9 px on a 256 crop
FS_EYE_HULL, FS_MOUTH_HULL_HEIGHT, FS_DILATION = (0.402, 0.125), 0.344, 3.78 / 64
FS_BLUR_SIGMA = (0.3 * ((17 - 1) / 2 - 1) + 0.8) / (256 / 3.78)


def _extent(mask: np.ndarray, axis: np.ndarray) -> float:
    """Length of the mask's >= 0.5 part along a unit direction, in pixels."""
    ys, xs = np.nonzero(mask >= 0.5)
    along = xs * axis[0] + ys * axis[1]
    return float(along.max() - along.min() + 1)


def _blob(mask: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centroid (x, y), long-axis angle (degrees) and mass of a mask."""
    ys, xs = np.mgrid[:mask.shape[0], :mask.shape[1]]
    mass = float(mask.sum())
    cx, cy = (mask * xs).sum() / mass, (mask * ys).sum() / mass
    mxx = (mask * (xs - cx) ** 2).sum()
    myy = (mask * (ys - cy) ** 2).sum()
    mxy = (mask * (xs - cx) * (ys - cy)).sum()
    return np.array([cx, cy]), float(np.degrees(0.5 * np.arctan2(2 * mxy, mxx - myy))), mass


def test_regions_sit_where_mtcnn_puts_the_eyes_and_mouth(default_detector, astronaut,
                                                         grace_hopper) -> None:
    turned = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((256, 140), 20, 1.0), (512, 512),
                            borderMode=cv2.BORDER_REPLICATE)
    for name, photo in (("astronaut", astronaut), ("hopper", grace_hopper), ("rolled", turned)):
        lm = default_detector.track(photo[None]).landmarks[0]
        assert np.isfinite(lm).all(), f"MTCNN missed the {name} face"
        eyes, mouth = landmark_regions(lm, photo.shape[:2])
        assert eyes.shape == mouth.shape == photo.shape[:2]
        iod = float(np.hypot(*(lm[1] - lm[0])))
        roll = float(np.degrees(np.arctan2(lm[1, 1] - lm[0, 1], lm[1, 0] - lm[0, 0])))
        corners = (lm[3] + lm[4]) / 2
        for point in lm[:2]:  # full weight on both eyes, none on the nose or the mouth
            assert eyes[int(round(point[1])), int(round(point[0]))] > 0.99, name
        x, y = np.rint(corners).astype(int)
        assert mouth[y, x] > 0.99 and eyes[y, x] == 0.0, name
        x, y = np.rint(lm[2]).astype(int)
        assert eyes[y, x] < 0.01 and mouth[y, x] < 0.01, name
        # each eye: an ellipse centred on its landmark, long axis along the eye line
        ys, xs = np.mgrid[:eyes.shape[0], :eyes.shape[1]]
        left_side = (xs - (lm[0, 0] + lm[1, 0]) / 2) * (lm[1, 0] - lm[0, 0]) + \
                    (ys - (lm[0, 1] + lm[1, 1]) / 2) * (lm[1, 1] - lm[0, 1]) < 0
        for point, half in ((lm[0], left_side), (lm[1], ~left_side)):
            centre, angle, mass = _blob(np.where(half, eyes, 0.0))
            assert np.hypot(*(centre - point)) < 0.02 * iod, name
            assert abs(angle - roll) < 2.0, name
            ellipse = np.pi * EYE_HALF_WIDTH * EYE_HALF_HEIGHT * iod ** 2
            assert mass == pytest.approx(ellipse, rel=0.05), name
            # as big as faceswap's dilated eye hull on its mean face, to 1 px + 0.025 IOD
            ux = (lm[1] - lm[0]) / iod
            eye = np.where(half, eyes, 0.0)
            for axis, hull in ((ux, FS_EYE_HULL[0]), (np.array([-ux[1], ux[0]]), FS_EYE_HULL[1])):
                size = (hull + 2 * FS_DILATION) * iod
                assert abs(_extent(eye, axis) - size) < 1 + 0.025 * iod, name
        # the edge is feathered like faceswap's Gaussian: 0.9 to 0.1 over 2.56 sigma
        steps = np.arange(0.0, 0.5 * iod, 0.25)
        ray = np.rint(lm[0] - steps[:, None] * (lm[1] - lm[0]) / iod).astype(int)
        profile = eyes[ray[:, 1], ray[:, 0]]
        ramp = steps[np.argmax(profile < 0.1)] - steps[np.flatnonzero(profile > 0.9)[-1]]
        assert abs(ramp / iod - 2.563 * FS_BLUR_SIGMA) < 0.03, name
        # the mouth: just below the corners' midpoint, along the corner line
        centre, angle, _ = _blob(mouth)
        line = lm[4] - lm[3]
        down = np.array([-line[1], line[0]]) / np.hypot(*line)
        assert np.hypot(*(centre - corners - MOUTH_CENTRE_DROP * iod * down)) < 0.03 * iod
        assert abs(angle - np.degrees(np.arctan2(line[1], line[0]))) < 2.0, name
        tall = (FS_MOUTH_HULL_HEIGHT + 2 * FS_DILATION) * iod
        assert abs(_extent(mouth, down) - tall) < 1 + 0.025 * iod, name
        wide = np.hypot(*line) + 2 * FS_DILATION * iod
        assert abs(_extent(mouth, line / np.hypot(*line)) - wide) < 1 + 0.025 * iod, name
        if name == "rolled":
            assert 10 < abs(roll) < 30  # MTCNN reads the 20 degree roll as about 15


def test_regions_reject_bad_landmarks() -> None:
    with pytest.raises(ValueError, match="five finite"):
        landmark_regions(np.full((5, 2), np.nan), 64)
    with pytest.raises(ValueError, match=r"\(B, 5, 2\)"):
        region_masks(np.zeros((5, 2)), 64)


def test_recipe_record_covers_every_value() -> None:
    fields = {f.name for f in dataclasses.fields(FACESWAP_DEFAULTS)}
    assert set(FACESWAP_SOURCES) == fields
    assert (FACESWAP_DEFAULTS.adam_beta_1, FACESWAP_DEFAULTS.adam_beta_2,
            FACESWAP_DEFAULTS.epsilon, FACESWAP_DEFAULTS.learning_rate) == (0.5, 0.99, 1e-7, 5e-5)
    assert (FACESWAP_DEFAULTS.loss_function, FACESWAP_DEFAULTS.penalized_mask_loss,
            FACESWAP_DEFAULTS.learn_mask) == ("ssim", True, False)


def test_against_faceswaps_own_class_when_tensorflow_is_there(aligned) -> None:
    """Runs faceswap's DSSIMObjective itself: needs TensorFlow and a faceswap checkout at
    09c7d8aca3c6 named by FACESWAP_SRC (neither is a dependency of this project)."""
    import os
    import sys

    pytest.importorskip("tensorflow")
    source = os.environ.get("FACESWAP_SRC")
    if not source:
        pytest.skip("FACESWAP_SRC (a faceswap checkout) is not set")
    sys.path.insert(0, source)
    try:
        from lib.model.losses_tf import DSSIMObjective
    except Exception as exc:  # that commit's Keras imports fail on newer TensorFlow
        pytest.skip(f"faceswap's losses do not import here: {exc}")
    finally:
        sys.path.remove(source)
    pred, target = perturbed_pairs(aligned["crops"], 64)["noise"]
    theirs = float(DSSIMObjective()(target.astype(np.float32), pred.astype(np.float32)))
    ours = float(ssim_loss(nchw(pred, torch.float32), nchw(target, torch.float32)))
    assert ours == pytest.approx(theirs, abs=1e-6)

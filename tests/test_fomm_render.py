"""FOMM rendering on real faces: batches, the shared source encoding, folded norms, sub-pixel
decoders, row-split and Winograd convolutions and channels_last compute the plain networks'
function (to ~1e-12 in float64; in float32 as close to the float64 frames as the plain
networks' own float32, tests/numerics), a still driving clip is no motion, the registry's
generator end to end, and the CUDA precisions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfmnist.generators import GENERATORS, make_generator
from dfmnist.generators.fomm import FommGenerator, adapt_movement_scale, relative_keypoints
from dfmnist.generators.fomm.blocks import ConvBlock, coordinate_grid
from dfmnist.generators.fomm.inference import RowSplitConv, SubpixelUpBlock
from dfmnist.generators.fomm.winograd import WinogradConv2d

from fomm_small import SIZE, moving_clip, to_batch
from numerics import (
    Rounding,
    assert_float64_equal,
    assert_within_rounding,
    reference_rounding,
)

pytestmark = pytest.mark.numerics  # .ci/run runs these again on AVX2

NO_LANDMARKS = np.zeros((5, 2))
#: Every inference rewrite off: our networks as built, in contiguous (NCHW) memory.
PLAIN = {"fold_bn": False, "subpixel": False, "row_split": False, "winograd": 0,
         "channels_last": False}


@pytest.fixture(scope="module")
def fomm(small_checkpoint: Path) -> FommGenerator:
    return FommGenerator(checkpoint=small_checkpoint, config="small", batch_size=4)


@dataclass(frozen=True)
class Scene:
    """A real face driven by another's motion, its float64 frames (the truth: every rewrite
    equals the plain networks there, see test_speedups_are_exact_in_float64) and how far the
    plain float32 networks land from them on this machine (the bound's unit, tests/numerics)."""

    source: np.ndarray
    driving: np.ndarray
    truth: np.ndarray
    reference: Rounding


def make_scene(checkpoint: Path, source: np.ndarray, driving: np.ndarray) -> Scene:
    truth = FommGenerator(checkpoint=checkpoint, config="small", precision="fp64",
                          **PLAIN).render(source, driving)
    plain = FommGenerator(checkpoint=checkpoint, config="small", **PLAIN)
    batched = FommGenerator(checkpoint=checkpoint, config="small", batch_size=4, **PLAIN)
    last = FommGenerator(checkpoint=checkpoint, config="small", batch_size=4,
                         **{**PLAIN, "channels_last": True})
    # the plain networks in three summation orders: the demo's loop, batched, and batched in
    # channels_last memory (other oneDNN kernels, the same networks)
    reference = reference_rounding([_reference_loop(plain, source, driving),
                                    batched.render(source, driving),
                                    last.render(source, driving)], truth)
    return Scene(source, driving, truth, reference)


@pytest.fixture(scope="module")
def scene(small_checkpoint: Path, faces) -> Scene:
    return make_scene(small_checkpoint, faces[0], moving_clip(faces[1], 6))


def test_batched_equals_frame_by_frame(fomm: FommGenerator, small_checkpoint: Path,
                                       scene: Scene) -> None:
    """Batch size, the shared source encoding and the demo's per-frame loop change nothing but
    float32 rounding: each lands as close to the float64 frames as the plain networks do
    (tests/numerics; the temperature-0.1 heatmap softmax amplifies logit rounding 10x in the
    keypoints, which the image gradients amplify again, so no fixed bound would do)."""
    source, driving = scene.source, scene.driving
    batched = fomm.render(source, driving)
    single = FommGenerator(checkpoint=small_checkpoint, config="small", batch_size=1)
    frame_by_frame = single.render(source, driving)
    assert batched.shape == (len(driving), SIZE, SIZE, 3) and batched.dtype == np.float32
    assert_within_rounding(batched, scene.truth, scene.reference, what="batched")
    assert_within_rounding(frame_by_frame, scene.truth, scene.reference, what="batch 1")
    assert np.abs(batched - frame_by_frame).max() > 0  # two orders, not one computation

    kp_detector, generator = fomm.networks()
    src = to_batch(source[None])
    with torch.inference_mode():
        kp_source = kp_detector(src)
        kp_all = kp_detector(to_batch(driving))
        scale = adapt_movement_scale(kp_source.value[0].numpy(), kp_all.value[0].numpy())
        kp_norm = relative_keypoints(kp_source, kp_all, kp_all.select(0), scale=scale)
        encoding = generator.encode_source(src)
        together = generator.render(encoding, kp_norm, kp_source)
        apart = torch.cat([generator.render(encoding, kp_norm.select(t), kp_source)
                           for t in range(len(driving))])
        for name, frames in (("together", together), ("apart", apart)):
            assert_within_rounding(frames.permute(0, 2, 3, 1), scene.truth, scene.reference,
                                   what=name)

        # the original demo's loop: per-frame keypoints, normalize_kp, full generator forward
        # (source re-encoded every frame)
        kp_initial = kp_detector(to_batch(driving[:1]))
        loop = []
        for t in range(len(driving)):
            kp_t = relative_keypoints(kp_source, kp_detector(to_batch(driving[t:t + 1])),
                                      kp_initial, scale=scale)
            loop.append(generator(src, kp_t, kp_source)[0].permute(1, 2, 0).numpy())
    assert_within_rounding(np.stack(loop), scene.truth, scene.reference, what="demo loop")


def test_source_as_driving_reconstructs_one_frame(fomm: FommGenerator, small_checkpoint: Path,
                                                 faces) -> None:
    """Relative motion with a still driving clip: no motion at all. In float64 the dense flow
    is the identity (every candidate flow is: J_s J_s^-1 = I), the source warped by it is the
    source, and every output frame is the same; float32 frames are within rounding of that;
    rendering is deterministic."""
    source = faces[0]
    driving = np.repeat(source[None], 5, axis=0)
    still = make_scene(small_checkpoint, source, driving)
    assert_float64_equal(still.truth, still.truth[:1], "still frames")
    frames = fomm.render(source, driving)
    assert_within_rounding(frames, still.truth, still.reference, what="still clip")
    assert frames.std() > 1e-3  # a real image, not a constant

    exact = FommGenerator(checkpoint=small_checkpoint, config="small", precision="fp64",
                          **PLAIN)
    kp_detector, generator = exact.networks()
    with torch.inference_mode():
        src = to_batch(source[None]).double()
        kp_source = kp_detector(src)
        kp_norm = relative_keypoints(kp_source, kp_detector(to_batch(driving).double()),
                                     kp_source.select(0))
        encoding = generator.encode_source(src)
        motion = generator.motion(encoding, kp_norm, kp_source)
        _, h, w, _ = motion.deformation.shape
        assert motion.deformation.dtype == torch.float64
        identity = coordinate_grid(h, w, dtype=torch.float64)
        assert_float64_equal(motion.deformation, identity, "flow")
        # the (downscaled) source warped by that flow is itself
        warped = generator.warp(encoding.small, motion.deformation[:1])
        assert_float64_equal(warped, encoding.small, "warped source")

    out = fomm.animate(source, NO_LANDMARKS, driving, np.zeros((5, 5, 2)))
    again = fomm.animate(source, NO_LANDMARKS, driving, np.zeros((5, 5, 2)))
    assert out.dtype == np.uint8 and np.array_equal(out, again)
    # equal frames up to float32 rounding (far below 1/255) may still round to neighbouring
    # integers where a value lies on a .5 boundary: 1 level, never more
    assert np.abs(out.astype(int) - out[:1].astype(int)).max() <= 1


def test_demo_pair_end_to_end(small_checkpoint: Path, faces) -> None:
    """A real face driven by another real face's (synthetic) head motion, via the registry."""
    assert GENERATORS["fomm"] is FommGenerator
    gen = make_generator("fomm", checkpoint=str(small_checkpoint), config="small", batch_size=3)
    source, driving = faces[0], moving_clip(faces[1], 6)
    lms = np.tile(NO_LANDMARKS, (6, 1, 1))
    out = gen.animate(source, NO_LANDMARKS, driving, lms)
    assert out.shape == (6, SIZE, SIZE, 3) and out.dtype == np.uint8
    assert out.std() > 1.0
    # frame 0 carries no motion yet: it equals the still-driving rendering of the source
    still = gen.animate(source, NO_LANDMARKS, np.repeat(source[None], 1, axis=0), lms[:1])
    assert np.abs(out[0].astype(int) - still[0].astype(int)).max() <= 1
    # the motion changes the frames
    assert np.abs(out[3].astype(int) - out[0].astype(int)).mean() > 0.1

    # other input sizes are resized to the model and back
    big = cv2.resize(source, (96, 96), interpolation=cv2.INTER_CUBIC)
    wide = np.stack([cv2.resize(f, (80, 72)) for f in driving])
    assert gen.animate(big, NO_LANDMARKS, wide, lms).shape == (6, 96, 96, 3)
    strict = FommGenerator(checkpoint=small_checkpoint, config="small", resize=False)
    with pytest.raises(ValueError, match="source frames are 96x96 .* 64x64"):
        strict.animate(big, NO_LANDMARKS, driving, lms)


def _reference_loop(plain: FommGenerator, source: np.ndarray, driving: np.ndarray) -> np.ndarray:
    """Our plain networks in the original demo's loop: per-frame keypoints, full forward with
    the source re-encoded every frame."""
    kp_detector, generator = plain.networks()
    with torch.inference_mode():
        src = to_batch(source[None])
        kp_source = kp_detector(src)
        kp_initial = kp_detector(to_batch(driving[:1]))
        scale = adapt_movement_scale(kp_source.value[0].numpy(), kp_initial.value[0].numpy())
        frames = []
        for t in range(len(driving)):
            kp_t = relative_keypoints(kp_source, kp_detector(to_batch(driving[t:t + 1])),
                                      kp_initial, scale=scale)
            frames.append(generator(src, kp_t, kp_source)[0].permute(1, 2, 0).numpy())
    return np.stack(frames)


def test_optimised_render_matches_the_reference_loop(small_checkpoint: Path,
                                                     scene: Scene) -> None:
    """Everything on (batches, shared source encoding, folded norms, sub-pixel decoders,
    row-split and Winograd convolutions, channels_last) vs our plain networks in the demo's
    loop, on real faces: as close to the float64 frames as the plain networks' float32."""
    fast = FommGenerator(checkpoint=small_checkpoint, config="small", batch_size=4)
    frames = fast.render(scene.source, scene.driving)
    error = assert_within_rounding(frames, scene.truth, scene.reference, what="optimised")
    print(f"optimised {error}, reference {scene.reference}")
    assert np.abs(frames[3] - frames[0]).mean() > 1e-3  # the motion is rendered


def test_speedups_are_exact_in_float64(small_checkpoint: Path, faces) -> None:
    """In float64 every speed-up (batches, shared source encoding, norms folded, sub-pixel
    decoders, channels_last) computes the plain networks' function to ~1e-13: they change
    the math by nothing but float32 rounding."""
    source, driving = faces[0], moving_clip(faces[1], 4)
    fast = FommGenerator(checkpoint=small_checkpoint, config="small", batch_size=3,
                         precision="fp64").render(source, driving)
    plain = FommGenerator(checkpoint=small_checkpoint, config="small", batch_size=1,
                          precision="fp64", **PLAIN).render(source, driving)
    single = FommGenerator(checkpoint=small_checkpoint, config="small", batch_size=1,
                           **PLAIN).render(source, driving)
    assert fast.dtype == plain.dtype == np.float64 and single.dtype == np.float32
    assert_float64_equal(fast, plain, "every speed-up")
    assert np.abs(single - plain).max() > 1e-9  # float32 rounding, seen only from float64
    assert np.abs(plain[1] - plain[0]).mean() > 1e-3  # the motion is rendered


@pytest.mark.parametrize("tile", (2, 4))
def test_winograd_render_is_exact_in_float64(small_checkpoint: Path, scene: Scene,
                                             tile: int) -> None:
    """With every 3x3 convolution of 8+ channels done by Winograd's F(m x m, 3 x 3) (the
    small model's widths; vox-256 uses it from 128), the frames are the plain networks' to
    1e-12 in float64, and in float32 as close to the float64 frames as the plain networks'
    own float32 (F(4x4)'s larger per-convolution error, tested in test_fomm_winograd, stays
    within the margin after the network's other rounding)."""
    source, driving = scene.source, scene.driving
    options = {"checkpoint": small_checkpoint, "config": "small", "batch_size": 3,
               "winograd": tile, "winograd_min_channels": 8}
    fast = FommGenerator(precision="fp64", **options)
    replaced = [name for net in fast.networks() for name, m in net.named_modules()
                if isinstance(m, WinogradConv2d)]
    assert len(replaced) >= 8 and "bottleneck.r1.conv2" in replaced
    assert_float64_equal(fast.render(source, driving), scene.truth, f"F({tile}x{tile})")
    single = FommGenerator(**options).render(source, driving)
    assert_within_rounding(single, scene.truth, scene.reference, what=f"F({tile}x{tile})")
    assert np.abs(single - scene.truth).max() > 1e-9  # float32, not a float64 copy


def test_speed_options_keep_the_output(fomm: FommGenerator, small_checkpoint: Path,
                                       scene: Scene) -> None:
    """channels_last and unfolded batch norms: other kernels, same frames up to rounding (as
    close to the float64 frames as the plain networks' float32)."""
    assert fomm.channels_last  # the CPU default
    for options in ({"channels_last": False}, {"fold_bn": False}, {"subpixel": False},
                    {"row_split": False}):
        other = FommGenerator(checkpoint=small_checkpoint, config="small", **options)
        assert_within_rounding(other.render(scene.source, scene.driving), scene.truth,
                               scene.reference, what=str(options))
    plain = FommGenerator(checkpoint=small_checkpoint, config="small", fold_bn=False)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.networks()[1].modules())
    folded = [m for m in fomm.networks()[1].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(folded) == 2  # only the residual blocks' first norms (before a ReLU) remain
    nets = fomm.networks()
    subpixel = [m for net in nets for m in net.modules() if isinstance(m, SubpixelUpBlock)]
    assert len(subpixel) == 2 + 3 + 3  # generator decoder, both hourglass decoders
    split = [name for net in nets for name, m in net.named_modules()
             if isinstance(m, RowSplitConv)]
    assert sorted(split) == ["dense_motion_network.occlusion", "final"]
    assert not any(isinstance(m, ConvBlock) and m.resample == "up"
                   for net in nets for m in net.modules())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_precisions(small_checkpoint: Path, fomm: FommGenerator, faces) -> None:
    driving = moving_clip(faces[1], 5)
    reference = fomm.render(faces[0], driving)
    conv = torch.backends.cudnn.conv
    before = getattr(conv, "fp32_precision", None)
    errors = {}
    for precision in ("fp32", "tf32", "bf16", "fp16"):
        gpu = FommGenerator(checkpoint=small_checkpoint, config="small", device="cuda",
                            precision=precision, batch_size=2)
        diff = np.abs(gpu.render(faces[0], driving) - reference)
        errors[precision] = (float(diff.max()), float(diff.mean()))
    print(errors)
    # Bounds by the format's unit roundoff u (fp32 2^-24, tf32's and fp16's 10-bit mantissa
    # 2^-11, bf16's 7-bit 2^-8) times ~4e3 for fp32's kernels (cuDNN's other reduction orders,
    # as tests/numerics measures on the CPU, where the max error is ~100 u) and ~40 for the
    # narrow formats, whose error is dominated by rounding each operand once; means one tenth.
    for precision, (max_tol, mean_tol) in {"fp32": (1e-4, 1e-5), "tf32": (2e-2, 2e-3),
                                           "bf16": (0.1, 0.01), "fp16": (2e-2, 2e-3)}.items():
        assert errors[precision][0] < max_tol and errors[precision][1] < mean_tol, errors
    assert getattr(conv, "fp32_precision", None) == before  # global TF32 setting restored

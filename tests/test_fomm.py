"""FOMM: original-layout checkpoints, vox-256 key compatibility, inference invariants."""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfmnist.generators import GENERATORS, make_generator
from dfmnist.generators.fomm import (
    CheckpointError,
    FommGenerator,
    Keypoints,
    adapt_movement_scale,
    build_networks,
    hull_area,
    load_checkpoint,
    relative_keypoints,
    save_checkpoint,
)
from dfmnist.generators.fomm.blocks import ConvBlock, coordinate_grid
from dfmnist.generators.fomm.checkpoint import get_config
from dfmnist.generators.fomm.inference import RowSplitConv, SubpixelUpBlock
from dfmnist.generators.fomm.original import load_original
from dfmnist.generators.fomm.winograd import WinogradConv2d

from numerics import (
    Rounding,
    assert_float64_equal,
    assert_within_rounding,
    reference_rounding,
    rounding,
)

pytestmark = pytest.mark.numerics  # .ci/run runs these again on AVX2

DATA = Path(__file__).resolve().parent / "data"
SIZE = 64  # the small config's frame size
NO_LANDMARKS = np.zeros((5, 2))
#: Every inference rewrite off: our networks as built, in contiguous (NCHW) memory.
PLAIN = {"fold_bn": False, "subpixel": False, "row_split": False, "winograd": 0,
         "channels_last": False}


def crop(image: np.ndarray, box: tuple[int, int, int, int], size: int = SIZE) -> np.ndarray:
    """A square face crop (y0, y1, x0, x1) resized to size x size."""
    y0, y1, x0, x1 = box
    return cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def faces(astronaut: np.ndarray, grace_hopper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VoxCeleb-like face crops of two real photos (64x64 RGB uint8)."""
    return crop(astronaut, (20, 200, 120, 300)), crop(grace_hopper, (60, 380, 100, 420))


def moving_clip(face: np.ndarray, frames: int) -> np.ndarray:
    """The face turning and sliding a little over `frames` frames (T, 64, 64, 3)."""
    out = []
    for t in range(frames):
        a = np.sin(np.pi * t / max(frames - 1, 1))
        m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 12.0 * a, 1.0 + 0.08 * a)
        m[:, 2] += (3.0 * a, -2.0 * a)
        out.append(cv2.warpAffine(face, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def to_batch(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).contiguous()


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory, faces) -> Path:
    """A seeded random small model in the original checkpoint layout (legacy torch format,
    with optimizer states and an epoch like the published file). Batch-norm statistics are
    calibrated on real faces so eval-mode activations are well scaled, and the Jacobian head
    is perturbed so Jacobians are not all identity."""
    torch.manual_seed(1234)
    kp_detector, generator = build_networks("small")
    with torch.no_grad():
        kp_detector.jacobian.weight.normal_(0.0, 0.01)
        for module in [*kp_detector.modules(), *generator.modules()]:
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # cumulative average over the calibration passes
        kp_detector.train()
        generator.train()
        images = to_batch(np.concatenate([faces[0][None], faces[1][None],
                                          moving_clip(faces[1], 4)]))
        for _ in range(2):
            kps = kp_detector(images)
            generator(images, kps, kps.select(slice(0, len(images))))
    optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    path = tmp_path_factory.mktemp("fomm") / "small-cpk.pth.tar"
    save_checkpoint(path, kp_detector, generator, legacy_format=True, extra={
        "optimizer_generator": optimizer.state_dict(),
        "optimizer_kp_detector": {"state": {}, "param_groups": []},
        "discriminator": {"down_blocks.0.conv.weight": torch.zeros(4, 3, 4, 4)},
        "epoch": 99,
    })
    return path


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


# -- checkpoints ----------------------------------------------------------------------------


def test_checkpoint_loads_strictly(small_checkpoint: Path) -> None:
    saved = torch.load(small_checkpoint, map_location="cpu", weights_only=True)
    kp_detector, generator = load_checkpoint(small_checkpoint, "small")
    assert not kp_detector.training and not generator.training
    for net, name in ((kp_detector, "kp_detector"), (generator, "generator")):
        state = net.state_dict()
        assert list(state) == list(saved[name])
        assert all(torch.equal(state[k], saved[name][k]) for k in state)


def _tamper(path: Path, out: Path, how: str) -> None:
    data = torch.load(path, map_location="cpu", weights_only=True)
    gen = data["generator"]
    if how == "renamed":
        gen["final.weights"] = gen.pop("final.weight")
    elif how == "reshaped":
        gen["bottleneck.r0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    elif how == "no_generator":
        del data["generator"]
    elif how == "no_batch_counters":
        for key in [k for k in gen if k.endswith("num_batches_tracked")]:
            del gen[key]
    torch.save(data, out)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("renamed", r"'generator' state dict does not match the model: 1 missing: final\.weight;"
                    r" 1 unexpected: final\.weights"),
        ("reshaped", r"shape mismatch: bottleneck\.r0\.conv1\.weight: checkpoint \(3, 3, 3, 3\),"
                     r" model \(32, 32, 3, 3\)"),
        ("no_generator", r"not an FOMM checkpoint: .* has no generator state dict"),
    ],
)
def test_tampered_checkpoint_fails_clearly(small_checkpoint: Path, tmp_path: Path, how: str,
                                           message: str) -> None:
    bad = tmp_path / f"{how}.pth.tar"
    _tamper(small_checkpoint, bad, how)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(bad, "small")


def test_checkpoint_without_batch_counters_loads(small_checkpoint: Path, tmp_path: Path) -> None:
    """Counters absent from pre-0.4.1 checkpoints are unused at inference: tolerated."""
    old = tmp_path / "old.pth.tar"
    _tamper(small_checkpoint, old, "no_batch_counters")
    load_checkpoint(old, "small")


def test_truncated_and_foreign_files_fail_clearly(small_checkpoint: Path, tmp_path: Path) -> None:
    blob = small_checkpoint.read_bytes()
    for name, content in (("truncated.pth.tar", blob[: len(blob) // 2]),
                          ("half-zip.pth.tar", _zip_checkpoint(small_checkpoint)[:5000]),
                          ("notes.txt", b"not a checkpoint\n"), ("empty.pth", b"")):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(CheckpointError, match=rf"not an FOMM checkpoint: .*{name}"):
            load_checkpoint(bad, "small")
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(CheckpointError, match="holds a Tensor, expected a dict"):
        load_checkpoint(tensor, "small")


def test_unsafe_objects_are_refused_unless_trusted(small_checkpoint: Path,
                                                   tmp_path: Path) -> None:
    data = torch.load(small_checkpoint, map_location="cpu", weights_only=True)
    data["saved_on"] = datetime.date(2020, 1, 1)  # not allowed by torch's safe unpickler
    odd = tmp_path / "odd.pth.tar"
    torch.save(data, odd)
    with pytest.raises(CheckpointError, match=r"datetime\.date.*unsafe_load=True"):
        load_checkpoint(odd, "small")
    load_checkpoint(odd, "small", unsafe_load=True)


def _zip_checkpoint(path: Path) -> bytes:
    out = path.with_name("zip-format.pth.tar")
    torch.save(torch.load(path, map_location="cpu", weights_only=True), out)
    return out.read_bytes()


def test_wrong_config_is_a_shape_mismatch(small_checkpoint: Path) -> None:
    with pytest.raises(CheckpointError, match=r"shape mismatch: .*\(\+\d+ more\)"):
        load_checkpoint(small_checkpoint, "vox-256")


def test_vox256_state_dicts_match_original_keys() -> None:
    """Our vox-256 networks have exactly the original checkpoint's keys and shapes."""
    reference: dict[str, list] = {"kp_detector": [], "generator": []}
    for line in (DATA / "fomm_vox256_keys.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        net, key, shape = line.split()
        dims = tuple(int(s) for s in shape.strip("[]").split(",") if s)
        reference[net].append((key, dims))
    assert len(reference["kp_detector"]) == 75 and len(reference["generator"]) == 196
    kp_detector, generator = build_networks("vox-256")
    for net, module in (("kp_detector", kp_detector), ("generator", generator)):
        ours = [(k, tuple(v.shape)) for k, v in module.state_dict().items()]
        assert ours == reference[net], net
    n_params = sum(p.numel() for p in [*kp_detector.parameters(), *generator.parameters()])
    assert n_params == 14_215_368 + 45_575_391


# -- inference ------------------------------------------------------------------------------


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


def test_relative_keypoints_follow_the_demo_formulas() -> None:
    g = torch.Generator().manual_seed(0)

    def kps(n: int) -> Keypoints:  # float64: the formulas are checked, not float32 rounding
        jac = torch.eye(2, dtype=torch.float64) + 0.2 * torch.randn(
            n, 10, 2, 2, generator=g, dtype=torch.float64)
        return Keypoints(torch.rand(n, 10, 2, generator=g, dtype=torch.float64) * 2 - 1, jac)

    src, init, drv = kps(1), kps(1), kps(3)
    out = relative_keypoints(src, drv, init, scale=0.7)
    assert_float64_equal(out.value, src.value + 0.7 * (drv.value - init.value), "values")
    s, i, d = (k.jacobian.numpy() for k in (src, init, drv))
    assert_float64_equal(out.jacobian, d @ np.linalg.inv(i) @ s, "jacobians")
    same = relative_keypoints(src, init, init)
    assert_float64_equal(same.value, src.value, "still values")
    assert_float64_equal(same.jacobian, src.jacobian, "still jacobians")
    assert relative_keypoints(src, drv, init, relative=False) is drv


def test_hull_area_and_movement_scale() -> None:
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [1, 0.5]])
    assert hull_area(square) == pytest.approx(4.0)
    assert hull_area(np.array([[0, 0], [1, 1], [2, 2]])) == 0.0  # collinear
    assert hull_area(np.array([[0, 0], [0, 0], [1, 0]])) == 0.0
    assert adapt_movement_scale(square * 0.5, square) == pytest.approx(0.5)
    assert adapt_movement_scale(square, np.zeros((4, 2))) == 1.0
    points = np.random.default_rng(0).uniform(-1, 1, (10, 2))
    try:
        from scipy.spatial import ConvexHull
    except ImportError:  # scipy is optional; the square checks above still ran
        return
    assert hull_area(points) == pytest.approx(ConvexHull(points).volume, rel=1e-12)

def test_subpixel_block_equals_upsample_then_conv(faces) -> None:
    """The 2x2-per-phase form of nearest-2x + 3x3 conv + BN + ReLU, on a real face, odd and
    even sizes (border phases), both memory formats: the same function (float64)."""
    torch.manual_seed(5)
    block = ConvBlock(3, 8, 3, resample="up").eval().double()
    with torch.no_grad():
        block.norm.running_mean.normal_(0.0, 0.1)
        block.norm.running_var.uniform_(0.5, 2.0)
    fast = SubpixelUpBlock(copy.deepcopy(block))
    for size in (SIZE, 37):
        image = to_batch(cv2.resize(faces[0], (size, size))[None]).double()
        for fmt in (torch.contiguous_format, torch.channels_last):
            x = image.contiguous(memory_format=fmt)
            with torch.inference_mode():
                expected, got = block(x), fast(x)
            assert got.shape == expected.shape == (1, 8, 2 * size, 2 * size)
            assert_float64_equal(got, expected, f"{size} {fmt}")
            assert expected.std() > 0.01
    with pytest.raises(ValueError, match="3x3 conv"):
        SubpixelUpBlock(ConvBlock(3, 8, 5, resample="up"))


def test_row_split_conv_equals_the_convolution(faces) -> None:
    """A 7x7 convolution to 3 channels as per-row 1x7 responses summed over row shifts: the
    same function (float64, 1e-12) on a real face, odd sizes, both memory formats."""
    torch.manual_seed(6)
    conv = torch.nn.Conv2d(3, 3, 7, padding=3).double()
    fast = RowSplitConv(conv)
    for size in (SIZE, 37):
        image = to_batch(cv2.resize(faces[0], (size, 29))[None]).double()
        for fmt in (torch.contiguous_format, torch.channels_last):
            with torch.inference_mode():
                expected, got = conv(image), fast(image.contiguous(memory_format=fmt))
            assert got.shape == expected.shape == (1, 3, 29, size)
            assert_float64_equal(got, expected, f"{size} {fmt}")
    with pytest.raises(ValueError, match="odd square kernel"):
        RowSplitConv(torch.nn.Conv2d(3, 3, 7, padding=3, stride=2))


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


def test_winograd_defaults_on_the_cpu() -> None:
    """vox-256 on the CPU: the bottleneck's twelve 256-channel convolutions and the wide
    encoder convolutions (128+ channels) run as F(2x2, 3x3); `winograd=0` keeps them direct."""
    kp_detector, generator = build_networks("vox-256", align_corners=False)
    fomm = FommGenerator.from_networks(kp_detector, generator)
    assert fomm.winograd == 2
    names = [name for net in fomm.networks() for name, m in net.named_modules()
             if isinstance(m, WinogradConv2d)]
    assert sum(name.startswith("bottleneck.") for name in names) == 12
    assert all(m.tile == 2 for net in fomm.networks() for m in net.modules()
               if isinstance(m, WinogradConv2d))
    assert len(names) == 20  # + down blocks of 128 channels or more: 3 kp, 4 motion, 1 encoder
    direct = FommGenerator.from_networks(kp_detector, generator, winograd=0)
    assert not any(isinstance(m, WinogradConv2d) for net in direct.networks()
                   for m in net.modules())
    with pytest.raises(ValueError, match="winograd must be 0 or one of"):
        FommGenerator.from_networks(kp_detector, generator, winograd=3)


def _original_float64_loop(original, networks: tuple, source: np.ndarray,
                           driving: np.ndarray) -> np.ndarray:
    """The original demo's loop (its ``make_animation`` casts to float32) on its own modules
    converted to float64: per-frame keypoints, ``normalize_kp``, full generator forward."""
    generator, kp_detector = (net.double() for net in networks)

    def tensor(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255.0

    with torch.no_grad():
        src = tensor(source[None])
        kp_source = kp_detector(src)
        kp_initial = kp_detector(tensor(driving[:1]))
        frames = []
        for t in range(len(driving)):
            kp_norm = original.demo.normalize_kp(
                kp_source=kp_source, kp_driving=kp_detector(tensor(driving[t:t + 1])),
                kp_driving_initial=kp_initial, use_relative_movement=True,
                use_relative_jacobian=True, adapt_movement_scale=True)
            pred = generator(src, kp_source=kp_source, kp_driving=kp_norm)["prediction"]
            frames.append(pred[0].permute(1, 2, 0).numpy())
    return np.stack(frames)


@pytest.mark.skipif(not os.environ.get("DFMNIST_FOMM_ORIGINAL"),
                    reason="set DFMNIST_FOMM_ORIGINAL to a first-order-model checkout")
def test_same_function_as_the_original_code_in_float64(small_checkpoint: Path, faces) -> None:
    """Both codes in float64: ours (every speed-up on, batched) computes the original's
    function to ~1e-12; float32 comparisons only bound rounding differences."""
    original = load_original(os.environ["DFMNIST_FOMM_ORIGINAL"])
    networks = original.networks(get_config("small"), small_checkpoint, cpu=True)
    source, driving = faces[0], moving_clip(faces[1], 6)
    theirs = _original_float64_loop(original, networks, source, driving)
    ours = FommGenerator(checkpoint=small_checkpoint, config="small", batch_size=4,
                         align_corners=False, precision="fp64").render(source, driving)
    print(rounding(ours, theirs))
    assert_float64_equal(ours, theirs, "ours vs the original")
    assert np.abs(theirs[3] - theirs[0]).mean() > 1e-3


@pytest.mark.skipif(not os.environ.get("DFMNIST_FOMM_ORIGINAL"),
                    reason="set DFMNIST_FOMM_ORIGINAL to a first-order-model checkout")
def test_matches_the_original_code(small_checkpoint: Path, faces) -> None:
    """Against the original repository's own demo.make_animation and modules (small config,
    same state dicts, strict loading) on real faces: ours lands as close to the original's
    float64 frames as the original's own float32 does."""
    original = load_original(os.environ["DFMNIST_FOMM_ORIGINAL"])
    generator, kp_detector = original.networks(get_config("small"), small_checkpoint, cpu=True)
    source, driving = faces[0], moving_clip(faces[1], 6)
    truth = _original_float64_loop(
        original, original.networks(get_config("small"), small_checkpoint, cpu=True),
        source, driving)
    unit = np.float32(255.0)
    theirs = np.stack(original.make_animation(source.astype(np.float32) / unit,
                                              list(driving.astype(np.float32) / unit),
                                              generator, kp_detector, cpu=True))
    ours = FommGenerator(checkpoint=small_checkpoint, config="small", batch_size=4,
                         align_corners=False).render(source, driving)
    reference = rounding(theirs, truth)
    error = assert_within_rounding(ours, truth, reference, what="ours vs the original")
    print(f"ours {error}, the original's own float32 {reference}")
    assert np.abs(theirs[3] - theirs[0]).mean() > 1e-3


# -- options, identity, errors ------------------------------------------------------------


def test_identity_and_params(small_checkpoint: Path) -> None:
    gen = FommGenerator(checkpoint=small_checkpoint, config="small")
    assert gen.weights_sha256 == hashlib.sha256(small_checkpoint.read_bytes()).hexdigest()
    FommGenerator(checkpoint=small_checkpoint, config="small", sha256=gen.weights_sha256.upper())
    with pytest.raises(CheckpointError, match="has sha256 .* expected 00"):
        FommGenerator(checkpoint=small_checkpoint, config="small", sha256="00" * 32)
    other = FommGenerator(checkpoint=small_checkpoint, config="small", batch_size=16,
                          device="cpu", channels_last=True)
    assert gen.spec() == other.spec()
    assert json.loads(json.dumps(gen.spec())) == gen.spec()
    assert {"config", "relative", "adapt_scale", "precision"} <= set(gen.params())
    assert FommGenerator(checkpoint=small_checkpoint, config="small",
                         adapt_scale=False).params() != gen.params()
    with pytest.raises(ValueError, match="only supported on CUDA"):
        FommGenerator(checkpoint=small_checkpoint, config="small", precision="bf16").networks()
    assert FommGenerator(checkpoint=small_checkpoint, config="small",
                         precision="fp64").params() != gen.params()
    with pytest.raises(ValueError, match="unknown FOMM config"):
        FommGenerator(checkpoint=small_checkpoint, config="vox-512")


def test_missing_checkpoint_names_the_path_and_the_source(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "vox-cpk.pth.tar"
    with pytest.raises(FileNotFoundError) as err:
        make_generator("fomm", checkpoint=missing)
    text = str(err.value)
    assert str(missing) in text and "vox-cpk.pth.tar" in text and "first-order-model" in text
    with pytest.raises(FileNotFoundError, match="first-order-model"):
        load_checkpoint(missing)
    with pytest.raises(ValueError, match="needs checkpoint=.*vox-cpk.pth.tar"):
        make_generator("fomm")


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


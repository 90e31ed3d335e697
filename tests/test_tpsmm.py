"""TPSMM: the original checkpoint layout loaded strictly with errors that name the key, the
thin-plate spline system, rendering real faces in batches (the same function as frame by frame
and as the original demo's loop, exactly in float64, within float32 rounding otherwise), the
inference rewrites, the motion modes and the best initial frame, the generator's identity.
tests/test_tpsmm_original.py compares with the original code itself."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfmnist.generators import GENERATORS, make_generator
from dfmnist.generators.fomm.inference import RowSplitConv
from dfmnist.generators.tpsmm import (
    CheckpointError,
    TpsmmGenerator,
    best_frame,
    build_networks,
    fit_tps,
    load_checkpoint,
)
from dfmnist.generators.tpsmm.inference import TransposedUpBlock
from dfmnist.generators.tpsmm.modes import adapt_movement_scale, relative_keypoints
from dfmnist.generators.tpsmm.random_weights import write_random_checkpoint
from dfmnist.generators.tpsmm.winograd_nchw import NchwWinogradConv2d, nchw_winograd_convolutions
from dfmnist.vision.faces import one_thread

from fomm_small import SIZE, moving_clip, to_batch
from numerics import assert_float64_equal, assert_within_rounding, reference_rounding

pytestmark = [pytest.mark.numerics, pytest.mark.usefixtures("one_torch_thread")]

NO_LANDMARKS = np.zeros((5, 2))
#: Every inference rewrite off: our networks as built.
PLAIN = {"fold_bn": False, "transposed_up": False, "row_split": False, "winograd": 0,
         "channels_last": False}


@pytest.fixture(scope="module")
def tpsmm_checkpoint(tmp_path_factory, faces) -> Path:
    """A seeded random small model in the original layout, all five networks. Module
    fixtures run before the function-scoped `one_torch_thread`: one thread here too (two
    threads on a busy 2-core machine are many times slower)."""
    images = np.concatenate([faces[0][None], faces[1][None], moving_clip(faces[1], 4)])
    with one_thread():
        return write_random_checkpoint(tmp_path_factory.mktemp("tpsmm") / "small.pth.tar",
                                       "small", images, seed=7)


@pytest.fixture(scope="module")
def scene(tpsmm_checkpoint: Path, faces) -> dict:
    """A real face driven by another's motion: its float64 frames (the plain networks, one
    frame at a time: the truth) and how far the plain float32 networks land from them."""
    source, driving = faces[0], moving_clip(faces[1], 5)
    with one_thread():
        truth = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", batch_size=1,
                               precision="fp64", **PLAIN).render(source, driving)
        plain = [TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", batch_size=b,
                                **PLAIN).render(source, driving) for b in (1, 4)]
    return {"source": source, "driving": driving, "truth": truth,
            "reference": reference_rounding(plain, truth)}


# -- checkpoints -------------------------------------------------------------------------


def test_checkpoint_loads_strictly(tpsmm_checkpoint: Path, tmp_path: Path, faces) -> None:
    saved = torch.load(tpsmm_checkpoint, map_location="cpu", weights_only=True)
    assert {"epoch", "optimizer"} <= set(saved)  # training entries, ignored
    nets = load_checkpoint(tpsmm_checkpoint, "small")
    assert set(nets.present()) == {"kp_detector", "dense_motion_network", "inpainting_network",
                                   "avd_network", "bg_predictor"}
    for entry, net in nets.present().items():
        assert not net.training
        state = net.state_dict()
        assert list(state) == list(saved[entry]), entry  # the key map is the identity
        assert all(torch.equal(state[k], saved[entry][k]) for k in state)
    # the band-limiting kernel is a saved buffer, as in the original
    assert saved["dense_motion_network"]["down.weight"].shape == (3, 1, 13, 13)

    bare = write_random_checkpoint(tmp_path / "bare.pth.tar", "small",
                                   np.stack([faces[0], faces[1]]), avd=False, bg=False)
    nets = load_checkpoint(bare, "small")
    assert nets.avd_network is None and nets.bg_predictor is None
    with pytest.raises(CheckpointError, match="mode='avd' needs the checkpoint's 'avd_network'"):
        TpsmmGenerator(checkpoint=bare, config="small", mode="avd").networks()
    with pytest.raises(CheckpointError, match="'bg_predictor'"):
        TpsmmGenerator(checkpoint=bare, config="small", background=True).networks()


def _tamper(data: dict, how: str) -> None:
    if how == "missing":
        del data["inpainting_network"]["final.weight"]
    elif how == "unexpected":
        data["dense_motion_network"]["maps.weights"] = torch.zeros(1)
    elif how == "misshapen":
        data["kp_detector"]["fg_encoder.fc.weight"] = torch.zeros(10, 512)
    elif how == "buffer":
        del data["dense_motion_network"]["down.weight"]
    elif how == "optional":
        del data["avd_network"]["decoder.9.bias"]
    elif how == "no_entry":
        del data["dense_motion_network"]
    elif how == "no_counters":
        for state in (v for v in data.values() if isinstance(v, dict)):
            for key in [k for k in state if k.endswith("num_batches_tracked")]:
                del state[key]


@pytest.mark.parametrize(("how", "message"), [
    ("missing", r"'inpainting_network' state dict does not match the model: 1 missing: "
                r"final\.weight$"),
    ("unexpected", r"'dense_motion_network' state dict .*: 1 unexpected: maps\.weights$"),
    ("misshapen", r"'kp_detector' .* 1 shape mismatch: fg_encoder\.fc\.weight: checkpoint "
                  r"\(10, 512\), model \(100, 512\)"),
    ("buffer", r"'dense_motion_network' .* 1 missing: down\.weight$"),
    ("optional", r"'avd_network' .* 1 missing: decoder\.9\.bias$"),
    ("no_entry", r"not a TPSMM checkpoint: .* has no dense_motion_network state dict"),
])
def test_tampered_checkpoint_fails_naming_the_key(tpsmm_checkpoint: Path, tmp_path: Path,
                                                  how: str, message: str) -> None:
    data = torch.load(tpsmm_checkpoint, map_location="cpu", weights_only=True)
    _tamper(data, how)
    bad = tmp_path / f"{how}.pth.tar"
    torch.save(data, bad)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(bad, "small")


def test_odd_files(tpsmm_checkpoint: Path, tmp_path: Path) -> None:
    data = torch.load(tpsmm_checkpoint, map_location="cpu", weights_only=True)
    _tamper(data, "no_counters")  # unused at inference, absent from old files: tolerated
    old = tmp_path / "old.pth.tar"
    torch.save(data, old)
    load_checkpoint(old, "small")
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(tpsmm_checkpoint.read_bytes()[:4096])
    with pytest.raises(CheckpointError, match="not a TPSMM checkpoint: .*truncated"):
        load_checkpoint(truncated, "small")
    with pytest.raises(CheckpointError, match=r"shape mismatch: .*\(\+\d+ more\)"):
        load_checkpoint(tpsmm_checkpoint, "vox-256")
    missing = tmp_path / "models" / "vox.pth.tar"
    with pytest.raises(FileNotFoundError, match=f"{missing}.*Thin-Plate-Spline-Motion-Model"):
        make_generator("tpsmm", checkpoint=missing)
    with pytest.raises(ValueError, match="needs checkpoint="):
        make_generator("tpsmm")


def test_vox256_layout_and_parameter_counts() -> None:
    """The published vox-256 networks: keys and parameters per network (counted on the
    original's modules built from its config/vox-256.yaml: the same numbers)."""
    with torch.device("meta"):
        nets = build_networks("vox-256")
    counts = {entry: (len(net.state_dict()), sum(p.numel() for p in net.parameters()))
              for entry, net in nets.present().items()}
    assert counts == {"kp_detector": (122, 11_227_812),
                      "dense_motion_network": (59, 37_941_397),
                      "inpainting_network": (78, 24_737_283),
                      "avd_network": (69, 2_583_652),
                      "bg_predictor": (122, 11_188_998)}
    shapes = {k: tuple(v.shape) for net in nets.present().values()
              for k, v in net.state_dict().items()}
    assert shapes["hourglass.encoder.down_blocks.0.conv.weight"] == (128, 84, 3, 3)
    assert shapes["occlusion.3.weight"] == (1, 37, 7, 7)
    assert shapes["resblock.5.conv1.weight"] == (256, 256, 3, 3)
    assert shapes["fg_encoder.fc.weight"] == (100, 512)


# -- the thin-plate splines --------------------------------------------------------------


def test_tps_solves_the_regularised_system() -> None:
    """Against numpy: the kernel r^2 log r^2, the system with 0.01 on the whole diagonal,
    and what that regularisation means: T(c_i) = target_i - 0.01 w_i, P^T w = -0.01 a."""
    rng = np.random.default_rng(3)
    control = rng.uniform(-0.8, 0.8, (2, 3, 5, 2))
    target = control + rng.normal(0.0, 0.1, control.shape)
    spline = fit_tps(torch.from_numpy(control), torch.from_numpy(target))
    for b, g in np.ndindex(2, 3):
        c = control[b, g]
        r2 = ((c[:, None] - c[None]) ** 2).sum(-1)
        k = np.where(r2 > 0, r2 * np.log(r2 + 1e-9), 0.0)
        p = np.hstack([c, np.ones((5, 1))])
        system = np.block([[k, p], [p.T, np.zeros((3, 3))]]) + 0.01 * np.eye(8)
        solution = np.linalg.solve(system, np.vstack([target[b, g], np.zeros((3, 2))]))
        np.testing.assert_allclose(spline.weights[b, g].numpy(), solution[:5], atol=1e-12)
        np.testing.assert_allclose(spline.affine[b, g].numpy(), solution[5:], atol=1e-12)
    grid = torch.from_numpy(control[0, 0])  # warp the first group's own control points
    mapped = spline.warp(grid)[0, 0].numpy()
    np.testing.assert_allclose(mapped, target[0, 0] - 0.01 * spline.weights[0, 0].numpy(),
                               atol=1e-12)
    assert np.abs(mapped - target[0, 0]).max() > 1e-4  # an approximating spline
    np.testing.assert_allclose(control[0, 0].T @ spline.weights[0, 0].numpy(),
                               -0.01 * spline.affine[0, 0, :2].numpy(), atol=1e-12)


# -- rendering ---------------------------------------------------------------------------


def test_animate_real_frames(tpsmm_checkpoint: Path, carphone_path: Path, grace_hopper) -> None:
    """A real photo driven by a real talking-head clip, through the registry: shapes, dtype,
    sizes other than the model's, motion."""
    assert GENERATORS["tpsmm"] is TpsmmGenerator
    reader = cv2.VideoCapture(str(carphone_path))
    clip = []
    while len(clip) < 6:
        ok, frame = reader.read()
        assert ok
        clip.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    reader.release()
    driving = np.stack(clip[::2] + clip[-1:])  # (4, 144, 176, 3)
    source = cv2.resize(grace_hopper[60:380, 100:420], (80, 80), interpolation=cv2.INTER_AREA)
    gen = make_generator("tpsmm", checkpoint=str(tpsmm_checkpoint), config="small",
                         batch_size=3)
    out = gen.animate(source, NO_LANDMARKS, driving, np.zeros((4, 5, 2)))
    assert out.shape == (4, 80, 80, 3) and out.dtype == np.uint8
    assert out.std() > 5.0
    assert np.abs(out[3].astype(int) - out[0].astype(int)).mean() > 0.1
    strict = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", resize=False)
    with pytest.raises(ValueError, match="source frames are 80x80 .* 64x64"):
        strict.animate(source, NO_LANDMARKS, driving, np.zeros((4, 5, 2)))


def _demo_loop(gen: TpsmmGenerator, source: np.ndarray, driving: np.ndarray) -> np.ndarray:
    """Our networks in the original demo's loop (relative mode): per-frame keypoints, the
    source encoded again for every frame, the full inpainting forward."""
    nets = gen.networks()

    def tensor(images: np.ndarray) -> torch.Tensor:  # uint8 / 255 in the working dtype
        return torch.from_numpy(images).permute(0, 3, 1, 2).to(gen.dtype) / 255.0

    with torch.inference_mode():
        src = tensor(source[None])
        kp_source = nets.kp_detector(src)
        kp_initial = nets.kp_detector(tensor(driving[:1]))
        scale = adapt_movement_scale(kp_source[0].numpy(), kp_initial[0].numpy())
        frames = []
        for t in range(len(driving)):
            kp = nets.kp_detector(tensor(driving[t:t + 1]))
            motion = nets.dense_motion_network(src, relative_keypoints(kp_source, kp, kp_initial,
                                                                       scale), kp_source)
            frames.append(nets.inpainting_network(src, motion)[0].permute(1, 2, 0).numpy())
    return np.stack(frames)


def test_batched_equals_frame_by_frame(tpsmm_checkpoint: Path, scene: dict) -> None:
    """Batches and the shared source encoding compute the demo loop's function: exactly in
    float64, within the plain networks' own float32 rounding in float32."""
    source, driving, truth = scene["source"], scene["driving"], scene["truth"]
    fp64 = {"checkpoint": tpsmm_checkpoint, "config": "small", "precision": "fp64", **PLAIN}
    assert_float64_equal(TpsmmGenerator(batch_size=4, **fp64).render(source, driving), truth,
                         "batch 4 vs 1")
    assert_float64_equal(_demo_loop(TpsmmGenerator(**fp64), source, driving), truth,
                         "the demo's loop")
    for batch in (1, 4):
        frames = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small",
                                batch_size=batch).render(source, driving)
        assert frames.shape == (len(driving), SIZE, SIZE, 3) and frames.dtype == np.float32
        assert_within_rounding(frames, truth, scene["reference"], what=f"batch {batch}")
    assert np.abs(truth[3] - truth[0]).mean() > 1e-3  # the motion is rendered


def test_speedups_are_exact_in_float64(tpsmm_checkpoint: Path, scene: dict) -> None:
    """Folded ResNet norms, transposed-convolution up blocks, row-split heads, NCHW
    Winograd in the residual blocks (here from 8 channels, both tiles) and channels_last
    compute the plain networks' function; in float32 within the plain networks' rounding."""
    for tile in (2, 4):
        fast = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", precision="fp64",
                              batch_size=3, winograd=tile, winograd_min_channels=8,
                              channels_last=tile == 2)
        assert_float64_equal(fast.render(scene["source"], scene["driving"]), scene["truth"],
                             f"every rewrite, F({tile}x{tile}, 3x3)")
        wino = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", batch_size=3,
                              winograd=tile, winograd_min_channels=8)
        assert_within_rounding(wino.render(scene["source"], scene["driving"]), scene["truth"],
                               scene["reference"], what=f"float32 F({tile}x{tile}, 3x3)")
    nets = fast.networks()
    winograd = [name for name, m in nets.inpainting_network.named_modules()
                if isinstance(m, NchwWinogradConv2d)]
    assert len(winograd) == 12  # both convolutions of the decoder's 6 residual blocks
    ups = [m for net in nets.present().values() for m in net.modules()
           if isinstance(m, TransposedUpBlock)]
    assert len(ups) == 3 + 3 + 2  # inpainting decoder, hourglass decoder, occlusion branch
    split = sorted(f"{entry}.{name}" for entry, net in nets.present().items()
                   for name, m in net.named_modules() if isinstance(m, RowSplitConv))
    assert split == ["dense_motion_network.occlusion.0", "dense_motion_network.occlusion.1",
                     "dense_motion_network.occlusion.2", "dense_motion_network.occlusion.3",
                     "inpainting_network.final"]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in nets.kp_detector.modules())
    default = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", batch_size=3)
    assert_within_rounding(default.render(scene["source"], scene["driving"]), scene["truth"],
                           scene["reference"], what="defaults")


def test_nchw_winograd_is_the_convolution(faces) -> None:
    """`NchwWinogradConv2d` on real faces' features: the direct convolution in float64 (both
    tiles, sizes not multiples of the tile, a batch, bands of one tile row); in float32 near
    the direct convolution's own error (F(2x2): within 2x, F(4x4): 20x; measured 0.5, 3.3)."""
    image = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).double() / 255.0
    lift = torch.randn(24, 3, 3, 3, generator=torch.Generator().manual_seed(5),
                       dtype=torch.float64) * 0.5
    features = torch.relu(torch.nn.functional.conv2d(image, lift, padding=1))[..., :61, 3:]
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(24, 20, 3, padding=1).double()
    with torch.no_grad():
        truth, direct32 = conv(features), conv.float()(features.float())
        for tile, chunk in [(2, 1), (2, 8 << 20), (4, 1), (4, 8 << 20)]:
            out = NchwWinogradConv2d(conv.double(), tile, chunk)(features)
            assert out.shape == truth.shape and out.is_contiguous()
            assert_float64_equal(out, truth, f"F({tile}x{tile}), chunk {chunk}")
            error = NchwWinogradConv2d(conv.float(), tile, chunk)(features.float()) - truth
            factor = 2 if tile == 2 else 20
            assert error.abs().max() <= factor * (direct32 - truth).abs().max(), tile
    net = torch.nn.Sequential(*(torch.nn.Conv2d(i, 8, 3, padding=p) for i, p in
                                [(8, 1), (8, 2), (4, 1)]))
    assert nchw_winograd_convolutions(net, tile=4, min_channels=8) == 1
    with pytest.raises(ValueError, match="tile must be one of"):
        nchw_winograd_convolutions(net, tile=3)


def test_modes_and_background(tpsmm_checkpoint: Path, scene: dict) -> None:
    """Each mode and the background motion change the frames; relative motion is the
    demo's formula with its convex-hull scale."""
    source, driving = scene["source"], scene["driving"]
    frames = {}
    for mode in ("standard", "relative", "avd"):
        gen = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", mode=mode)
        frames[mode] = gen.render(source, driving)
    frames["background"] = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small",
                                          background=True).render(source, driving)
    names = list(frames)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(frames[a] - frames[b]).mean() > 1e-4, (a, b)
    from scipy.spatial import ConvexHull

    nets = load_checkpoint(tpsmm_checkpoint, "small")
    with torch.no_grad():
        kp_src, kp_drv = nets.kp_detector(to_batch(source[None])), nets.kp_detector(
            to_batch(driving))
    scale = adapt_movement_scale(kp_src[0].numpy(), kp_drv[0].numpy())
    hulls = [ConvexHull(k[0].numpy()).volume for k in (kp_src, kp_drv)]
    assert scale == pytest.approx(np.sqrt(hulls[0]) / np.sqrt(hulls[1]), rel=1e-12)
    moved = relative_keypoints(kp_src, kp_drv, kp_drv[:1], scale)
    torch.testing.assert_close(moved, kp_src + (kp_drv - kp_drv[:1]) * scale, rtol=0, atol=0)


def test_best_frame(tpsmm_checkpoint: Path, scene: dict) -> None:
    """The initial frame: the driving landmarks most similar to the source's up to position
    and scale; then every frame's motion is taken relative to that one."""
    lms = np.array([[30.0, 28.0], [50.0, 27.0], [40.0, 40.0], [32.0, 50.0], [49.0, 51.0]])
    rng = np.random.default_rng(0)
    driving_lms = lms + rng.normal(0.0, 3.0, (5, 5, 2))
    driving_lms[3] = 1.5 * lms + [4.0, -7.0]  # the same face, moved and scaled
    assert best_frame(lms, driving_lms) == 3
    assert best_frame(lms, np.tile(lms[:1], (5, 5, 1))) == 0  # no usable landmarks
    source, driving = scene["source"], scene["driving"]
    gen = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", find_best_frame=True)
    assert gen.initial_frame(source, lms, driving, driving_lms) == 3
    out = gen.animate(source, lms, driving, driving_lms)
    expected = np.round(gen.render(source, driving, initial=3) * 255).astype(np.uint8)
    assert np.abs(out.astype(int) - expected).max() <= 1  # the same frames, rounded
    first = np.round(gen.render(source, driving) * 255)
    assert np.abs(first - expected).mean() > 0.1


def test_identity_and_params(tpsmm_checkpoint: Path) -> None:
    gen = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small")
    assert gen.weights_sha256 == hashlib.sha256(tpsmm_checkpoint.read_bytes()).hexdigest()
    assert gen.float_kernels and gen.name == "tpsmm"
    with pytest.raises(CheckpointError, match="has sha256 .* expected 00"):
        TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", sha256="00" * 32)
    other = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", batch_size=16,
                           threads=1, sha256=gen.weights_sha256.upper())
    assert gen.spec() == other.spec()
    assert json.loads(json.dumps(gen.spec())) == gen.spec()
    assert gen.params()["mode"] == "relative"
    for option in ({"mode": "avd"}, {"precision": "fp64"}, {"find_best_frame": True},
                   {"background": True}):
        changed = TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", **option)
        assert changed.params() != gen.params(), option
    with pytest.raises(ValueError, match="mode must be one of standard, relative, avd"):
        TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", mode="absolute")
    with pytest.raises(ValueError, match="only supported on CUDA"):
        TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="small", precision="tf32").networks()
    with pytest.raises(ValueError, match="unknown TPSMM config"):
        TpsmmGenerator(checkpoint=tpsmm_checkpoint, config="vox-512")
    nets = load_checkpoint(tpsmm_checkpoint, "small")
    copied = TpsmmGenerator.from_networks(nets, config="small")
    assert isinstance(nets.inpainting_network.up_blocks[0], torch.nn.Module)
    assert not any(isinstance(m, TransposedUpBlock) for m in nets.inpainting_network.modules())
    assert any(isinstance(m, TransposedUpBlock)
               for m in copied.networks().inpainting_network.modules())

"""LivePortrait: strict loading of the five original files (full published layout), the
pose/keypoint arithmetic, spectral norm against PyTorch's own, and rendering with the small
configuration on real frames (batched == frame at a time, rewrites == plain networks)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dfmnist.generators.liveportrait import (
    CheckpointError,
    LivePortraitGenerator,
    build_networks,
    load_checkpoint,
)
from dfmnist.generators.liveportrait.camera import (
    bins_to_degrees,
    keypoint_info,
    relative_keypoints,
    rotation_matrix,
    source_keypoints,
)
from dfmnist.generators.liveportrait.checkpoint import FILES, checkpoint_files
from dfmnist.generators.liveportrait.random_weights import (
    random_networks,
    write_random_checkpoint,
)
from dfmnist.generators.liveportrait.spade import SpectralConv2d
from dfmnist.storage.video import read_video

from fomm_small import crop

#: Parameters (not buffers) per module of the published configuration.
PARAMETERS = {"appearance_feature_extractor": 836_224, "motion_extractor": 28_118_728,
              "warping_module": 45_529_829, "spade_generator": 55_365_388,
              "stitching": 45_249, "lip": 37_311, "eye": 144_703}


@pytest.fixture(scope="module")
def full_checkpoint(tmp_path_factory) -> Path:
    """The published configuration's five files with random weights (about 520 MB)."""
    folder = tmp_path_factory.mktemp("liveportrait_full")
    nets = build_networks("human")  # default initialisation: loading needs no realism
    from dfmnist.generators.liveportrait.checkpoint import save_checkpoint

    save_checkpoint(folder, nets)
    return folder


@pytest.fixture(scope="module")
def clip(carphone_path, grace_hopper) -> tuple[np.ndarray, np.ndarray]:
    """A real source crop (144x144) and six real driving frames (144x144)."""
    frames = read_video(carphone_path, max_frames=6).frames[:, :, 16:160]
    return crop(grace_hopper, (60, 380, 100, 420), 144), np.ascontiguousarray(frames)


@pytest.fixture(scope="module")
def small_portrait_checkpoint(tmp_path_factory, clip) -> Path:
    source, driving = clip
    calibration = np.stack([crop(f, (0, 144, 0, 144), 64) for f in (source, *driving[:3])])
    folder = tmp_path_factory.mktemp("liveportrait_small")
    write_random_checkpoint(folder, "small", seed=3, calibration=calibration)
    return folder


def _copy_with(folder: Path, target: Path, name: str, data: dict) -> Path:
    """`folder`'s five files linked into `target`, file `name` replaced by `data`."""
    target.mkdir()
    for module, path in checkpoint_files(folder).items():
        if module != name:
            (target / path.name).symlink_to(path)
    torch.save(data, target / FILES[name][0])
    return target


def test_full_layout_loads_strictly(full_checkpoint: Path) -> None:
    nets = load_checkpoint(full_checkpoint, "human")
    saved = torch.load(full_checkpoint / "spade_generator.pth", weights_only=True)
    assert {"G_middle_0.conv_0.weight_orig", "G_middle_0.conv_0.weight_u",
            "G_middle_0.conv_0.weight_v", "up_0.conv_s.weight_orig"} <= set(saved)
    assert torch.equal(nets.spade_generator.up_1.conv_0.weight_v,
                       saved["up_1.conv_0.weight_v"])
    for name, module in nets.modules().items():
        assert not module.training, name


def test_parameter_counts(full_checkpoint: Path) -> None:
    nets = build_networks("human").modules()
    counts = {name: sum(p.numel() for p in module.parameters())
              for name, module in nets.items() if name != "stitching_retargeting_module"}
    counts.update({part: sum(p.numel() for p in net.parameters())
                   for part, net in nets["stitching_retargeting_module"].items()})
    assert counts == PARAMETERS


@pytest.mark.parametrize("change, expect", [
    ("missing", "1 missing: second.bias"),
    ("unexpected", "1 unexpected: second.extra"),
    ("misshapen", "first.conv.weight: checkpoint (64, 3, 5, 5), model (64, 3, 3, 3)"),
])
def test_errors_name_the_key_and_the_file(full_checkpoint: Path, tmp_path: Path, change: str,
                                          expect: str) -> None:
    state = torch.load(full_checkpoint / "appearance_feature_extractor.pth", weights_only=True)
    if change == "missing":
        del state["second.bias"]
    elif change == "unexpected":
        state["second.extra"] = torch.zeros(1)
    else:
        state["first.conv.weight"] = torch.zeros(64, 3, 5, 5)
    folder = _copy_with(full_checkpoint, tmp_path / "ckpt", "appearance_feature_extractor",
                        state)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(folder, "human")
    assert expect in str(info.value)
    assert "appearance_feature_extractor.pth" in str(info.value)


def test_stitching_file_prefixes_and_layout(full_checkpoint: Path, tmp_path: Path) -> None:
    data = torch.load(full_checkpoint / "stitching_retargeting_module.pth", weights_only=True)
    assert set(data) == {"retarget_shoulder", "retarget_mouth", "retarget_eye"}
    assert all(k.startswith("module.mlp.") for k in data["retarget_eye"])
    bare = {key: {k.removeprefix("module."): v for k, v in part.items()}
            for key, part in data.items()}
    folder = _copy_with(full_checkpoint, tmp_path / "bare", "stitching_retargeting_module", bare)
    nets = load_checkpoint(folder, "human")  # the DDP prefix is optional, as in the original
    assert torch.equal(nets.stitching_retargeting_module["eye"].mlp[10].bias,
                       data["retarget_eye"]["module.mlp.10.bias"])
    broken = dict(bare, retarget_eye={**bare["retarget_eye"], "mlp.12.weight": torch.zeros(1)})
    del broken["retarget_mouth"]
    folder = _copy_with(full_checkpoint, tmp_path / "broken", "stitching_retargeting_module",
                        broken)
    with pytest.raises(CheckpointError, match="missing 'retarget_mouth'"):
        load_checkpoint(folder, "human")
    broken["retarget_mouth"] = bare["retarget_mouth"]
    torch.save(broken, folder / "stitching_retargeting_module.pth")
    with pytest.raises(CheckpointError, match=r"'retarget_eye'.*1 unexpected: mlp.12.weight"):
        load_checkpoint(folder, "human")
    published = tmp_path / "published"
    for filename, sub in FILES.values():
        (published / sub).mkdir(parents=True, exist_ok=True)
        (published / sub / filename).symlink_to(full_checkpoint / filename)
    assert checkpoint_files(published)["warping_module"].parent.name == "base_models"
    shutil.rmtree(published / "retargeting_models")
    with pytest.raises(FileNotFoundError, match="stitching_retargeting_module.pth"):
        checkpoint_files(published)


def test_pose_bins_and_rotation() -> None:
    logits = torch.full((3, 66), -1e4, dtype=torch.float64)
    logits[0, 0], logits[1, 65], logits[2, 32:34] = 0.0, 0.0, 0.0
    assert bins_to_degrees(logits).tolist() == [-97.5, 97.5, 0.0]
    zero = torch.zeros(1, 1, dtype=torch.float64)
    pitch = torch.full((1, 1), 90.0, dtype=torch.float64)
    rot = rotation_matrix(pitch, zero, zero)[0]  # (Rx)^T for row vectors: y -> -z ... y
    assert torch.allclose(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64) @ rot,
                          torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), atol=1e-15)
    angles = torch.tensor([[10.0], [-35.0], [60.0]], dtype=torch.float64)
    r = rotation_matrix(angles[0:1], angles[1:2], angles[2:3])[0]
    assert torch.allclose(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-14)
    rz = rotation_matrix(zero, zero, angles[2:3])[0]
    ry = rotation_matrix(zero, angles[1:2], zero)[0]
    rx = rotation_matrix(angles[0:1], zero, zero)[0]
    assert torch.allclose(r, rx @ ry @ rz, atol=1e-14)  # (Rz Ry Rx)^T = Rx^T Ry^T Rz^T


def test_relative_motion_of_the_first_frame_is_the_source_pose() -> None:
    torch.manual_seed(0)
    raw = {"kp": torch.randn(3, 63), "exp": 0.05 * torch.randn(3, 63), "t": torch.randn(3, 3),
           "scale": 1 + 0.1 * torch.rand(3, 1), "pitch": torch.randn(3, 66),
           "yaw": torch.randn(3, 66), "roll": torch.randn(3, 66)}
    info = keypoint_info({k: v.double() for k, v in raw.items()})
    src, drv = info[0], info[1:]
    moved = relative_keypoints(src, drv, drv[0])
    expected = source_keypoints(src)[0]
    assert torch.allclose(moved[0, :, :2], expected[:, :2], atol=1e-12)
    assert torch.allclose(moved[0, :, 2], expected[:, 2], atol=1e-12)  # t_z unused either way
    assert not torch.allclose(moved[1], moved[0], atol=1e-3)


def test_spectral_conv_is_pytorchs_spectral_norm_in_eval_mode() -> None:
    torch.manual_seed(1)
    theirs = nn.utils.spectral_norm(nn.Conv2d(8, 6, 3, padding=1)).eval()
    ours = SpectralConv2d(8, 6, 3, padding=1)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
        assert torch.equal(ours.effective_weight(), theirs.weight)


@pytest.mark.usefixtures("one_torch_thread")
def test_animate_real_frames(small_portrait_checkpoint: Path, clip) -> None:
    source, driving = clip
    generator = LivePortraitGenerator(small_portrait_checkpoint, config="small", batch_size=4)
    out = generator.animate(source, np.zeros((5, 2)), driving, np.zeros((len(driving), 5, 2)))
    assert out.shape == (len(driving), 144, 144, 3) and out.dtype == np.uint8
    assert out.std() > 5 and np.abs(out[-1].astype(int) - out[0]).mean() > 0.1
    assert generator.name == "liveportrait" and generator.float_kernels
    assert len(generator.weights_sha256) == 64
    assert generator.params()["stitching"] is True
    with pytest.raises(ValueError, match="CUDA"):
        LivePortraitGenerator(small_portrait_checkpoint, config="small", precision="fp16")


@pytest.mark.usefixtures("one_torch_thread")
def test_batched_equals_frame_at_a_time_and_plain_networks(clip) -> None:
    source, driving = clip
    nets = random_networks("small", seed=5)
    frames = {}
    for label, options in (("batched", {"batch_size": 4}), ("single", {"batch_size": 1}),
                           ("plain", {"batch_size": 3, **PLAIN})):
        generator = LivePortraitGenerator(networks=nets, config="small", precision="fp64",
                                          **options)
        frames[label] = generator.render(source, driving)
    assert frames["batched"].shape == (len(driving), 128, 128, 3)
    scale = np.abs(frames["single"]).max()
    for label in ("batched", "plain"):
        assert np.abs(frames[label] - frames["single"]).max() <= 1e-12 * scale, label
    fp32 = LivePortraitGenerator(networks=nets, config="small", batch_size=4).render(
        source, driving)
    assert np.abs(fp32 - frames["single"]).max() < 1e-4
    stitched = frames["single"]
    plain = LivePortraitGenerator(networks=nets, config="small", precision="fp64",
                                  stitching=False).render(source, driving)
    assert np.abs(plain - stitched).max() > 1e-6  # stitching moves the keypoints
    assert math.isfinite(float(plain.sum()))


#: Every inference rewrite switched off: the networks as loaded.
PLAIN = {"fold_bn": False, "winograd": False, "fft_mask": False, "fast_spade": False,
         "phase_up": False, "flush_subnormal": False}


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("rewrite", ["fold_bn", "winograd", "fft_mask", "fast_spade",
                                     "phase_up"])
def test_each_rewrite_is_the_plain_network_in_float64(clip, rewrite: str) -> None:
    """Each speed rewrite alone (phase_up needs fold_bn) renders the plain networks' frames
    and traced intermediates to 1e-12 in float64, on real frames. The small configuration
    has no 256-channel convolution, so `winograd` is forced onto every 3x3 of 8+ channels
    here via the module function (the generator's own threshold is for the published one).
    """
    source, driving = clip
    nets = random_networks("small", seed=7)
    options = dict(PLAIN, **{rewrite: True})
    if rewrite == "phase_up":
        options["fold_bn"] = True
    generators = {
        "plain": LivePortraitGenerator(networks=nets, config="small", precision="fp64",
                                       batch_size=3, **PLAIN),
        "rewritten": LivePortraitGenerator(networks=nets, config="small", precision="fp64",
                                           batch_size=3, **options),
    }
    if rewrite == "winograd":
        from dfmnist.generators.tpsmm.winograd_nchw import nchw_winograd_convolutions

        rewritten = generators["rewritten"].networks()
        assert sum(nchw_winograd_convolutions(m, tile=4, min_channels=8)
                   for m in (rewritten.spade_generator, rewritten.warping_module)) > 0
    traces: dict[str, dict] = {}
    frames = {}
    for label, generator in generators.items():
        traces[label] = {}
        frames[label] = generator.render(source, driving, trace=traces[label])
    changed = {"fold_bn": "BatchNorm", "fft_mask": "FFTConv3d", "fast_spade": "FastSPADE",
               "phase_up": "PhaseUpBlock3d", "winograd": "NchwWinogradConv2d"}[rewrite]
    modules = [type(m).__name__ for net in generators["rewritten"].networks().modules().values()
               for m in (net.values() if isinstance(net, dict) else [net])
               for m in m.modules()]
    if rewrite == "fold_bn":
        assert modules.count("BatchNorm2d") + modules.count("BatchNorm3d") < sum(
            type(m).__name__.startswith("BatchNorm")
            for net in nets.modules().values()
            for m in (net.values() if isinstance(net, dict) else [net]) for m in m.modules())
    else:
        assert changed in modules
    scale = np.abs(frames["plain"]).max()
    assert np.abs(frames["rewritten"] - frames["plain"]).max() <= 1e-12 * scale
    for key in ("warped", "occlusion", "deformation"):
        a, b = np.stack(traces["rewritten"][key]), np.stack(traces["plain"][key])
        assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max(), key


def test_fft_conv3d_and_phase_shapes() -> None:
    """FFTConv3d against F.conv3d on a non-square input (float64), and the phase classes of
    nearest upsampling: the inner phases of 4x read a single low-res row."""
    import torch.nn.functional as F

    from dfmnist.generators.liveportrait.fft_conv import FFTConv3d, fft_size
    from dfmnist.generators.liveportrait.upsampled_conv import phase_classes

    torch.manual_seed(0)
    conv = nn.Conv3d(5, 3, kernel_size=(3, 5, 7), padding=(1, 2, 3)).double()
    x = torch.randn(2, 5, 4, 11, 13, dtype=torch.float64)
    with torch.no_grad():
        expected = F.conv3d(x, conv.weight, conv.bias, padding=(1, 2, 3))
        got = FFTConv3d(conv)(x)
    assert (got - expected).abs().max() <= 1e-13 * expected.abs().max()
    assert [fft_size(n) for n in (70, 17, 1)] == [72, 18, 1]
    assert [(phases, first, m.shape[0]) for phases, first, m in phase_classes(4)] == \
        [([0], -1, 2), ([1, 2], 0, 1), ([3], 0, 2)]

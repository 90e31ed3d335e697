"""The reenactment demo's weights and config (config/reenact-demo.yaml): three animation models,
each loaded strictly from seeded random checkpoints in its original layout, built through the
workflow's own config and generator factory."""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from dfmnist.config.defaults import with_defaults
from dfmnist.demo.reenact_weights import CHECKPOINTS, calibration_faces, write_demo_checkpoints
from dfmnist.generators.shard import generator_identity
from dfmnist.workflow import build_generator, build_mix, generator_shares

from tiny_demo import REPO, run_snakemake

DEMO_CONFIG = REPO / "config" / "reenact-demo.yaml"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reenact") / "random-weights"
    write_demo_checkpoints(folder)
    return folder


def _generate_section(weights: Path) -> dict:
    """config/reenact-demo.yaml's `generate` over config.yaml's, checkpoints in `weights`."""
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    generate = copy.deepcopy(base["generate"])
    for key, value in demo["generate"].items():
        if isinstance(value, dict) and isinstance(generate.get(key), dict):
            generate[key] = {**generate[key], **value}
        else:
            generate[key] = value
    for name, rel in CHECKPOINTS.items():
        assert generate[name]["checkpoint"].endswith(rel)  # the config names these files
        generate[name]["checkpoint"] = str(weights / rel)
    return with_defaults({"generate": generate}, "generate")


def test_calibration_faces_are_the_builtin_photos_faces():
    faces = calibration_faces()
    assert faces.shape == (4, 64, 64, 3) and faces.dtype == np.uint8
    # four different people, each a face-sized patch of real texture
    assert min(f.std() for f in faces) > 20
    flat = faces.reshape(4, -1).astype(float)
    assert min(np.abs(a - b).mean() for i, a in enumerate(flat) for b in flat[i + 1:]) > 10


def test_three_models_render_a_real_clip(weights: Path, carphone_path: Path, grace_hopper):
    generate = _generate_section(weights)
    assert generator_shares(generate) == {"fomm": 1, "tpsmm": 1, "liveportrait": 1}
    reader = cv2.VideoCapture(str(carphone_path))
    clip = [cv2.cvtColor(reader.read()[1], cv2.COLOR_BGR2RGB) for _ in range(4)]
    reader.release()
    driving = np.stack(clip)[:, :, 16:160]  # (4, 144, 144, 3)
    source = cv2.resize(grace_hopper[60:380, 100:420], (128, 128), interpolation=cv2.INTER_AREA)
    outputs = {}
    for name in ("fomm", "tpsmm", "liveportrait"):
        generator = build_generator(generate, name=name)
        identity = generator_identity(generator)
        assert identity["name"] == name and len(identity["weights_sha256"]) == 64
        out = generator.animate(source, np.zeros((5, 2)), driving, np.zeros((4, 5, 2)))
        assert out.shape == (4, 128, 128, 3) and out.dtype == np.uint8 and out.std() > 5
        outputs[name] = out.astype(int)
    # each model leaves its own picture: the classes attribution is asked to tell apart
    names = sorted(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(outputs[a] - outputs[b]).mean() > 2, (a, b)
    mix = build_mix(generate)
    assert sorted(mix.identities) == names


def test_weights_are_kept_and_the_demo_config_plans(weights: Path, tmp_path: Path):
    stamps = {p: p.stat().st_mtime_ns for p in weights.rglob("*") if p.is_file()}
    assert len(stamps) == 2 + 5
    write_demo_checkpoints(weights)  # files already there are kept, not rewritten
    assert {p: p.stat().st_mtime_ns for p in weights.rglob("*") if p.is_file()} == stamps
    # the demo config as shipped, its checkpoints where `make reenact-demo` writes them
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.yaml").write_text((REPO / "config.yaml").read_text())
    (workdir / "results-reenact").mkdir()
    (workdir / "results-reenact" / "random-weights").symlink_to(weights)
    proc = run_snakemake(workdir, "-n", "all", "attribution", "--configfile", str(DEMO_CONFIG))
    planned = proc.stdout + proc.stderr
    assert "train_attribution" in planned and "generate_shard" in planned


#: Constructor options that decide neither the function nor the float32 kernels' order of
#: sums, or that the key carries otherwise: the weights (their sha256), where and on how many
#: threads (the float platform), how a trusted file is unpickled, cuDNN's own choice on CUDA.
NOT_KERNELS = {"checkpoint", "networks", "sha256", "device", "threads", "unsafe_load",
               "cudnn_benchmark"}
#: FOMM's keys predate it: changing them would rebuild every FOMM dataset, and the workflow
#: cannot set it (not a config key), so within a build it is always its default.
OLDER = {"fomm": {"winograd_min_channels"}}


@pytest.mark.parametrize("name", ["fomm", "tpsmm", "liveportrait"])
def test_every_option_is_in_the_params_or_the_keys_kernels(name: str, weights: Path):
    """A fake's key holds its generator's params and, for a float32 network, the options that
    order its sums (`dfmnist.numerics`): every constructor option is one or the other, so two
    settings that can give other bytes never share a key."""
    import inspect

    from dfmnist.generators import GENERATORS
    from dfmnist.numerics import generator_numerics

    cls = GENERATORS[name]
    options = set(inspect.signature(cls.__init__).parameters) - {"self"}
    generator = build_generator(_generate_section(weights), name=name)
    kernels = set(generator_numerics(generator)["kernels"])
    left = options - set(generator.params()) - kernels - NOT_KERNELS - OLDER.get(name, set())
    assert not left, f"{name}: options neither in params() nor in the kernels: {sorted(left)}"
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    section = schema["properties"]["generate"]["properties"][name]["properties"]
    schema_keys = set(section) - {"checkpoint", "sha256"}
    assert schema_keys <= set(generator.params()) | kernels

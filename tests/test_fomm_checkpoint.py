"""FOMM checkpoints: the original layout loaded strictly, clear errors for tampered, truncated,
foreign or unsafe files and a missing checkpoint, vox-256 key compatibility, the generator's
identity (weights sha256, spec, params)."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import pytest
import torch

from dfmnist.generators import make_generator
from dfmnist.generators.fomm import (
    CheckpointError,
    FommGenerator,
    build_networks,
    load_checkpoint,
)

pytestmark = pytest.mark.numerics  # .ci/run runs these again on AVX2

DATA = Path(__file__).resolve().parent / "data"


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


# -- identity, errors ----------------------------------------------------------------------


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

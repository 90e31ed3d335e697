"""The published detectors against the original icpr2020dfdc code, on each efficientnet_pytorch
release named (tests/icpr_original.py runs the original, one process per release).

Set DFMNIST_ICPR_ORIGINAL to a checkout of polimi-ispl/icpr2020dfdc and DFMNIST_ICPR_LIBS to
folders (separated by os.pathsep) each holding one efficientnet_pytorch release, installed with
`pip install --no-deps --target DIR efficientnet_pytorch==0.6.3` (and 0.7.1): see
docs/detectors.md, "Parity with the original code". `pytest -s` prints the max differences.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from dfmnist.train import load_published
from dfmnist.train.published.same_padding import LIBRARY_RULES

from published_weights import ARCHS, face_batch, random_published, save_original

CHECKOUT = os.environ.get("DFMNIST_ICPR_ORIGINAL", "")
LIBS = [d for d in os.environ.get("DFMNIST_ICPR_LIBS", "").split(os.pathsep) if d]
RUNNER = Path(__file__).with_name("icpr_original.py")

#: Float64: both codes compute the same function, so only float64 rounding separates them
#: (~1e-16 per operation, a few thousand operations deep); logits of order 1 to 10 agree to
#: ~1e-13, and 1e-10 leaves three orders of magnitude for other CPUs' kernels.
FLOAT64_TOLERANCE = 1e-10
#: Float32: the same function evaluated by other kernels in another order (our explicit
#: padding beside the library's, torch's swish beside its own, batch norms on other
#: layouts) rounds differently at every one of 32 MBConv blocks, and each block amplifies what
#: reaches it. Each code's float32 logits (of order 1) miss the float64 ones by up to ~5e-5
#: here, and the two float32 runs differ by up to ~6e-5 (docs/detectors.md has the table); a
#: wrong padding rule or eps moves logits by 1e-2 and more. 1e-4 bounds the rounding with
#: little room to spare: on a CPU whose kernels round worse, the float64 check is the proof.
FLOAT32_TOLERANCE = 1e-4

pytestmark = pytest.mark.skipif(
    not CHECKOUT, reason="set DFMNIST_ICPR_ORIGINAL to a polimi-ispl/icpr2020dfdc checkout")


@pytest.fixture(scope="module")
def face_tensors(astronaut, grace_hopper) -> torch.Tensor:
    return face_batch(astronaut, grace_hopper)


def library_version(libs: str) -> str:
    """The efficientnet_pytorch release installed in `libs`."""
    found = [d.version for d in metadata.distributions(name="efficientnet_pytorch", path=[libs])]
    if len(found) != 1:
        pytest.fail(f"{libs}: expected one efficientnet_pytorch release, found {found}")
    return found[0]


def rule_of(version: str) -> str:
    """Our padding rule for a library release: "0.6" for 0.6.x, "0.7" for 0.7.x."""
    rule = ".".join(version.split(".")[:2])
    if rule not in LIBRARY_RULES:
        pytest.fail(f"no padding rule for efficientnet_pytorch {version} "
                    f"(known: {', '.join(LIBRARY_RULES)})")
    return rule


def run_original(arch: str, libs: str, state: Path, inputs: Path, out: Path,
                 double: bool) -> dict[str, np.ndarray]:
    command = [sys.executable, str(RUNNER), "--checkout", CHECKOUT, "--libs", libs,
               "--arch", arch, "--state", str(state), "--input", str(inputs), "--out", str(out)]
    done = subprocess.run(command + ["--double"] * double, capture_output=True, text=True,
                          timeout=600)
    if done.returncode:
        pytest.fail(f"the original code failed ({' '.join(command)}):\n{done.stderr[-4000:]}")
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def max_diff(a, b) -> float:
    a = a.detach().double().numpy() if isinstance(a, torch.Tensor) else a
    b = b.detach().double().numpy() if isinstance(b, torch.Tensor) else b
    assert a.shape == b.shape
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


@pytest.mark.parametrize("libs", LIBS or ["unset"], ids=lambda d: Path(d).name)
@pytest.mark.parametrize("arch", ARCHS)
def test_published_network_matches_the_original_code(arch, libs, face_tensors, tmp_path):
    """Seeded random weights (batch norms calibrated on the faces) in the original's file
    format, loaded strictly by both codes; the same two real faces in float32 and float64."""
    if not LIBS:
        pytest.fail("set DFMNIST_ICPR_LIBS to folders each holding one efficientnet_pytorch")
    version = library_version(libs)
    rule = rule_of(version)
    state = save_original(random_published(arch, face_tensors, rule, seed=11), tmp_path / "weights")
    inputs = tmp_path / "faces.npy"
    np.save(inputs, face_tensors.numpy())
    theirs = {dtype: run_original(arch, libs, state, inputs, tmp_path / f"{dtype}.npz",
                                  double=dtype == "float64")
              for dtype in ("float32", "float64")}
    assert all(str(t["version"]) == version for t in theirs.values())
    assert theirs["float32"]["logits"].dtype == np.float32
    assert theirs["float64"]["logits"].dtype == np.float64

    ours = load_published(arch, state, rule)
    attention = ours.has_attention
    ours_logits, ours_att = {}, {}
    with torch.no_grad():
        for dtype, x in (("float32", face_tensors), ("float64", face_tensors.double())):
            ours.to(x.dtype)
            ours_logits[dtype] = ours(x)
            if attention:
                ours_att[dtype] = ours.attention_map(x)
    assert ("attention" in theirs["float32"]) == attention

    diffs = {(dtype, "logits"): max_diff(ours_logits[dtype], theirs[dtype]["logits"])
             for dtype in theirs}
    if attention:
        diffs |= {(dtype, "attention"): max_diff(ours_att[dtype], theirs[dtype]["attention"])
                  for dtype in theirs}
    # the original's own float32 rounding, for scale: its float32 logits against its float64
    own = max_diff(theirs["float32"]["logits"], theirs["float64"]["logits"])
    ours_own = max_diff(ours_logits["float32"], theirs["float64"]["logits"])
    logits = theirs["float64"]["logits"].ravel()
    print(f"\n{arch} efficientnet_pytorch {version} (rule {rule}), logits "
          f"{np.array2string(logits, precision=4)}: max |ours - original| "
          + ", ".join(f"{dtype} {what} {d:.2e}" for (dtype, what), d in sorted(diffs.items()))
          + f"; float32 logits vs the original's float64: original {own:.2e}, "
          f"ours {ours_own:.2e}")

    assert abs(logits[0] - logits[1]) > 1e-2  # the weights make the faces matter
    for (dtype, what), d in diffs.items():
        bound = FLOAT64_TOLERANCE if dtype == "float64" else FLOAT32_TOLERANCE
        assert d <= bound, f"{dtype} {what}: max difference {d:.3e} > {bound:.0e}"

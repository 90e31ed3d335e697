"""TPSMM against the original Thin-Plate-Spline-Motion-Model code (a checkout named by
DFMNIST_TPSMM_ORIGINAL), run in a process of its own by tests/tpsmm_original.py: the same
checkpoint layout, the same function in float64, and float32 frames within the original's own
float32 rounding. `pytest -s` prints the figures.

Tolerances. Float64: both codes compute one function, so only float64 rounding separates
them; but these frames are sensitive to it (a 1e-12 change of the keypoints moves the 64x64
frames by up to ~4e-10 through the spline warps, and the AVD network multiplies keypoint
changes by ~5), so the bound is the larger of 1e-12 (tests/numerics.py, FLOAT64_EXACT) and
4x (numerics.MARGIN) the original's own float64 spread: how far its frames move when its
input tensors are contiguous instead of ``make_animation``'s permuted (channels-last) ones,
the same function through other convolution kernels. Measured here, a wrong eps in the
kernel's logarithm (1e-6 instead of 1e-9) moves the frames by 2e-5 to 2e-4, a regulariser of
0.02 instead of 0.01 on the TPS system's diagonal or ``align_corners=False`` by 0.2 and more.
Float32: ours (every default speed-up) must miss the original's float64
frames by at most 4x (numerics.MARGIN) what the original's own float32 ``make_animation``
misses them by, in max and in mean; and the max absolute difference between the two float32
outputs must stay below half a uint8 level (0.5/255 on [0, 1] frames).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dfmnist.generators.tpsmm import TpsmmGenerator, build_networks
from dfmnist.generators.tpsmm.random_weights import write_random_checkpoint
from dfmnist.vision.faces import one_thread

from fomm_small import moving_clip
from numerics import FLOAT64_EXACT, MARGIN, assert_within_rounding, rounding

CHECKOUT = os.environ.get("DFMNIST_TPSMM_ORIGINAL", "")
RUNNER = Path(__file__).with_name("tpsmm_original.py")
#: Largest float32 difference allowed between the two codes' frames in [0, 1].
FLOAT32_CAP = 0.5 / 255
BEST = 3  # the initial frame of the find_best_frame runs
#: Our generator options per run of the runner (MODE:DTYPE[:OPTION]).
RUNS = {
    "standard": {"mode": "standard"},
    "relative": {"mode": "relative"},
    "avd": {"mode": "avd"},
    f"relative:best={BEST}": {"mode": "relative", "initial": BEST},
    "relative:background": {"mode": "relative", "background": True},
}

pytestmark = [pytest.mark.numerics, pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(not CHECKOUT, reason="set DFMNIST_TPSMM_ORIGINAL to a "
                                                      "Thin-Plate-Spline-Motion-Model checkout")]


def run_original(*args: str) -> dict[str, np.ndarray]:
    out = Path(args[args.index("--out") + 1])
    command = [sys.executable, str(RUNNER), "--checkout", CHECKOUT, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode:
        pytest.fail(f"the original code failed ({' '.join(command)}):\n{done.stderr[-4000:]}")
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def spec(run: str, dtype: str) -> str:
    mode, *option = run.split(":")
    return ":".join([mode, dtype, *option])


@pytest.fixture(scope="module")
def parity(tmp_path_factory, faces) -> dict:
    """One seeded random small model (all five networks) in the original layout, a real face
    driven by another's motion, and the original's frames for every run in both dtypes."""
    tmp = tmp_path_factory.mktemp("tpsmm_original")
    source, driving = faces[0], moving_clip(faces[1], 6)
    images = np.concatenate([source[None], faces[1][None], moving_clip(faces[1], 4)])
    with one_thread():  # module fixtures run before `one_torch_thread`
        checkpoint = write_random_checkpoint(tmp / "small.pth.tar", "small", images, seed=11)
    np.savez(tmp / "inputs.npz", source=source, driving=driving)
    runs = [spec(run, dtype) for run in RUNS for dtype in ("float32", "float64")]
    runs += [spec(run, "float64") + ":contiguous" for run in RUNS]
    theirs = run_original("--config", "small", "--checkpoint", str(checkpoint),
                          "--inputs", str(tmp / "inputs.npz"), "--out", str(tmp / "out.npz"),
                          "--runs", *runs)
    return {"checkpoint": checkpoint, "source": source, "driving": driving, "theirs": theirs}


def ours(parity: dict, run: str, precision: str) -> np.ndarray:
    options = dict(RUNS[run])
    initial = options.pop("initial", 0)
    gen = TpsmmGenerator(checkpoint=parity["checkpoint"], config="small", batch_size=4,
                         precision=precision, **options)
    return gen.render(parity["source"], parity["driving"], initial=initial)


def test_vox256_state_dicts_match_the_original(tmp_path: Path) -> None:
    """Our vox-256 networks have the original's keys, in its order, with its shapes (the
    original's modules built from its config/vox-256.yaml)."""
    theirs = json.loads(str(run_original("--config", "vox-256", "--keys",
                                         "--out", str(tmp_path / "keys.npz"))["keys"]))
    with torch.device("meta"):
        nets = build_networks("vox-256")
    for entry, net in nets.present().items():
        mine = [[k, list(v.shape)] for k, v in net.state_dict().items()]
        assert mine == theirs[entry], entry
    print("\nvox-256 state dicts identical to the original's: "
          + ", ".join(f"{e} {len(k)} keys" for e, k in theirs.items()))


def test_same_function_as_the_original_in_float64(parity: dict) -> None:
    """Both codes in float64 (ours batched, with every speed-up; the original's networks
    cast to double, called as its demo calls them): equal up to float64 rounding (see the
    module docstring for the bound)."""
    lines = []
    for run in RUNS:
        theirs = parity["theirs"][spec(run, "float64")]
        spread = float(np.abs(parity["theirs"][spec(run, "float64") + ":contiguous"]
                              - theirs).max())
        mine = ours(parity, run, "fp64")
        assert theirs.dtype == mine.dtype == np.float64
        diff = float(np.abs(mine - theirs).max())
        bound = max(FLOAT64_EXACT, MARGIN * spread)
        lines.append(f"{run}: max abs diff {diff:.2e} (the original's own spread "
                     f"{spread:.2e}, bound {bound:.1e})")
        assert diff <= bound, f"{run} float64: {diff:.3e} > {bound:.1e}"
        assert np.abs(theirs[BEST] - theirs[0]).mean() > 1e-3  # the motion is rendered
    print("\nfloat64, ours vs the original: " + "; ".join(lines))


def test_matches_the_original_in_float32(parity: dict) -> None:
    """Ours in float32 (defaults) against the original's float32 frames (its own
    make_animation, or its networks in the reconstruction-style loop for the background
    run): as close to the float64 frames as the original's float32 is, and below half a
    uint8 level from the original's float32 frames."""
    lines = []
    for run in RUNS:
        theirs32 = parity["theirs"][spec(run, "float32")]
        truth = parity["theirs"][spec(run, "float64")]
        mine = ours(parity, run, "fp32")
        assert theirs32.dtype == mine.dtype == np.float32
        reference = rounding(theirs32, truth)
        error = assert_within_rounding(mine, truth, reference, what=f"{run} float32")
        diff = float(np.abs(mine.astype(np.float64) - theirs32).max())
        lines.append(f"{run}: max abs diff {diff:.2e} (ours vs float64 {error}; the "
                     f"original's own float32 vs float64 {reference})")
        assert diff < FLOAT32_CAP, f"{run}: ours vs the original differ by {diff:.2e}"
    print("\nfloat32, ours vs the original: " + "; ".join(lines))

"""LivePortrait against the original KwaiVGI/LivePortrait code (a checkout named by
DFMNIST_LIVEPORTRAIT_ORIGINAL), run in a process of its own by tests/liveportrait_original.py:
the same seeded random five-file checkpoint (the published model's full configuration, written
by our modules, loaded by the original's own ``load_model``), the same 256x256 source crop and
driving frames, fp16 off, stitching on, 'expression-friendly' driving.
`pytest -s` prints the figures.

Tolerances. Float64 (both codes' networks in double): one function, so only float64 rounding
separates them; every traced intermediate (appearance volume, source and driving keypoints,
warped features, occlusion, deformation) and the frames must agree to `FLOAT64_REL` relative
to their scale. Float32: ours (every default speed-up: folded batch norms, Winograd
convolutions, batched frames) must miss the original's float64 frames by at most 4x
(tests/numerics.py, MARGIN) what the original's own float32 run misses them by, in max and
mean; and the uint8 frames (the original's ``parse_output``, truncating) may differ by at
most one level.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dfmnist.generators.liveportrait import LivePortraitGenerator, build_networks
from dfmnist.generators.liveportrait.random_weights import write_random_checkpoint

from fomm_small import crop
from numerics import MARGIN, assert_within_rounding, rounding

CHECKOUT = os.environ.get("DFMNIST_LIVEPORTRAIT_ORIGINAL", "")
RUNNER = Path(__file__).with_name("liveportrait_original.py")
#: Float64 agreement, relative to each array's largest magnitude.
FLOAT64_REL = 1e-10
SIZE = 256

pytestmark = [pytest.mark.numerics,
              pytest.mark.skipif(not CHECKOUT, reason="set DFMNIST_LIVEPORTRAIT_ORIGINAL to a "
                                                      "KwaiVGI/LivePortrait checkout")]


def driving_clip(face: np.ndarray) -> np.ndarray:
    """The face still, then turned by 12 degrees, scaled by 1.08 and shifted (2 frames)."""
    import cv2

    frames = [face]
    m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 12.0, 1.08)
    m[:, 2] += (12.0, -8.0)
    frames.append(cv2.warpAffine(face, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, astronaut, grace_hopper) -> dict:
    """Both codes in float32 and float64 on the same files and frames."""
    work = tmp_path_factory.mktemp("liveportrait_original")
    source = crop(astronaut, (20, 200, 120, 300), SIZE)
    driving = driving_clip(crop(grace_hopper, (60, 380, 100, 420), SIZE))
    write_random_checkpoint(work / "ckpt", "human", seed=0,
                            calibration=np.concatenate([source[None], driving]))
    np.savez(work / "inputs.npz", source=source, driving=driving)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(RUNNER), "--checkout", CHECKOUT, "--checkpoint",
                    str(work / "ckpt"), "--inputs", str(work / "inputs.npz"), "--out",
                    str(work / "out.npz"), "--keys"], check=True, timeout=3600,
                   capture_output=True)
    theirs = dict(np.load(work / "out.npz"))
    print(f"\noriginal, float32 + float64: {time.perf_counter() - start:.0f} s")
    ours = {}
    for name, precision in (("float32", "fp32"), ("float64", "fp64")):
        trace: dict[str, list] = {}
        start = time.perf_counter()
        generator = LivePortraitGenerator(work / "ckpt", precision=precision, batch_size=2)
        ours[f"{name}:frames"] = generator.render(source, driving, trace=trace)
        print(f"ours, {name}: {time.perf_counter() - start:.0f} s")
        ours.update({f"{name}:{k}": np.stack(v) for k, v in trace.items()})
        if name == "float32":
            ours["float32:uint8"] = generator.animate(
                np.kron(source, np.ones((2, 2, 1), np.uint8)), np.zeros((5, 2)), driving,
                np.zeros((len(driving), 5, 2)))
    return {"ours": ours, "theirs": theirs}


def test_the_original_loads_the_same_keys_and_shapes(runs) -> None:
    """The original's modules, built from its models.yaml, have exactly our state-dict keys
    and shapes (and loaded our files strictly to get here)."""
    theirs = json.loads(str(runs["theirs"]["keys"]))
    nets = build_networks("human").modules()
    for name, module in nets.items():
        if name == "stitching_retargeting_module":
            for part, net in module.items():
                ours = {k: list(v.shape) for k, v in net.state_dict().items()}
                assert ours == theirs[f"{name}:{part}"], part
        else:
            ours = {k: list(v.shape) for k, v in module.state_dict().items()}
            assert list(ours.items()) == list(theirs[name].items()), name


def test_same_function_in_float64(runs) -> None:
    """Every intermediate and the frames agree to FLOAT64_REL in float64."""
    ours, theirs = runs["ours"], runs["theirs"]
    keys = sorted(k for k in theirs if k.startswith("float64:"))
    assert len(keys) >= 10
    worst = 0.0
    for key in keys:
        a, b = ours[key].astype(np.float64), theirs[key].astype(np.float64)
        assert a.shape == b.shape, f"{key}: {a.shape} vs {b.shape}"
        rel = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
        worst = max(worst, rel)
        print(f"{key:28s} max|diff|/max|x| {rel:.2e}")
        assert rel <= FLOAT64_REL, f"{key}: relative difference {rel:.3e}"
    frames = theirs["float64:frames"]
    assert np.abs(frames[1] - frames[0]).mean() > 1e-3  # the frames really move
    print(f"float64 worst {worst:.2e}")


def test_float32_within_the_originals_own_rounding(runs) -> None:
    """Ours in float32 lands as close to the float64 truth as the original's float32 does."""
    ours, theirs = runs["ours"], runs["theirs"]
    for key in ("frames", "kp_driving", "warped", "occlusion"):
        truth = theirs[f"float64:{key}"]
        reference = rounding(theirs[f"float32:{key}"], truth)
        error = assert_within_rounding(ours[f"float32:{key}"], truth, reference,
                                       what=f"float32 {key}")
        print(f"float32 {key:11s} ours {error}; the original's own {reference} "
              f"(margin {MARGIN})")
    diff = np.abs(ours["float32:frames"] - theirs["float32:frames"]).max()
    print(f"float32 frames, ours vs the original's: max |diff| {diff:.3e}")
    assert diff < 0.5 / 255


def test_uint8_frames(runs) -> None:
    """animate()'s frames (source given at 512x512, so no resize) against the wrapper's
    parse_output: at most one level apart (truncation of near-equal floats)."""
    ours = runs["ours"]["float32:uint8"].astype(int)
    theirs = runs["theirs"]["float32:uint8"].astype(int)
    assert ours.shape == theirs.shape == (2, 512, 512, 3)
    diff = np.abs(ours - theirs)
    print(f"uint8: {100 * (diff > 0).mean():.4f}% of values differ, max {diff.max()}")
    assert diff.max() <= 1


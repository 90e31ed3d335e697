"""FOMM against the original first-order-model code (a checkout named by
DFMNIST_FOMM_ORIGINAL): the same function in float64, and within the original's own float32
rounding in float32."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dfmnist.generators.fomm import FommGenerator
from dfmnist.generators.fomm.checkpoint import get_config
from dfmnist.generators.fomm.original import load_original

from fomm_small import moving_clip
from numerics import assert_float64_equal, assert_within_rounding, rounding

pytestmark = pytest.mark.numerics  # .ci/run runs these again on AVX2


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

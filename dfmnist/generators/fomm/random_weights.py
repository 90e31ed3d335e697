"""Seeded random FOMM weights in the original checkpoint layout, for tests, benchmarks and the
reenactment demo (no published checkpoint is used or downloaded).

Two adjustments make untrained networks behave like a model at all: the batch-norm statistics
are those of train-mode passes over real face images (cumulative averages), so that eval-mode
activations are well scaled instead of exploding, and the Jacobian head is perturbed so that
the Jacobians are not all the identity (its published initialisation), which would leave the
local affine motion untested.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dfmnist.generators.fomm.checkpoint import FommConfig, build_networks, save_checkpoint
from dfmnist.generators.fomm.generator import OcclusionAwareGenerator
from dfmnist.generators.fomm.keypoint_detector import KeypointDetector

__all__ = ["random_networks", "write_random_checkpoint"]


def random_networks(config: str | FommConfig, images: np.ndarray, seed: int = 1234
                    ) -> tuple[KeypointDetector, OcclusionAwareGenerator]:
    """The keypoint detector and generator of `config`, seeded, batch norms calibrated on
    `images` ((N, S, S, 3) uint8 at the config's frame size; each animates the first); in
    eval mode."""
    torch.manual_seed(seed)
    kp_detector, generator = build_networks(config)
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        kp_detector.jacobian.weight.normal_(0.0, 0.01)
        for module in [*kp_detector.modules(), *generator.modules()]:
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # cumulative average over the calibration passes
        kp_detector.train()
        generator.train()
        for _ in range(2):
            kps = kp_detector(batch)
            generator(batch, kps, kps.select(slice(0, len(batch))))
    return kp_detector.eval(), generator.eval()


def write_random_checkpoint(path: str | Path, config: str | FommConfig, images: np.ndarray,
                            seed: int = 1234) -> Path:
    """`random_networks` saved as the original's training code saves them (legacy torch
    format, with optimizer states, a discriminator entry and an epoch like the published
    ``vox-cpk.pth.tar``)."""
    kp_detector, generator = random_networks(config, images, seed)
    optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    save_checkpoint(path, kp_detector, generator, legacy_format=True, extra={
        "optimizer_generator": optimizer.state_dict(),
        "optimizer_kp_detector": {"state": {}, "param_groups": []},
        "discriminator": {"down_blocks.0.conv.weight": torch.zeros(4, 3, 4, 4)},
        "epoch": 99,
    })
    return Path(path)

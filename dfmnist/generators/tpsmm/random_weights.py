"""Seeded random TPSMM weights in the original checkpoint layout, for tests and benchmarks.

No published checkpoint can be fetched offline, so equivalence checks and speed measurements
run on random networks. Untrained networks need two adjustments to behave like a model at
all: their batch-norm statistics (ResNet-18s, AVD network) are calibrated on real images,
so that eval-mode activations are well scaled instead of exploding, and the keypoint head's
weights are enlarged so that the keypoints spread over the frame and move with the image
instead of sitting in a tight cluster at its centre. The background predictor's head is
perturbed slightly away from the identity so that its path is exercised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from dfmnist.generators.tpsmm.checkpoint import (
    TpsmmConfig,
    TpsmmNetworks,
    build_networks,
    save_checkpoint,
)

__all__ = ["calibration_batch", "random_networks", "write_random_checkpoint"]


def _to_batch(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def calibration_batch(images: np.ndarray, seed: int = 0) -> torch.Tensor:
    """`images` (N, S, S, 3) uint8 and variants of them (mirrored, shifted by S/8, darker and
    brighter) as a float batch in [0, 1]: statistics of a varied set, so that a new face gives
    moderate normalised activations rather than the huge ones that statistics of a few similar
    images give."""
    batch = _to_batch(images)
    shift = max(1, batch.shape[-1] // 8)
    variants = [batch, batch.flip(-1), batch.roll(shift, -1), batch.roll(-shift, -2),
                batch * 0.6, (batch * 1.3).clamp(0, 1)]
    generator = torch.Generator().manual_seed(seed)
    variants.append(torch.rand(batch.shape, generator=generator))
    return torch.cat(variants)


def random_networks(config: str | TpsmmConfig, images: np.ndarray, seed: int = 0,
                    keypoint_gain: float = 2.0) -> TpsmmNetworks:
    """All five networks of `config`, seeded, with batch norms calibrated on `images`
    ((N, S, S, 3) uint8 at the config's frame size) and variants of them
    (`calibration_batch`); in eval mode. The AVD network's statistics also see uniformly
    random keypoints, so that its output stays within the frame's scale."""
    torch.manual_seed(seed)
    nets = build_networks(config)
    batch = calibration_batch(images, seed)
    with torch.no_grad():
        nets.kp_detector.fg_encoder.fc.weight.mul_(keypoint_gain)
        nets.bg_predictor.bg_encoder.fc.weight.normal_(0.0, 1e-3)
        for net in nets.present().values():
            for module in net.modules():
                if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                    module.momentum = None
            net.train()
        # one training-mode pass sets the statistics (momentum None: the pass's own)
        kps = nets.kp_detector(batch)
        kps = torch.cat([kps, torch.rand_like(kps) * 2 - 1])
        nets.avd_network(kps.roll(1, dims=0), kps)
        nets.bg_predictor(batch.roll(1, dims=0), batch)
    for net in nets.present().values():
        net.eval()
    return nets


def write_random_checkpoint(path: str | Path, config: str | TpsmmConfig, images: np.ndarray,
                            seed: int = 0, avd: bool = True, bg: bool = True) -> Path:
    """`random_networks` saved as the original's training code saves them (legacy torch
    format, with an epoch and an optimizer state like the published files); `avd` and `bg`
    choose whether the optional networks are included."""
    nets = random_networks(config, images, seed)
    keep = nets._replace(avd_network=nets.avd_network if avd else None,
                         bg_predictor=nets.bg_predictor if bg else None)
    optimizer = torch.optim.Adam(nets.inpainting_network.parameters(), lr=2e-4)
    save_checkpoint(path, keep, extra={"epoch": 99, "optimizer": optimizer.state_dict()},
                    legacy_format=True)
    return Path(path)

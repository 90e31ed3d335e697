"""Seeded random LivePortrait weights in the original five-file layout, for tests and
benchmarks (no published weights are used or downloaded).

Beyond PyTorch's default initialisation: batch-norm affine parameters are drawn around 1 and
0; with `calibration` images the batch-norm statistics are then those of a forward pass over
them (so eval-mode activations are well scaled, as a trained model's are); without, they are
drawn around 0 and 1. ConvNeXt's GRN and LayerNorm parameters are drawn (the defaults make
GRN the identity); the pose heads are scaled up so the poses spread over tens of degrees,
the expression and translation heads down and the scale head's bias set near 1 so the
keypoints stay in the volume; spectral norm's u and v come from power iteration on the
random weights (a trained model's are converged singular vectors).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from dfmnist.generators.liveportrait.checkpoint import (
    LivePortraitConfig,
    LivePortraitNetworks,
    build_networks,
    save_checkpoint,
)
from dfmnist.generators.liveportrait.convnextv2 import ChannelsFirstLayerNorm, GlobalResponseNorm
from dfmnist.generators.liveportrait.spade import SpectralConv2d

__all__ = ["random_networks", "write_random_checkpoint"]

_NORMS = (nn.BatchNorm2d, nn.BatchNorm3d)


def _power_iteration(conv: SpectralConv2d, steps: int) -> None:
    matrix = conv.weight_orig.detach().flatten(1)
    u, v = conv.weight_u, conv.weight_v
    for _ in range(steps):
        v.copy_(nn.functional.normalize(matrix.t() @ u, dim=0, eps=1e-12))
        u.copy_(nn.functional.normalize(matrix @ v, dim=0, eps=1e-12))


def _calibrate(nets: LivePortraitNetworks, images: np.ndarray) -> None:
    """Batch-norm statistics of a train-mode pass over `images` (N, S, S, 3) uint8: the
    appearance extractor on all of them, the warping module driving the first by the rest."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    from dfmnist.generators.liveportrait.camera import relative_keypoints, source_keypoints

    for net in (nets.appearance_feature_extractor, nets.warping_module):
        for module in net.modules():
            if isinstance(module, _NORMS):
                module.momentum = None  # cumulative average over the passes
                module.reset_running_stats()
        net.train()
    feature = nets.appearance_feature_extractor(x)[:1]
    info = nets.motion_extractor.info(x)
    kp_source = source_keypoints(info[0])
    kp_driving = relative_keypoints(info[0], info[1:], info[1])
    warping = nets.warping_module
    warping(feature, warping.prepare(feature, kp_source), kp_driving)
    nets.eval()


def random_networks(config: str | LivePortraitConfig = "human", seed: int = 0,
                    calibration: np.ndarray | None = None,
                    power_steps: int = 5) -> LivePortraitNetworks:
    """Random networks of `config` (see the module docstring), in eval mode.

    `calibration`: (N, S, S, 3) uint8 face crops at the config's frame size, N >= 2."""
    torch.manual_seed(seed)
    nets = build_networks(config)
    with torch.no_grad():
        for net in nets.modules().values():
            for module in net.modules():
                if isinstance(module, _NORMS):
                    module.weight.uniform_(0.8, 1.2)
                    module.bias.normal_(0.0, 0.1)
                    module.running_mean.normal_(0.0, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
                elif isinstance(module, GlobalResponseNorm):
                    module.gamma.normal_(0.0, 0.2)
                    module.beta.normal_(0.0, 0.1)
                elif isinstance(module, nn.LayerNorm | ChannelsFirstLayerNorm):
                    module.weight.uniform_(0.8, 1.2)
                    module.bias.normal_(0.0, 0.05)
                elif isinstance(module, SpectralConv2d):
                    _power_iteration(module, power_steps)
        heads = nets.motion_extractor.detector
        for head in (heads.fc_pitch, heads.fc_yaw, heads.fc_roll):
            head.weight.mul_(4.0)
        for head, factor in ((heads.fc_exp, 0.05), (heads.fc_t, 0.1), (heads.fc_scale, 0.1)):
            head.weight.mul_(factor)
            head.bias.mul_(factor)
        heads.fc_scale.bias.add_(1.0)
        heads.fc_kp.weight.mul_(0.8)
        if calibration is not None:
            _calibrate(nets, calibration)
    return nets.eval()


def write_random_checkpoint(directory: str | Path, config: str | LivePortraitConfig = "human",
                            seed: int = 0, calibration: np.ndarray | None = None,
                            **options: bool) -> dict[str, Path]:
    """`random_networks` saved as the five original files in `directory`; returns them.
    `options` go to `save_checkpoint` (``published_layout``, ``ddp_prefix``)."""
    return save_checkpoint(directory, random_networks(config, seed, calibration), **options)

"""Our PyTorch LivePortrait (Guo et al., 2024), loading the original's five checkpoint files.

Modules: `blocks` (shared layers), `appearance`, `convnextv2` and `motion_extractor`,
`dense_motion`, `warping`, `spade`, `stitching` (the networks, with the original parameter
names), `camera` (pose and keypoint arithmetic), `checkpoint` (configs, strict loading),
`inference` (inference-only rewrites), `random_weights` (seeded weights for tests),
`original` (the original code imported from a checkout, for parity and benchmarks),
`model` (`LivePortraitGenerator`, the registry's ``'liveportrait'``).
"""

from __future__ import annotations

from dfmnist.generators.liveportrait.checkpoint import (
    CONFIGS,
    FILES,
    CheckpointError,
    LivePortraitConfig,
    LivePortraitNetworks,
    build_networks,
    load_checkpoint,
    save_checkpoint,
)
from dfmnist.generators.liveportrait.model import LivePortraitGenerator

__all__ = [
    "CONFIGS",
    "FILES",
    "CheckpointError",
    "LivePortraitConfig",
    "LivePortraitGenerator",
    "LivePortraitNetworks",
    "build_networks",
    "load_checkpoint",
    "save_checkpoint",
]

"""Our PyTorch First Order Motion Model, checkpoint-compatible with the original vox-256 model.

Modules: `blocks` (shared layers), `keypoint_detector`, `dense_motion`, `generator` (the
networks, with the original parameter names), `checkpoint` (configs and checkpoint I/O),
`model` (`FommGenerator`, the registry's ``'fomm'``).
"""

from __future__ import annotations

from dfmnist.generators.fomm.checkpoint import (
    CONFIGS,
    CheckpointError,
    FommConfig,
    build_networks,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from dfmnist.generators.fomm.dense_motion import DenseMotion, DenseMotionNetwork
from dfmnist.generators.fomm.generator import OcclusionAwareGenerator, SourceEncoding
from dfmnist.generators.fomm.keypoint_detector import KeypointDetector, Keypoints
from dfmnist.generators.fomm.model import (
    FommGenerator,
    adapt_movement_scale,
    hull_area,
    relative_keypoints,
)

__all__ = [
    "CONFIGS",
    "CheckpointError",
    "DenseMotion",
    "DenseMotionNetwork",
    "FommConfig",
    "FommGenerator",
    "KeypointDetector",
    "Keypoints",
    "OcclusionAwareGenerator",
    "SourceEncoding",
    "adapt_movement_scale",
    "build_networks",
    "hull_area",
    "load_checkpoint",
    "read_checkpoint",
    "relative_keypoints",
    "save_checkpoint",
]

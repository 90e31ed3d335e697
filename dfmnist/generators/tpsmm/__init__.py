"""Our PyTorch Thin-Plate Spline Motion Model (Zhao & Zhang, CVPR 2022), checkpoint-compatible
with the original (https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model, MIT).

Modules: `blocks` (FOMM's blocks with instance norms), `tps` (the thin-plate splines),
`keypoint_detector`, `dense_motion`, `inpainting_network`, `avd_network`, `bg_motion` (the
networks, with the original parameter names), `checkpoint` (configs and checkpoint I/O),
`modes` (standard, relative and AVD keypoints, best initial frame), `inference` (speed
rewrites), `model` (`TpsmmGenerator`, the registry's ``'tpsmm'``), `original` (the original
code imported from a checkout, for parity checks and benchmarks).
"""

from __future__ import annotations

from dfmnist.generators.tpsmm.avd_network import AVDNetwork
from dfmnist.generators.tpsmm.bg_motion import BGMotionPredictor
from dfmnist.generators.tpsmm.checkpoint import (
    CONFIGS,
    KEY_MAP,
    CheckpointError,
    TpsmmConfig,
    TpsmmNetworks,
    build_networks,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from dfmnist.generators.tpsmm.dense_motion import DenseMotion, DenseMotionNetwork
from dfmnist.generators.tpsmm.inpainting_network import InpaintingNetwork
from dfmnist.generators.tpsmm.keypoint_detector import KeypointDetector
from dfmnist.generators.tpsmm.model import TpsmmGenerator
from dfmnist.generators.tpsmm.modes import best_frame, relative_keypoints
from dfmnist.generators.tpsmm.tps import ThinPlateSpline, fit_tps

__all__ = [
    "CONFIGS",
    "KEY_MAP",
    "AVDNetwork",
    "BGMotionPredictor",
    "CheckpointError",
    "DenseMotion",
    "DenseMotionNetwork",
    "InpaintingNetwork",
    "KeypointDetector",
    "ThinPlateSpline",
    "TpsmmConfig",
    "TpsmmGenerator",
    "TpsmmNetworks",
    "best_frame",
    "build_networks",
    "fit_tps",
    "load_checkpoint",
    "read_checkpoint",
    "relative_keypoints",
    "save_checkpoint",
]

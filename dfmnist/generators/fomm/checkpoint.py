"""Network configurations and checkpoint I/O in the original first-order-model layout.

A checkpoint is a ``torch.save``d dict with (at least) a ``'kp_detector'`` and a
``'generator'`` state dict; the published ``vox-cpk.pth.tar`` also holds the discriminator,
the three optimizer states and ``'epoch'``. Only the two state dicts are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dfmnist.generators.fomm.generator import OcclusionAwareGenerator
from dfmnist.generators.fomm.keypoint_detector import KeypointDetector
from dfmnist.generators.network import config_by_name
from dfmnist.generators.state_files import (
    CheckpointError,
    check_sha256,
    check_state_dict,
    read_state_file,
)

__all__ = [
    "CONFIGS",
    "CheckpointError",
    "FommConfig",
    "build_networks",
    "checkpoint_missing_message",
    "load_checkpoint",
    "load_state_dicts",
    "read_checkpoint",
    "save_checkpoint",
]

ORIGINAL_REPO = "https://github.com/AliaksandrSiarohin/first-order-model"
#: The state dicts a checkpoint must hold (the published file has optimizers and more).
REQUIRED = ("kp_detector", "generator")


@dataclass(frozen=True)
class FommConfig:
    """Hyper-parameters of one FOMM model (names as in the original YAML configs)."""

    name: str
    frame_size: int
    common: dict[str, Any] = field(default_factory=dict)
    kp_detector: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)


#: The published vox-256 model (config/vox-256.yaml of the first-order-model repository).
VOX_256 = FommConfig(
    name="vox-256",
    frame_size=256,
    common={"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    kp_detector={"temperature": 0.1, "block_expansion": 32, "max_features": 1024,
                 "scale_factor": 0.25, "num_blocks": 5},
    generator={
        "block_expansion": 64, "max_features": 512, "num_down_blocks": 2,
        "num_bottleneck_blocks": 6, "estimate_occlusion_map": True,
        "dense_motion_params": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5,
                                "scale_factor": 0.25},
    },
)

#: A tiny model of the same structure for 64x64 frames (tests, smoke runs; no published weights).
SMALL = FommConfig(
    name="small",
    frame_size=64,
    common={"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    kp_detector={"temperature": 0.1, "block_expansion": 8, "max_features": 64,
                 "scale_factor": 0.5, "num_blocks": 3},
    generator={
        "block_expansion": 8, "max_features": 32, "num_down_blocks": 2,
        "num_bottleneck_blocks": 2, "estimate_occlusion_map": True,
        "dense_motion_params": {"block_expansion": 8, "max_features": 64, "num_blocks": 3,
                                "scale_factor": 0.5},
    },
)

CONFIGS: dict[str, FommConfig] = {c.name: c for c in (VOX_256, SMALL)}


def get_config(config: str | FommConfig) -> FommConfig:
    """A config by name (``'vox-256'``, ``'small'``) or the config itself."""
    return config_by_name(config, CONFIGS, "FOMM")


def build_networks(
    config: str | FommConfig = "vox-256", align_corners: bool = True
) -> tuple[KeypointDetector, OcclusionAwareGenerator]:
    """Freshly initialised (kp_detector, generator) for a config."""
    cfg = get_config(config)
    kp_detector = KeypointDetector(**cfg.kp_detector, **cfg.common)
    generator = OcclusionAwareGenerator(**cfg.generator, **cfg.common, align_corners=align_corners)
    return kp_detector, generator


def checkpoint_missing_message(path: str | Path) -> str:
    """The error text for a checkpoint path that does not exist."""
    return (f"FOMM checkpoint not found: {path}. The original vox-256 weights (vox-cpk.pth.tar) "
            f"are published with the first-order-model repository ({ORIGINAL_REPO}, "
            f"'Pre-trained checkpoint' in its README); download it and set "
            f"generate.fomm.checkpoint in config.yaml (or --config fomm_checkpoint=FILE)")


def read_checkpoint(path: str | Path, unsafe_load: bool = False) -> dict[str, Any]:
    """Read a checkpoint file into a dict on the CPU (`state_files.read_state_file`: the safe
    loader unless `unsafe_load`). Raises FileNotFoundError for a missing file and
    CheckpointError for anything that is not a readable dict with ``'kp_detector'`` and
    ``'generator'``."""
    return read_state_file(path, "an FOMM checkpoint", REQUIRED, unsafe_load,
                           checkpoint_missing_message(path))


def load_state_dicts(
    kp_detector: KeypointDetector,
    generator: OcclusionAwareGenerator,
    checkpoint: Mapping[str, Any],
    source: str = "checkpoint",
) -> None:
    """Load a checkpoint dict into the two networks, strictly (keys and shapes)."""
    kp_state = check_state_dict(kp_detector, checkpoint["kp_detector"],
                                f"{source}: 'kp_detector'")
    gen_state = check_state_dict(generator, checkpoint["generator"], f"{source}: 'generator'")
    kp_detector.load_state_dict(kp_state, strict=True)
    generator.load_state_dict(gen_state, strict=True)


def load_checkpoint(
    path: str | Path,
    config: str | FommConfig = "vox-256",
    *,
    expected_sha256: str | None = None,
    unsafe_load: bool = False,
    align_corners: bool = True,
) -> tuple[KeypointDetector, OcclusionAwareGenerator]:
    """Build the networks of `config` and load a checkpoint in the original format into them.

    Returns (kp_detector, generator) in eval mode on the CPU. With `expected_sha256` the file's
    hash is checked first. Raises FileNotFoundError (missing file) or CheckpointError.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(checkpoint_missing_message(path))
    if expected_sha256 is not None:
        check_sha256(path, expected_sha256)
    data = read_checkpoint(path, unsafe_load=unsafe_load)
    kp_detector, generator = build_networks(config, align_corners=align_corners)
    load_state_dicts(kp_detector, generator, data, source=str(path))
    return kp_detector.eval(), generator.eval()


def save_checkpoint(
    path: str | Path,
    kp_detector: nn.Module,
    generator: nn.Module,
    extra: Mapping[str, Any] | None = None,
    legacy_format: bool = False,
) -> None:
    """Write the two state dicts in the original layout (plus `extra` entries, e.g. 'epoch').

    `legacy_format` writes PyTorch's pre-1.6 (non-zip) serialization, like the published file.
    """
    data: dict[str, Any] = {"kp_detector": kp_detector.state_dict(),
                            "generator": generator.state_dict()}
    data.update(extra or {})
    torch.save(data, path, _use_new_zipfile_serialization=not legacy_format)

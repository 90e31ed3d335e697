"""TPSMM network configurations and checkpoint I/O in the original layout.

A checkpoint of https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model is a
``torch.save``d dict of state dicts (``logger.py``, ``Logger.save_cpk``): always
``'kp_detector'``, ``'dense_motion_network'`` and ``'inpainting_network'``; ``'bg_predictor'``
once the background predictor has trained (``train.py``, ``bg: True``); ``'avd_network'``
after ``train_avd.py``; plus optimizer states and ``'epoch'``, which are not used here. The
original ``demo.py`` loads the first three strictly and ``'avd_network'`` when present.

Key map: the identity. Every network here has the original's module names, so each state
dict loads as saved, key for key (`KEY_MAP` lists the networks). This includes the
non-trainable buffers the original saves: the dense motion network's band-limiting gaussian
kernel ``down.weight`` (3, 1, 13, 13) for scale 0.25, and the batch-norm statistics of the
ResNets and of the AVD network (``running_mean``, ``running_var``, ``num_batches_tracked``;
the counters may be missing, see `check_state_dict`). The instance norms keep no statistics.
Loading is strict: a missing, unexpected or misshapen key is an error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from dfmnist.generators import state_files
from dfmnist.generators.network import config_by_name
from dfmnist.generators.state_files import CheckpointError, check_state_dict
from dfmnist.generators.tpsmm.avd_network import AVDNetwork
from dfmnist.generators.tpsmm.bg_motion import BGMotionPredictor
from dfmnist.generators.tpsmm.dense_motion import DenseMotionNetwork
from dfmnist.generators.tpsmm.inpainting_network import InpaintingNetwork
from dfmnist.generators.tpsmm.keypoint_detector import KeypointDetector

__all__ = [
    "CONFIGS",
    "KEY_MAP",
    "CheckpointError",
    "TpsmmConfig",
    "TpsmmNetworks",
    "build_networks",
    "check_sha256",
    "checkpoint_missing_message",
    "get_config",
    "load_checkpoint",
    "load_state_dicts",
    "read_checkpoint",
    "save_checkpoint",
]

ORIGINAL_REPO = "https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model"

#: Checkpoint entry -> our module holding that state dict (same keys inside: the identity).
KEY_MAP = {
    "kp_detector": "TpsmmNetworks.kp_detector (KeypointDetector)",
    "dense_motion_network": "TpsmmNetworks.dense_motion_network (DenseMotionNetwork)",
    "inpainting_network": "TpsmmNetworks.inpainting_network (InpaintingNetwork)",
    "avd_network": "TpsmmNetworks.avd_network (AVDNetwork), optional",
    "bg_predictor": "TpsmmNetworks.bg_predictor (BGMotionPredictor), optional",
}
#: Entries every checkpoint has.
REQUIRED = ("kp_detector", "dense_motion_network", "inpainting_network")
#: Entries a checkpoint may have.
OPTIONAL = ("avd_network", "bg_predictor")


@dataclass(frozen=True)
class TpsmmConfig:
    """Hyper-parameters of one TPSMM model (names as in the original YAML configs)."""

    name: str
    frame_size: int
    common: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    dense_motion: dict[str, Any] = field(default_factory=dict)
    avd_network: dict[str, Any] = field(default_factory=dict)

    def yaml_params(self) -> dict[str, Any]:
        """The ``model_params`` section of the original YAML for this config."""
        return {"common_params": dict(self.common), "generator_params": dict(self.generator),
                "dense_motion_params": dict(self.dense_motion),
                "avd_network_params": dict(self.avd_network)}


#: The published vox model (config/vox-256.yaml of the original repository).
VOX_256 = TpsmmConfig(
    name="vox-256",
    frame_size=256,
    common={"num_tps": 10, "num_channels": 3, "bg": True, "multi_mask": True},
    generator={"block_expansion": 64, "max_features": 512, "num_down_blocks": 3},
    dense_motion={"block_expansion": 64, "max_features": 1024, "num_blocks": 5,
                  "scale_factor": 0.25},
    avd_network={"id_bottle_size": 128, "pose_bottle_size": 128},
)

#: The same structure, narrow, for 64x64 frames (tests, smoke runs; no published weights).
#: The keypoint detector is the full ResNet-18 in every config.
SMALL = TpsmmConfig(
    name="small",
    frame_size=64,
    common={"num_tps": 10, "num_channels": 3, "bg": True, "multi_mask": True},
    generator={"block_expansion": 8, "max_features": 64, "num_down_blocks": 3},
    dense_motion={"block_expansion": 8, "max_features": 64, "num_blocks": 3,
                  "scale_factor": 0.25},
    avd_network={"id_bottle_size": 32, "pose_bottle_size": 32},
)

CONFIGS: dict[str, TpsmmConfig] = {c.name: c for c in (VOX_256, SMALL)}


class TpsmmNetworks(NamedTuple):
    """The networks of one model; the optional ones are None when a checkpoint lacks them."""

    kp_detector: KeypointDetector
    dense_motion_network: DenseMotionNetwork
    inpainting_network: InpaintingNetwork
    avd_network: AVDNetwork | None = None
    bg_predictor: BGMotionPredictor | None = None

    def present(self) -> dict[str, nn.Module]:
        """The networks that are not None, by checkpoint entry."""
        return {k: v for k, v in self._asdict().items() if v is not None}


def get_config(config: str | TpsmmConfig) -> TpsmmConfig:
    """A config by name (``'vox-256'``, ``'small'``) or the config itself."""
    return config_by_name(config, CONFIGS, "TPSMM")


def build_networks(config: str | TpsmmConfig = "vox-256") -> TpsmmNetworks:
    """Freshly initialised networks of a config, all five, built as the original's
    ``load_checkpoints`` and ``run.py`` build them."""
    cfg = get_config(config)
    common = cfg.common
    return TpsmmNetworks(
        kp_detector=KeypointDetector(**common),
        dense_motion_network=DenseMotionNetwork(**common, **cfg.dense_motion),
        inpainting_network=InpaintingNetwork(**cfg.generator, **common),
        avd_network=AVDNetwork(num_tps=common["num_tps"], **cfg.avd_network),
        bg_predictor=BGMotionPredictor(),
    )


def checkpoint_missing_message(path: str | Path) -> str:
    """The error text for a checkpoint path that does not exist."""
    return (f"TPSMM checkpoint not found: {path}. The original vox weights (vox.pth.tar) are "
            f"published with the Thin-Plate-Spline-Motion-Model repository ({ORIGINAL_REPO}, "
            f"'Pre-trained models' in its README); download it and set "
            f"generate.tpsmm.checkpoint in config.yaml (or --config tpsmm_checkpoint=FILE)")


def check_sha256(path: str | Path, expected: str) -> None:
    """Raise CheckpointError unless the file's sha256 is `expected` (hex, any case)."""
    if not Path(path).is_file():
        raise FileNotFoundError(checkpoint_missing_message(path))
    state_files.check_sha256(path, expected)


def read_checkpoint(path: str | Path, unsafe_load: bool = False) -> dict[str, Any]:
    """Read a checkpoint file into a dict on the CPU (`state_files.read_state_file`: the safe
    loader unless `unsafe_load`). Raises FileNotFoundError for a missing file and
    CheckpointError for anything but a readable dict holding the required state dicts."""
    return state_files.read_state_file(path, "a TPSMM checkpoint", REQUIRED, unsafe_load,
                                       checkpoint_missing_message(path))


def load_state_dicts(networks: TpsmmNetworks, checkpoint: Mapping[str, Any],
                     source: str = "checkpoint") -> TpsmmNetworks:
    """Load a checkpoint dict into `networks` strictly (every key and shape); returns them with
    the optional networks the checkpoint lacks set to None."""
    loaded = {}
    for entry, module in networks.present().items():
        if entry in OPTIONAL and entry not in checkpoint:
            continue
        state = check_state_dict(module, checkpoint[entry], f"{source}: {entry!r}")
        module.load_state_dict(state, strict=True)
        loaded[entry] = module
    return TpsmmNetworks(**loaded)


def load_checkpoint(
    path: str | Path,
    config: str | TpsmmConfig = "vox-256",
    *,
    expected_sha256: str | None = None,
    unsafe_load: bool = False,
) -> TpsmmNetworks:
    """Build the networks of `config` and load a checkpoint in the original format into them,
    strictly; in eval mode on the CPU. With `expected_sha256` the file's hash is checked
    first. Raises FileNotFoundError (missing file) or CheckpointError."""
    if expected_sha256 is not None:
        check_sha256(path, expected_sha256)
    data = read_checkpoint(path, unsafe_load=unsafe_load)
    networks = load_state_dicts(build_networks(config), data, source=str(path))
    for module in networks.present().values():
        module.eval()
    return networks


def save_checkpoint(path: str | Path, networks: TpsmmNetworks,
                    extra: Mapping[str, Any] | None = None, legacy_format: bool = False) -> None:
    """Write the networks' state dicts in the original layout (plus `extra` entries such as
    ``'epoch'``); `legacy_format` writes PyTorch's pre-1.6 (non-zip) serialization."""
    data: dict[str, Any] = {k: v.state_dict() for k, v in networks.present().items()}
    data.update(extra or {})
    torch.save(data, path, _use_new_zipfile_serialization=not legacy_format)

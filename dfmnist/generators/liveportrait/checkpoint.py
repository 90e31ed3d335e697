"""Configurations and the five-file checkpoint of LivePortrait, loaded strictly.

The published human model (KwaiVGI/LivePortrait, ``src/config/inference_config.py``) is five
``torch.save``d files under ``pretrained_weights/liveportrait/``:

========================================  =====================  ==============================
file                                      holds                  our module (key map)
========================================  =====================  ==============================
base_models/appearance_feature_extractor  a state dict           `AppearanceFeatureExtractor`
  .pth                                                           (identity)
base_models/motion_extractor.pth          a state dict           `MotionExtractor` (identity,
                                                                 ``detector.`` prefix included)
base_models/warping_module.pth            a state dict           `WarpingNetwork` (identity)
base_models/spade_generator.pth           a state dict           `SPADEDecoder` (identity:
                                                                 ``weight_orig``/``weight_u``/
                                                                 ``weight_v`` of spectral norm)
retargeting_models/                       {'retarget_shoulder',  stitching / lip / eye
  stitching_retargeting_module.pth         'retarget_mouth',     `StitchingRetargetingNetwork`
                                           'retarget_eye'}: one  (``module.`` removed from every
                                           state dict each       key, as the original's loader
                                                                 does: its DDP prefix)
========================================  =====================  ==============================

Every state dict must match its module exactly: the same keys, the same shapes
(`dfmnist.generators.fomm.checkpoint.check_state_dict`, whose errors name the first missing,
unexpected and misshapen keys, here prefixed with the file). The files may lie in one folder
or in the published ``base_models``/``retargeting_models`` layout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dfmnist.generators.liveportrait.appearance import AppearanceFeatureExtractor
from dfmnist.generators.liveportrait.motion_extractor import MotionExtractor
from dfmnist.generators.liveportrait.spade import SPADEDecoder
from dfmnist.generators.liveportrait.stitching import StitchingRetargetingNetwork
from dfmnist.generators.liveportrait.warping import WarpingNetwork
from dfmnist.generators.network import config_by_name
from dfmnist.generators.state_files import CheckpointError, check_state_dict, read_state_file
from dfmnist.storage.files import sha256_file

__all__ = [
    "CONFIGS",
    "FILES",
    "STITCHING_KEYS",
    "CheckpointError",
    "LivePortraitConfig",
    "LivePortraitNetworks",
    "build_networks",
    "checkpoint_files",
    "checkpoint_sha256",
    "get_config",
    "load_checkpoint",
    "save_checkpoint",
]

ORIGINAL_REPO = "https://github.com/KwaiVGI/LivePortrait"

#: Module name -> (file name, the published layout's sub-folder).
FILES = {
    "appearance_feature_extractor": ("appearance_feature_extractor.pth", "base_models"),
    "motion_extractor": ("motion_extractor.pth", "base_models"),
    "warping_module": ("warping_module.pth", "base_models"),
    "spade_generator": ("spade_generator.pth", "base_models"),
    "stitching_retargeting_module": ("stitching_retargeting_module.pth", "retargeting_models"),
}
#: The stitching file's top-level keys -> our sub-network names.
STITCHING_KEYS = {"retarget_shoulder": "stitching", "retarget_mouth": "lip",
                  "retarget_eye": "eye"}


@dataclass(frozen=True)
class LivePortraitConfig:
    """Hyper-parameters (names as in the original ``models.yaml``); `frame_size` is the
    networks' input side."""

    name: str
    frame_size: int
    appearance: dict[str, Any] = field(default_factory=dict)
    motion: dict[str, Any] = field(default_factory=dict)
    warping: dict[str, Any] = field(default_factory=dict)
    spade: dict[str, Any] = field(default_factory=dict)
    stitching: dict[str, dict[str, Any]] = field(default_factory=dict)


_STITCHING = {
    "stitching": {"input_size": 126, "hidden_sizes": [128, 128, 64], "output_size": 65},
    "lip": {"input_size": 65, "hidden_sizes": [128, 128, 64], "output_size": 63},
    "eye": {"input_size": 66, "hidden_sizes": [256, 256, 128, 128, 64], "output_size": 63},
}

#: The published human model (src/config/models.yaml of the original).
HUMAN = LivePortraitConfig(
    name="human",
    frame_size=256,
    appearance={"image_channel": 3, "block_expansion": 64, "num_down_blocks": 2,
                "max_features": 512, "reshape_channel": 32, "reshape_depth": 16,
                "num_resblocks": 6},
    motion={"num_kp": 21, "backbone": "convnextv2_tiny"},
    warping={"num_kp": 21, "block_expansion": 64, "max_features": 512, "num_down_blocks": 2,
             "reshape_channel": 32, "estimate_occlusion_map": True,
             "dense_motion_params": {"block_expansion": 32, "max_features": 1024,
                                     "num_blocks": 5, "reshape_depth": 16, "compress": 4}},
    spade={"upscale": 2, "block_expansion": 64, "max_features": 512, "num_down_blocks": 2},
    stitching=_STITCHING,
)

#: The same structure, narrow, for 64x64 frames (tests; no published weights). The keypoint
#: count (21) and so the stitching MLPs are the published ones.
SMALL = LivePortraitConfig(
    name="small",
    frame_size=64,
    appearance={"image_channel": 3, "block_expansion": 8, "num_down_blocks": 2,
                "max_features": 32, "reshape_channel": 8, "reshape_depth": 4,
                "num_resblocks": 1},
    motion={"num_kp": 21, "backbone": "convnextv2_tiny", "depths": (1, 1, 1, 1),
            "dims": (8, 16, 16, 32)},
    warping={"num_kp": 21, "block_expansion": 8, "max_features": 32, "num_down_blocks": 2,
             "reshape_channel": 8, "estimate_occlusion_map": True,
             "dense_motion_params": {"block_expansion": 8, "max_features": 32,
                                     "num_blocks": 2, "reshape_depth": 4, "compress": 2}},
    spade={"upscale": 2, "block_expansion": 8, "max_features": 32, "num_down_blocks": 2,
           "out_channels": 16},
    stitching=_STITCHING,
)

CONFIGS: dict[str, LivePortraitConfig] = {c.name: c for c in (HUMAN, SMALL)}


def get_config(config: str | LivePortraitConfig) -> LivePortraitConfig:
    """A config by name ('human', 'small') or the config itself."""
    return config_by_name(config, CONFIGS, "LivePortrait")


@dataclass
class LivePortraitNetworks:
    """The five modules; `stitching` holds the three MLPs ('stitching', 'lip', 'eye')."""

    appearance_feature_extractor: AppearanceFeatureExtractor
    motion_extractor: MotionExtractor
    warping_module: WarpingNetwork
    spade_generator: SPADEDecoder
    stitching_retargeting_module: nn.ModuleDict

    def modules(self) -> dict[str, nn.Module]:
        """Name -> module, in `FILES` order."""
        return {name: getattr(self, name) for name in FILES}

    def eval(self) -> LivePortraitNetworks:
        for module in self.modules().values():
            module.eval()
        return self


def build_networks(config: str | LivePortraitConfig = "human") -> LivePortraitNetworks:
    """Freshly initialised networks of a config."""
    cfg = get_config(config)
    return LivePortraitNetworks(
        appearance_feature_extractor=AppearanceFeatureExtractor(**cfg.appearance),
        motion_extractor=MotionExtractor(**cfg.motion),
        warping_module=WarpingNetwork(**cfg.warping),
        spade_generator=SPADEDecoder(**cfg.spade),
        stitching_retargeting_module=nn.ModuleDict(
            {name: StitchingRetargetingNetwork(**cfg.stitching[name])
             for name in ("stitching", "lip", "eye")}),
    )


def checkpoint_missing_message(path: str | Path) -> str:
    """The error text for a checkpoint folder that does not exist."""
    return (f"LivePortrait checkpoint not found: {path}. The published weights "
            f"(pretrained_weights/liveportrait/ of {ORIGINAL_REPO}'s README) are five .pth "
            f"files; point generate.liveportrait.checkpoint at their folder (or --config "
            f"liveportrait_checkpoint=FOLDER)")


def checkpoint_files(path: str | Path) -> dict[str, Path]:
    """Module name -> file, found in `path` itself or in its ``base_models`` /
    ``retargeting_models`` sub-folders (the published layout). FileNotFoundError names every
    file that is missing."""
    root = Path(path)
    found, missing = {}, []
    for name, (filename, folder) in FILES.items():
        for candidate in (root / filename, root / folder / filename):
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            missing.append(f"{folder}/{filename}")
    if missing:
        raise FileNotFoundError(
            f"LivePortrait checkpoint incomplete in {root}: no {', '.join(missing)}. The "
            f"published weights (pretrained_weights/liveportrait/ of {ORIGINAL_REPO}'s README) "
            f"are five files; point the checkpoint at that folder")
    return found


def checkpoint_sha256(files: dict[str, Path]) -> str:
    """One sha256 for the five files: of the lines ``name sha256(file)``, in `FILES` order."""
    lines = "".join(f"{name} {sha256_file(files[name])}\n" for name in FILES)
    return hashlib.sha256(lines.encode()).hexdigest()


def _read(path: Path) -> dict[str, Any]:
    return read_state_file(path, "a LivePortrait checkpoint file")


def _load(module: nn.Module, state: dict[str, Any], label: str) -> None:
    module.load_state_dict(check_state_dict(module, state, label), strict=True)


def load_checkpoint(path: str | Path,
                    config: str | LivePortraitConfig = "human") -> LivePortraitNetworks:
    """Build the networks of `config` and load the five files found under `path` into them,
    strictly; eval mode, on the CPU. Raises FileNotFoundError or CheckpointError (naming the
    file and the offending keys)."""
    files = checkpoint_files(path)
    nets = build_networks(config)
    for name, module in nets.modules().items():
        data = _read(files[name])
        if name != "stitching_retargeting_module":
            _load(module, data, f"{files[name]}")
            continue
        missing = [k for k in STITCHING_KEYS if not isinstance(data.get(k), dict)]
        extra = [k for k in data if k not in STITCHING_KEYS]
        if missing or extra:
            raise CheckpointError(
                f"{files[name]}: expected the state dicts {', '.join(map(repr, STITCHING_KEYS))}"
                + (f"; missing {', '.join(map(repr, missing))}" if missing else "")
                + (f"; unexpected {', '.join(map(repr, extra))}" if extra else ""))
        for key, part in STITCHING_KEYS.items():
            state = {k.replace("module.", ""): v for k, v in data[key].items()}
            _load(module[part], state, f"{files[name]}: {key!r}")
    return nets.eval()


def save_checkpoint(directory: str | Path, networks: LivePortraitNetworks,
                    published_layout: bool = False, ddp_prefix: bool = True) -> dict[str, Path]:
    """Write the five files in the original layout (flat, or in ``base_models`` /
    ``retargeting_models`` with `published_layout`); the stitching state dicts with the
    ``module.`` key prefix of a DDP-trained model unless not `ddp_prefix`. Returns the files."""
    root = Path(directory)
    out = {}
    for name, module in networks.modules().items():
        filename, folder = FILES[name]
        target = root / folder / filename if published_layout else root / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == "stitching_retargeting_module":
            prefix = "module." if ddp_prefix else ""
            data: dict[str, Any] = {
                key: {prefix + k: v for k, v in module[part].state_dict().items()}
                for key, part in STITCHING_KEYS.items()}
        else:
            data = module.state_dict()
        torch.save(data, target)
        out[name] = target
    return out

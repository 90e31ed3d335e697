"""Network configurations and checkpoint I/O in the original first-order-model layout.

A checkpoint is a ``torch.save``d dict with (at least) a ``'kp_detector'`` and a
``'generator'`` state dict; the published ``vox-cpk.pth.tar`` also holds the discriminator,
the three optimizer states and ``'epoch'``. Only the two state dicts are used.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dfmnist.generators.fomm.generator import OcclusionAwareGenerator
from dfmnist.generators.fomm.keypoint_detector import KeypointDetector
from dfmnist.storage.files import sha256_file

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


class CheckpointError(ValueError):
    """A file that is not a usable FOMM checkpoint (unreadable, wrong layout, wrong weights)."""


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
    if isinstance(config, FommConfig):
        return config
    try:
        return CONFIGS[config]
    except KeyError:
        raise ValueError(f"unknown FOMM config {config!r}; known: {', '.join(CONFIGS)}") from None


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
    """Read a checkpoint file into a dict on the CPU.

    Uses ``torch.load(weights_only=True)`` (tensors, containers and plain numbers only: enough
    for the original file, optimizer states included) unless `unsafe_load` (full unpickling:
    only for files you trust). Raises FileNotFoundError for a missing file and CheckpointError
    for anything that is not a readable dict with ``'kp_detector'`` and ``'generator'``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(checkpoint_missing_message(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=not unsafe_load)
    except pickle.UnpicklingError as exc:
        if not unsafe_load and "weights_only" in str(exc).lower():
            found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(
                f"not an FOMM checkpoint: {path} holds objects other than tensors and plain "
                f"containers{what}, refused by the safe loader (torch.load weights_only=True); "
                f"pass unsafe_load=True only for a file you trust"
            ) from exc
        raise CheckpointError(f"not an FOMM checkpoint: {path} is not a readable torch file "
                              f"({type(exc).__name__}: {_first_line(exc)})") from exc
    except (EOFError, RuntimeError, OSError, KeyError, ValueError, AttributeError,
            IndexError, TypeError) as exc:
        raise CheckpointError(
            f"not an FOMM checkpoint: {path} is not a readable torch file, or is truncated "
            f"({path.stat().st_size} bytes; {type(exc).__name__}: {_first_line(exc)})"
        ) from exc
    if not isinstance(data, Mapping):
        raise CheckpointError(f"not an FOMM checkpoint: {path} holds a {type(data).__name__}, "
                              f"expected a dict with 'kp_detector' and 'generator'")
    lacking = [k for k in ("kp_detector", "generator") if not isinstance(data.get(k), Mapping)]
    if lacking:
        keys = ", ".join(map(repr, list(data)[:8]))
        raise CheckpointError(f"not an FOMM checkpoint: {path} has no {' or '.join(lacking)} "
                              f"state dict (top-level keys: {keys})")
    return dict(data)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else repr(exc)


def _shape_text(shape: torch.Size | tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def check_state_dict(module: nn.Module, state: Mapping[str, Any], label: str,
                     limit: int = 5) -> dict[str, torch.Tensor]:
    """Check `state` against `module`'s own state dict: same keys, same shapes.

    ``num_batches_tracked`` counters (unused at inference; absent from checkpoints written
    before PyTorch 0.4.1) may be missing and are then filled with 0. Returns the state dict to
    load; raises CheckpointError listing the first `limit` missing, unexpected and mismatched
    keys.
    """
    expected = module.state_dict()
    state = dict(state)
    for key, ref in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(ref)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = []
    for key in expected:
        if key not in state:
            continue
        value = state[key]
        if not isinstance(value, torch.Tensor):
            mismatched.append(f"{key}: {type(value).__name__} instead of a tensor")
        elif value.shape != expected[key].shape:
            mismatched.append(f"{key}: checkpoint {_shape_text(value.shape)}, "
                              f"model {_shape_text(expected[key].shape)}")
    if missing or unexpected or mismatched:
        parts = []
        for title, items in (("missing", missing), ("unexpected", unexpected),
                             ("shape mismatch", mismatched)):
            if items:
                more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
                parts.append(f"{len(items)} {title}: {', '.join(items[:limit])}{more}")
        raise CheckpointError(f"{label} state dict does not match the model: " + "; ".join(parts))
    return state


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
        actual = sha256_file(path)
        if actual != expected_sha256.lower():
            raise CheckpointError(f"checkpoint {path} has sha256 {actual}, expected "
                                  f"{expected_sha256.lower()}")
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

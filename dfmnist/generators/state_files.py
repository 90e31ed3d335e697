"""Reading the originals' checkpoint files (FOMM's, TPSMM's, LivePortrait's five): PyTorch's
safe loader, one-line errors that name the file and what is wrong, strict state-dict checks
and the file hash. Each model's `checkpoint` module says which dicts its files hold.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dfmnist.storage.files import sha256_file

__all__ = ["CheckpointError", "check_sha256", "check_state_dict", "read_state_file"]


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint (unreadable, wrong layout, wrong weights)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else repr(exc)


def _shape_text(shape: torch.Size | tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def read_state_file(path: str | Path, what: str, required: Sequence[str] = (),
                    unsafe_load: bool = False, missing_message: str | None = None
                    ) -> dict[str, Any]:
    """The dict in the torch file `path`, on the CPU.

    ``torch.load(weights_only=True)`` (tensors, containers, numbers: enough for the originals'
    files, optimizer states included) unless `unsafe_load` (full unpickling, for trusted files
    only). `what` names the expected file in errors (e.g. 'an FOMM checkpoint'); `required`
    are the entries that must be state dicts. Raises FileNotFoundError (with
    `missing_message`, if given) for a missing file and CheckpointError for anything else.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing_message or f"no such file: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=not unsafe_load)
    except Exception as exc:  # torch.load raises many types for damaged or foreign files
        if isinstance(exc, pickle.UnpicklingError) and not unsafe_load \
                and "weights_only" in str(exc).lower():
            found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
            held = f" ({found.group(1)})" if found else ""
            raise CheckpointError(
                f"not {what}: {path} holds objects other than tensors and plain "
                f"containers{held}, refused by the safe loader (torch.load weights_only=True); "
                f"pass unsafe_load=True only for a file you trust") from exc
        raise CheckpointError(
            f"not {what}: {path} is not a readable torch file, or is truncated "
            f"({path.stat().st_size} bytes; {type(exc).__name__}: {_first_line(exc)})"
        ) from exc
    expected = ", ".join(map(repr, required)) or "state dicts"
    if not isinstance(data, Mapping):
        raise CheckpointError(f"not {what}: {path} holds a {type(data).__name__}, expected a "
                              f"dict with {expected}")
    lacking = [k for k in required if not isinstance(data.get(k), Mapping)]
    if lacking:
        keys = ", ".join(map(repr, list(data)[:8]))
        raise CheckpointError(f"not {what}: {path} has no {' or '.join(lacking)} state dict "
                              f"(top-level keys: {keys})")
    return dict(data)


def check_sha256(path: str | Path, expected: str) -> str:
    """The file's sha256; CheckpointError unless it is `expected` (hex, any case)."""
    found, wanted = sha256_file(Path(path)), expected.lower()
    if found != wanted:
        raise CheckpointError(f"checkpoint {path} has sha256 {found}, expected {wanted}")
    return found


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

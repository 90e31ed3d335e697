"""Importing an original implementation from a checkout outside this repository (parity
checks and benchmarks): stand-ins for what its entry points import at module level but never
call at inference.

A stand-in is a bare module put into ``sys.modules`` under the package's name, so that the
original's ``import tqdm`` (say) succeeds without the package installed. It carries a module
spec without an origin: ``importlib.util.find_spec`` (which torch._dynamo calls on tqdm when
torchvision is first imported) then treats it as a module without a file instead of raising
``ValueError: tqdm.__spec__ is None``.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any

__all__ = ["passthrough", "stand_in"]


def stand_in(name: str, why: str, **attributes: Any) -> types.ModuleType:
    """Put a module `name` holding `attributes` into ``sys.modules``; `why` becomes its
    docstring (who imports it, and why it is never called)."""
    module = types.ModuleType(name, f"stand-in: {why}")
    module.__dict__.update(attributes)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules[name] = module
    return module


def passthrough(iterable: Any, *args: Any, **kwargs: Any) -> Any:
    """A progress bar that shows nothing: `iterable` itself (stands in for ``tqdm.tqdm`` and
    ``rich.progress.track``)."""
    return iterable

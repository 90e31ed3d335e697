"""Liveness providers (checkers that filter generated videos) and their registry."""

from __future__ import annotations

from typing import Any

from dfmnist.liveness.baidu import BaiduProvider
from dfmnist.liveness.base import LivenessProvider, Verdict
from dfmnist.liveness.local import LocalProvider
from dfmnist.liveness.tianyan import TianyanProvider
from dfmnist.liveness.unchecked import UncheckedProvider

#: Provider classes by registry name.
PROVIDERS: dict[str, type[LivenessProvider]] = {
    LocalProvider.name: LocalProvider,
    BaiduProvider.name: BaiduProvider,
    TianyanProvider.name: TianyanProvider,
    UncheckedProvider.name: UncheckedProvider,
}


def make_provider(name: str, **options: Any) -> LivenessProvider:
    """Build the provider registered as `name` with its constructor `options`."""
    try:
        cls = PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ValueError(f"unknown liveness provider {name!r}; known providers: {known}") from None
    return cls(**options)


__all__ = ["PROVIDERS", "BaiduProvider", "LivenessProvider", "LocalProvider", "TianyanProvider",
           "UncheckedProvider", "Verdict", "make_provider"]

"""Face-animation generators and their registry."""

from __future__ import annotations

from typing import Any

from dfmnist.generators.base import Generator, check_inputs
from dfmnist.generators.fomm import FommGenerator
from dfmnist.generators.landmark_warp import LandmarkWarpGenerator
from dfmnist.generators.liveportrait import LivePortraitGenerator
from dfmnist.generators.source_copy import SourceCopyGenerator
from dfmnist.generators.tpsmm import TpsmmGenerator

#: Generator classes by registry name.
GENERATORS: dict[str, type[Generator]] = {
    LandmarkWarpGenerator.name: LandmarkWarpGenerator,
    FommGenerator.name: FommGenerator,
    TpsmmGenerator.name: TpsmmGenerator,
    LivePortraitGenerator.name: LivePortraitGenerator,
    SourceCopyGenerator.name: SourceCopyGenerator,  # benchmarks only: no animation
}


def make_generator(name: str, **options: Any) -> Generator:
    """Build the generator registered as `name` with its constructor `options`."""
    try:
        cls = GENERATORS[name]
    except KeyError:
        known = ", ".join(sorted(GENERATORS))
        raise ValueError(f"unknown generator {name!r}; known generators: {known}") from None
    return cls(**options)


__all__ = ["GENERATORS", "Generator", "LandmarkWarpGenerator", "check_inputs", "make_generator"]

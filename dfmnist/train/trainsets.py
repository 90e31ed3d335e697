"""The training-set naming grammar, in one place (torch-free: the workflow parses it).

A training set name is one of:

* `{variant}`: every training video of one compression variant;
* `mixed`: every training video, each frame drawn from a random variant each time it is read
  (the paper's mixed-quality training);
* `{variant}-action-{action}`: the fakes of one action and as many reals (seeded sample);
* `{variant}-n{N}`: N fakes spread evenly over the actions and N reals (seeded sample).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIXED = "mixed"
#: The grammar as a regular expression without anchors (the workflow's wildcard constraint).
PATTERN = rf"{MIXED}|[A-Za-z0-9_]+(?:-action-[a-z_]+|-n\d+)?"
_SPEC = re.compile(r"^(?P<variant>[A-Za-z0-9_]+)(?:-action-(?P<action>[a-z_]+)|-n(?P<n>\d+))?$")


@dataclass(frozen=True)
class TrainSet:
    """A parsed training set name."""

    spec: str
    variant: str | None  # None for mixed
    action: str | None = None
    n_fakes: int | None = None


def trainset_name(variant: str | None, action: str | None = None,
                  n_fakes: int | None = None) -> str:
    """The name of a training set: `variant` None is the mixed-quality set."""
    if variant is None:
        return MIXED
    if action is not None:
        return f"{variant}-action-{action}"
    if n_fakes is not None:
        return f"{variant}-n{int(n_fakes)}"
    return variant


def parse_trainset(spec: str, variants: list[str]) -> TrainSet:
    """Parse a training set name against the dataset's variants; ValueError if malformed."""
    if spec == MIXED:
        return TrainSet(spec, None)
    match = _SPEC.match(spec)
    if not match or match["variant"] not in variants:
        raise ValueError(f"bad training set {spec!r}: expected {MIXED}, a variant "
                         f"({', '.join(variants)}), {{variant}}-action-{{action}} or "
                         "{variant}-n{count}")
    n = match["n"]
    return TrainSet(spec, match["variant"], match["action"], int(n) if n else None)

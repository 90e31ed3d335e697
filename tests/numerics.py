"""Float32 tolerances derived from the arithmetic, not from the CPU a test was written on.

Two float32 evaluations of one mathematical function (a batched and a per-frame forward, a
folded and an unfolded norm, AVX-512 and AVX2 kernels) differ only by rounding, and how much
rounding moves an output depends on the function, the inputs and the kernels the machine picks.
A fixed bound such as 1e-5 therefore holds on one CPU and not on the next. Instead:

1. Where two implementations are equal in real arithmetic, the tests show it in float64, to
   1e-12 relative or better (float64 rounding is ~1e-16 per operation; 1e-12 leaves four orders
   of magnitude for the few thousand operations of a forward pass).
2. In float32, the float64 result is the truth, and the bound is what the *reference* itself
   misses it by on this machine: `rounding(reference32, truth64)`. Ours may miss the truth by at
   most `MARGIN` times that. Both errors come from the same float32 arithmetic on the same CPU
   (its kernels, its instruction set), so the bound moves with the machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

#: How much further from the float64 truth ours may land than the reference's own float32 run.
#: Another summation order of the same float32 function scatters around the truth by the same
#: law, so over thousands of values the largest errors differ by small factors. Measured with
#: `ONEDNN_MAX_CPU_ISA`/`ATEN_CPU_CAPABILITY` unset (AVX-512) and set to AVX2 on an AMD EPYC:
#: FOMM frames with every speed-up on miss the truth by at most 2.6x the reference loop's max
#: error and 1.4x its mean error; MTCNN landmarks by 1.8x facenet-pytorch's own. 4 leaves room
#: for kernels we have not seen.
MARGIN = 4.0

#: Float64 equality for functions equal in real arithmetic (see the module docstring, point 1).
FLOAT64_EXACT = 1e-12


def as_float64(values) -> np.ndarray:
    """A numpy float64 copy of an array or tensor."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True)
class Rounding:
    """How far a float32 result lies from its float64 truth: largest and mean absolute error."""

    max: float
    mean: float

    def __str__(self) -> str:
        return f"max {self.max:.3e} mean {self.mean:.3e}"


def rounding(float32, truth) -> Rounding:
    """The error of one float32 result against the float64 evaluation of the same function."""
    diff = np.abs(as_float64(float32) - as_float64(truth))
    return Rounding(float(diff.max()), float(diff.mean()))


def reference_rounding(references: Iterable, truth) -> Rounding:
    """The reference's own float32 error: the largest over several float32 runs of it (other
    batch sizes, other summation orders), so that one lucky run does not set the bound."""
    errors = [rounding(r, truth) for r in references]
    return Rounding(max(e.max for e in errors), max(e.mean for e in errors))


def assert_within_rounding(ours, truth, reference: Rounding, margin: float = MARGIN,
                           what: str = "") -> Rounding:
    """Ours misses the float64 truth by at most `margin` times the reference's own float32
    error, in its largest and its mean error. Returns our error, for further checks."""
    error = rounding(ours, truth)
    assert reference.max > 0.0, f"{what}: the reference is exact, so float32 was not tested"
    assert error.max <= margin * reference.max and error.mean <= margin * reference.mean, (
        f"{what}: ours {error}, reference {reference}, margin {margin}")
    return error


def assert_float64_equal(ours, truth, what: str = "") -> None:
    """Equal in real arithmetic, shown in float64: within FLOAT64_EXACT relative to the scale."""
    ours, truth = as_float64(ours), as_float64(truth)
    scale = max(1.0, float(np.abs(truth).max()))
    diff = float(np.abs(ours - truth).max())
    assert diff <= FLOAT64_EXACT * scale, f"{what}: float64 differs by {diff:.3e}"

"""Numeric precisions of FOMM rendering and the CUDA TF32 switch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["PRECISIONS", "tf32_mode"]

#: Autocast dtype per precision ('tf32' and 'fp32' run float32 with/without TF32 math; 'fp64'
#: runs the whole model in float64: slow, for checking equivalence beyond float32 rounding).
PRECISIONS = {"fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16,
              "fp64": None}


@contextmanager
def tf32_mode(enabled: bool) -> Iterator[None]:
    """Allow (or forbid) TF32 in CUDA convolutions and matmuls inside the block; restores the
    previous settings afterwards. PyTorch allows TF32 in cuDNN convolutions by default."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # PyTorch >= 2.9 API
        mode = "tf32" if enabled else "ieee"
        targets = [(conv, "fp32_precision", mode),
                   (torch.backends.cuda.matmul, "fp32_precision", mode)]
    else:
        targets = [(torch.backends.cudnn, "allow_tf32", enabled),
                   (torch.backends.cuda.matmul, "allow_tf32", enabled)]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in targets]
    try:
        for obj, attr, value in targets:
            setattr(obj, attr, value)
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)

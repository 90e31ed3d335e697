"""The float platform: what, besides its inputs and settings, decides the bits of a float32
network's output.

A float32 sum comes out in the order its kernel adds, and the kernels that oneDNN, ATen and
cuDNN pick depend on the processor (its instruction set, its caches), the thread count, the
batch and memory layout, and the library versions. Rounded to uint8, a network's frames then
differ by one level in a few dozen pixels per video. The items such a computation makes carry
this stamp in their content key, so that a key pins its bytes: another kind of machine makes
another item, never other bytes under the same key. Exact computations (integer and
fixed-point image warps, float64 numpy) carry no stamp, and their items are shared by every
machine.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from typing import Any

#: Environment variables that force oneDNN's or ATen's instruction set below the processor's.
ISA_OVERRIDES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
#: A generator's settings that change its float32 kernels, not its function (each is
#: execution-only in the config, so it stays out of the generator's params); a generator
#: with other such settings lists its own in `kernel_options`.
KERNEL_OPTIONS = ("batch_size", "winograd", "channels_last", "fold_bn", "subpixel",
                  "row_split")


@cache
def cpu_model() -> str:
    """The processor's model name, as /proc/cpuinfo or the platform module reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def float_platform(device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """Where float32 results are computed: the library versions and, on the CPU, the
    processor, the instruction set torch dispatches to, any override of it and the threads;
    on CUDA, the GPU model and the CUDA and cuDNN versions."""
    import torch

    stamp: dict[str, Any] = {"torch": torch.__version__}
    if str(device).startswith("cuda"):
        index = torch.device(device).index or 0
        stamp.update(device=torch.cuda.get_device_name(index), cuda=torch.version.cuda,
                     cudnn=torch.backends.cudnn.version())
        return stamp
    stamp.update(
        device="cpu", cpu=cpu_model(), isa=torch.backends.cpu.get_cpu_capability(),
        overrides={k: os.environ[k] for k in ISA_OVERRIDES if os.environ.get(k)},
        threads=int(threads) if threads else torch.get_num_threads())
    return stamp


def generator_numerics(generator) -> dict[str, Any]:
    """What decides a generator's output bytes besides its inputs, name, weights and params:
    nothing for an exact generator, the float platform and the kernel options for one whose
    `float_kernels` is true (a float32 network)."""
    if not getattr(generator, "float_kernels", False):
        return {}
    device = str(getattr(generator, "device", "cpu"))
    names = getattr(generator, "kernel_options", KERNEL_OPTIONS)
    options = {k: getattr(generator, k) for k in names if hasattr(generator, k)}
    return {"platform": float_platform(device, getattr(generator, "threads", None)),
            "kernels": options}

"""One GPU per generator or training job on a workstation: lock-file slots, one per device.

Snakemake's ``--resources gpu=N`` bounds how many GPU jobs run at once but does not say which
device each one gets. A job calls `claim_device`: it takes the first free slot
``{lock_dir}/gpu{i}.lock`` with an exclusive `fcntl.flock` (released by the kernel if the job
dies, so a crash never leaks a GPU) and runs on ``cuda:i``. Under SLURM (or any scheduler that
sets ``CUDA_VISIBLE_DEVICES`` per job) the device is already chosen: ``cuda:0`` of the visible
ones, no lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["DeviceClaim", "claim_device", "cuda_device_count", "device_gpus", "generator_gpus",
           "resolve_device"]

#: Generators that take `device`/`threads` and run on a GPU when one is configured or visible.
GPU_GENERATORS = ("fomm", "tpsmm", "liveportrait")


@dataclass(frozen=True)
class DeviceClaim:
    """The device a job runs on and how it got it."""

    #: torch device string: 'cpu' or 'cuda:N'.
    device: str
    #: What the manifests record: the device plus its name and origin, e.g.
    #: 'cuda:1 (NVIDIA H100, slot 1 of 2)'.
    label: str


def cuda_device_count() -> int:
    """GPUs torch can see (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(requested: str) -> str:
    """The one device resolver of generation and training: 'auto' -> 'cuda' when a GPU is
    visible, else 'cpu'; other values unchanged."""
    if requested == "auto":
        return "cuda" if cuda_device_count() > 0 else "cpu"
    return requested


def device_gpus(requested: str) -> int:
    """GPUs a job on `requested` takes (its rule's ``gpu`` resource): 1 when the device is, or
    resolves to, CUDA, else 0."""
    return 0 if resolve_device(requested) == "cpu" else 1


def generator_gpus(generate: dict) -> int:
    """GPUs one generator job takes (the rule's ``gpu`` resource): 1 when one of its
    generators (`generate.generator`, or those of `generate.generators`) runs on a GPU and the
    device is, or resolves to, CUDA; else 0."""
    names = set(generate.get("generators") or [generate["generator"]])
    if not names & set(GPU_GENERATORS):
        return 0
    return device_gpus(generate["device"])


def _gpu_name(index: int) -> str:
    import torch

    return torch.cuda.get_device_name(index)


def _scheduler_assigned() -> bool:
    """True when a batch scheduler gave this job its own GPUs."""
    return bool(os.environ.get("SLURM_JOB_ID")) and bool(os.environ.get("CUDA_VISIBLE_DEVICES"))


@contextmanager
def gpu_slot(lock_dir: str | Path, n_slots: int, poll_s: float = 0.5,
             timeout_s: float | None = None) -> Iterator[int]:
    """Hold the first free of `n_slots` lock-file slots; yields its index.

    Waits (polling every `poll_s`) while all are taken; raises TimeoutError after
    `timeout_s`. The lock goes with the open file, so it is released on exit or process death.
    """
    if n_slots < 1:
        raise ValueError(f"n_slots must be >= 1, got {n_slots}")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    waited = False
    while True:
        for index in range(n_slots):
            handle = open(lock_dir / f"gpu{index}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                yield index
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"no free GPU slot among {n_slots} in {lock_dir} after "
                               f"{timeout_s:g} s")
        if not waited:
            log.info("all %d GPU slots in %s are busy; waiting", n_slots, lock_dir)
            waited = True
        time.sleep(poll_s)


@contextmanager
def claim_device(requested: str, lock_dir: str | Path, n_gpus: int | None = None
                 ) -> Iterator[DeviceClaim]:
    """The device for one generator or training job, held for the duration of the block.

    `requested`: 'cpu', 'cuda', 'cuda:N' or 'auto'. 'cuda'/'auto' with several GPUs takes a
    free lock-file slot (one job per GPU) unless a scheduler assigned the GPU; 'cuda:N' is
    used as given. `n_gpus` defaults to the GPUs torch sees.
    """
    device = resolve_device(requested)
    if device == "cpu":
        yield DeviceClaim("cpu", "cpu")
        return
    if device.startswith("cuda:"):
        index = int(device.split(":", 1)[1])
        yield DeviceClaim(device, f"{device} ({_gpu_name(index)}, as configured)")
        return
    if device != "cuda":
        raise ValueError(f"device must be cpu, cuda, cuda:N or auto, got {requested!r}")
    if _scheduler_assigned():
        visible = os.environ["CUDA_VISIBLE_DEVICES"]
        yield DeviceClaim("cuda:0", f"cuda:0 ({_gpu_name(0)}, scheduler-assigned "
                                    f"CUDA_VISIBLE_DEVICES={visible})")
        return
    count = cuda_device_count() if n_gpus is None else int(n_gpus)
    if count < 1:
        raise RuntimeError("device 'cuda' requested but no CUDA device is visible; set "
                           "the device to cpu or auto")
    with gpu_slot(lock_dir, count) as index:
        yield DeviceClaim(f"cuda:{index}",
                          f"cuda:{index} ({_gpu_name(index)}, slot {index} of {count})")

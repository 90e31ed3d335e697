"""GPU slot claiming: real lock files held by real processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from dfmnist.gpus import claim_device, generator_gpus, gpu_slot, resolve_device


def _hold_slot(lock_dir: str, n_slots: int, hold_s: float, queue) -> None:
    with gpu_slot(lock_dir, n_slots, poll_s=0.05) as index:
        queue.put((os.getpid(), index, time.monotonic()))
        time.sleep(hold_s)
    queue.put((os.getpid(), "released", time.monotonic()))


def test_concurrent_jobs_get_distinct_slots_and_wait_for_a_free_one(tmp_path: Path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    holders = [ctx.Process(target=_hold_slot, args=(str(tmp_path), 2, 2.0, queue))
               for _ in range(2)]
    for p in holders:
        p.start()
    claimed = [queue.get(timeout=60) for _ in range(2)]
    assert sorted(index for _, index, _ in claimed) == [0, 1]
    # both slots are busy: a third job cannot get one now...
    with pytest.raises(TimeoutError, match="no free GPU slot among 2"):
        with gpu_slot(tmp_path, 2, poll_s=0.05, timeout_s=0.3):
            pass
    # ...and gets one as soon as a holder ends
    with gpu_slot(tmp_path, 2, poll_s=0.05, timeout_s=30) as index:
        got = time.monotonic()
        assert index in (0, 1)
    events = [queue.get(timeout=30) for _ in range(2)]
    first_release = min(t for _, what, t in events if what == "released")
    assert got >= first_release
    for p in holders:
        p.join(timeout=30)
        assert p.exitcode == 0


def test_a_crashed_job_frees_its_slot(tmp_path: Path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    holder = ctx.Process(target=_hold_slot, args=(str(tmp_path), 1, 60.0, queue))
    holder.start()
    queue.get(timeout=60)
    holder.kill()
    holder.join(timeout=30)
    with gpu_slot(tmp_path, 1, poll_s=0.05, timeout_s=10) as index:
        assert index == 0


def test_cpu_claims_and_gpu_resource():
    with claim_device("cpu", "/nonexistent") as claim:
        assert (claim.device, claim.label) == ("cpu", "cpu")
    assert resolve_device("cuda:1") == "cuda:1"
    assert generator_gpus({"generator": "landmark_warp", "device": "cuda"}) == 0
    assert generator_gpus({"generator": "fomm", "device": "cpu"}) == 0
    assert generator_gpus({"generator": "fomm", "device": "cuda"}) == 1
    with pytest.raises(ValueError, match="n_slots"):
        with gpu_slot("/tmp", 0):
            pass
    with pytest.raises(ValueError, match="device must be"):
        with claim_device("tpu", "/tmp"):
            pass

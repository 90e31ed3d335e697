"""Glue shared by the workflow scripts: logging to the rule's log file, detectors, the store."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from dfmnist.storage.store import Store


def setup_logging(log_path: str | None) -> logging.Logger:
    """Log to the rule's log file (and stderr), with timestamps."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return logging.getLogger("dfmnist")


def limit_threads(threads: int) -> None:
    """Keep torch, OpenCV and BLAS within the threads Snakemake gave the job.

    Parallel jobs that each start one thread per core thrash the CPU (MTCNN runs many times
    slower), so every job stays inside its own `threads:` budget.
    """
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    threads = max(1, int(threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    threadpool_limits(limits=threads)


def make_detector(faces: dict):
    from dfmnist.vision.faces import FaceDetector

    return FaceDetector(device=faces["device"], batch_size=faces["batch_size"],
                        min_face_size=faces["min_face_size"],
                        detect_max_side=faces["detect_max_side"])


def build_generator(generate: dict, device: str = "cpu", threads: int | None = None):
    """The configured generator (config `generate` section); `device`/`threads` only reach
    generators that take them (they do not change the output, so not the content keys)."""
    from dfmnist.generators import make_generator
    from dfmnist.gpus import GPU_GENERATORS

    name = generate["generator"]
    options = dict(generate.get(name) or {})
    if name in GPU_GENERATORS:
        options.update(device=device, threads=threads)
    return make_generator(name, **options)


def fakes_generator(fake_manifests: list[str], store: Store, name: str | None = None) -> dict:
    """The generator identity (name, weights sha256, params) recorded with the fakes; `name`
    alone when none of them is a store item (no fakes, or tables written by another tool)."""
    import polars as pl

    tables = [pl.read_parquet(p) for p in fake_manifests]
    keys = [k for t in tables if "key" in t.columns for k in t["key"].drop_nulls()]
    stored = next((k for k in keys if store.has("fake", k)), None)
    if stored is None:
        return {"name": name, "weights_sha256": None, "params": {}}
    return store.meta("fake", stored)["generator"]

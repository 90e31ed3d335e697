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


def build_generator(generate: dict, device: str = "cpu", threads: int | None = None,
                    name: str | None = None):
    """The configured generator `name` (default `generate.generator`; config `generate`
    section); `device`/`threads` only reach generators that take them (they do not change the
    output, so not the content keys)."""
    from dfmnist.generators import make_generator
    from dfmnist.gpus import GPU_GENERATORS

    name = name or generate["generator"]
    options = dict(generate.get(name) or {})
    if name in GPU_GENERATORS:
        options.update(device=device, threads=threads)
    return make_generator(name, **options)


def generator_shares(generate: dict) -> dict[str, float]:
    """Each animation generator's share of the fakes: `generate.generators`, or
    `generate.generator` alone when that is empty."""
    return dict(generate.get("generators") or {generate["generator"]: 1.0})


def build_mix(generate: dict):
    """The plan's `GeneratorMix`: every configured generator's identity and share."""
    from dfmnist.generators.shard import generator_identity
    from dfmnist.plan import GeneratorMix

    shares = generator_shares(generate)
    identities = {n: generator_identity(build_generator(generate, name=n)) for n in shares}
    return GeneratorMix(identities, {n: float(v) for n, v in shares.items()})


def fakes_generators(fake_manifests: list[str], store: Store, names: list[str] | None = None
                     ) -> list[dict]:
    """The identities (name, weights sha256, params) of the generators that made the fakes,
    one per name, as their store items record them; `names` alone (no weights, no params)
    for a generator none of whose fakes is a store item."""
    import polars as pl

    tables = [pl.read_parquet(p) for p in fake_manifests]
    found: dict[str, dict] = {}
    for table in tables:
        if "key" not in table.columns:
            continue
        # one stored fake per generator tells its identity (tables before the generator
        # column: the first stored fake)
        groups = (table.group_by("generator") if "generator" in table.columns
                  else [((None,), table)])
        for (name,), group in groups:
            if name in found:
                continue
            stored = next((k for k in group["key"].drop_nulls() if store.has("fake", k)), None)
            if stored is not None:
                identity = store.meta("fake", stored)["generator"]
                found.setdefault(identity["name"], identity)
    for name in names or []:
        found.setdefault(name, {"name": name, "weights_sha256": None, "params": {}})
    return [found[n] for n in sorted(found)]

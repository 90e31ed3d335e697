"""Running a generator over one shard of the plan, item by item, through the store."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import cv2
import numpy as np
import polars as pl

from dfmnist.numerics import generator_numerics
from dfmnist.storage.store import Store, content_key
from dfmnist.storage.video import LOSSLESS_RGB, read_video, write_video
from dfmnist.vision.faces import FaceTrack

log = logging.getLogger(__name__)

FAKE = "fake"


def generator_identity(generator) -> dict:
    """What of a generator enters every content key."""
    return {"name": generator.name, "weights_sha256": generator.weights_sha256,
            "params": generator.params()}


def item_key(planned: str, numerics: dict) -> str:
    """A fake's store key: the plan's key (inputs and generator identity), and for a generator
    whose float32 kernels decide its bytes, its `generator_numerics` (the machine's float
    platform) too, so that a key pins the bytes wherever the shard runs."""
    return content_key(FAKE, planned, numerics) if numerics else planned


def load_image(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


#: The fakes manifest of a shard: one row per fake in the store.
FAKE_SCHEMA = {
    "candidate_id": pl.String, "action": pl.String, "rank": pl.Int64,
    "source_id": pl.String, "identity": pl.String, "take": pl.String, "key": pl.String,
    "video_path": pl.String, "sha256": pl.String, "computed": pl.Boolean,
    "device": pl.String, "generator": pl.String, "weights_sha256": pl.String,
}
#: The failures manifest of a shard: one row per candidate whose generation raised.
FAILURE_SCHEMA = {
    "candidate_id": pl.String, "action": pl.String, "rank": pl.Int64,
    "source_id": pl.String, "identity": pl.String, "take": pl.String, "key": pl.String,
    "error": pl.String, "device": pl.String,
}


def check_output(frames: np.ndarray, driving_frames: int) -> np.ndarray:
    """A generator's output as promised by `Generator.animate`, or ValueError saying how not."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"generator returned {frames.dtype} frames, not uint8")
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[0] != driving_frames:
        raise ValueError(f"generator returned frames of shape {frames.shape} for "
                         f"{driving_frames} driving frames")
    return frames


def _release_device_memory(exc: BaseException) -> None:
    """After an out-of-memory error on a GPU, give the cache back so the next item can run."""
    if "out of memory" in str(exc).lower():
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def generate_shard(plan: pl.DataFrame, generator, store: Store, device: str = "cpu"
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Animate every candidate of `plan` missing from the store, each with the generator its
    plan row names: `generator` is that generator, or a mapping name -> generator when the
    plan draws from several.

    Returns (fakes, failures): a row per fake in the store, and a row per candidate whose
    generation raised (an odd input, a NaN, a CUDA out-of-memory error), with the error. A
    failed candidate is simply not a fake: the shard's other items are kept, and top-up rounds
    may replace it.
    """
    makers = generator if isinstance(generator, Mapping) else {generator.name: generator}
    numerics_of: dict[str, dict] = {}
    rows, failures = [], []
    total = plan.height
    for i, item in enumerate(plan.iter_rows(named=True), start=1):
        name = item.get("generator") or next(iter(makers))
        generator = makers.get(name)
        if generator is None:
            raise ValueError(f"the plan names generator {name!r}, not one of "
                             f"{', '.join(sorted(makers))}")
        if name not in numerics_of:
            numerics_of[name] = generator_numerics(generator)
            if numerics_of[name]:
                log.info("%s: float platform (part of every key): %s", name, numerics_of[name])
        numerics = numerics_of[name]
        key = item_key(item["key"], numerics)
        ids = {k: item[k] for k in ("candidate_id", "action", "rank", "source_id", "identity",
                                    "take")}
        computed = not store.has(FAKE, key)
        if computed:
            start = time.perf_counter()
            try:
                source = load_image(item["source_image"])
                source_lms = np.asarray(item["source_landmarks"], dtype=float).reshape(5, 2)
                driving = read_video(item["driving_video"])
                track = FaceTrack.from_frame(pl.read_parquet(item["driving_track"]))
                frames = check_output(
                    generator.animate(source, source_lms, driving.frames, track.landmarks),
                    len(driving))
                meta = {"candidate_id": item["candidate_id"], "device": device,
                        "generator": generator_identity(generator), "planned_key": item["key"],
                        "numerics": numerics}
                with store.build(FAKE, key, meta) as tmp:
                    write_video(tmp / "video.mp4", frames, driving.fps, LOSSLESS_RGB)
            except Exception as exc:  # noqa: BLE001  (one item never costs its shard)
                _release_device_memory(exc)
                log.error("[%d/%d] FAILED %s: %s: %s", i, total, item["candidate_id"],
                          type(exc).__name__, exc)
                failures.append({**ids, "key": key, "device": device,
                                 "error": f"{type(exc).__name__}: {exc}"})
                continue
            log.info("[%d/%d] generated %s in %.2fs", i, total, item["candidate_id"],
                     time.perf_counter() - start)
        else:
            log.info("[%d/%d] reused %s", i, total, item["candidate_id"])
        rows.append({
            **ids, "key": key, "video_path": str(store.item_dir(FAKE, key) / "video.mp4"),
            "sha256": store.file_sha256(FAKE, key, "video.mp4"), "computed": computed,
            "device": store.meta(FAKE, key).get("device", device),
            "generator": generator.name, "weights_sha256": generator.weights_sha256,
        })
    return (pl.DataFrame(rows, schema=FAKE_SCHEMA),
            pl.DataFrame(failures, schema=FAILURE_SCHEMA))

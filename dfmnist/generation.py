"""Running a generator over one shard of the plan, item by item, through the store."""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np
import polars as pl

from dfmnist.faces import FaceTrack
from dfmnist.io import LOSSLESS_RGB, read_video, sha256_file, write_video
from dfmnist.store import Store

log = logging.getLogger(__name__)

FAKE = "fake"


def generator_identity(generator) -> dict:
    """What of a generator enters every content key."""
    return {"name": generator.name, "weights_sha256": generator.weights_sha256,
            "params": generator.params()}


def load_image(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def generate_shard(plan: pl.DataFrame, generator, store: Store, device: str = "cpu"
                   ) -> pl.DataFrame:
    """Animate every candidate of `plan` missing from the store; one manifest row per candidate."""
    rows = []
    total = plan.height
    for i, item in enumerate(plan.iter_rows(named=True), start=1):
        key = item["key"]
        computed = not store.has(FAKE, key)
        if computed:
            start = time.perf_counter()
            source = load_image(item["source_image"])
            source_lms = np.asarray(item["source_landmarks"], dtype=float).reshape(5, 2)
            driving = read_video(item["driving_video"])
            track = FaceTrack.from_frame(pl.read_parquet(item["driving_track"]))
            frames = generator.animate(source, source_lms, driving.frames, track.landmarks)
            meta = {"candidate_id": item["candidate_id"], "device": device,
                    "generator": generator_identity(generator)}
            with store.build(FAKE, key, meta) as tmp:
                write_video(tmp / "video.mp4", frames, driving.fps, LOSSLESS_RGB)
            log.info("[%d/%d] generated %s in %.2fs", i, total, item["candidate_id"],
                     time.perf_counter() - start)
        else:
            log.info("[%d/%d] reused %s", i, total, item["candidate_id"])
        video = store.item_dir(FAKE, key) / "video.mp4"
        rows.append({
            "candidate_id": item["candidate_id"], "action": item["action"],
            "rank": item["rank"], "source_id": item["source_id"], "identity": item["identity"],
            "take": item["take"], "key": key, "video_path": str(video),
            "sha256": sha256_file(video), "computed": computed,
            "device": store.meta(FAKE, key).get("device", device),
        })
    return pl.DataFrame(rows, schema={
        "candidate_id": pl.String, "action": pl.String, "rank": pl.Int64,
        "source_id": pl.String, "identity": pl.String, "take": pl.String, "key": pl.String,
        "video_path": pl.String, "sha256": pl.String, "computed": pl.Boolean,
        "device": pl.String,
    })

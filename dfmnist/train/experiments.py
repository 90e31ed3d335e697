"""Training jobs: checkpoints keyed by content, predictions on the test split.

Training sets are named as `dfmnist.train.trainsets` defines.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from dfmnist.gpus import resolve_device
from dfmnist.numerics import float_platform
from dfmnist.storage.store import Store, content_key
from dfmnist.train.data import FrameDataset
from dfmnist.train.loop import Detector, TrainSettings, predict, train_detector
from dfmnist.train.models import MODELS
from dfmnist.train.trainsets import MIXED, TrainSet, parse_trainset

__all__ = ["DETECTOR", "MIXED", "PREDICTION_SCHEMA", "TrainSet", "parse_trainset",
           "run_training_job", "select_training_videos"]

log = logging.getLogger(__name__)

DETECTOR = "detector"


PREDICTION_SCHEMA = {"frame": pl.Int64, "score": pl.Float64, "variant": pl.String,
                     "video_id": pl.String, "label": pl.String, "action": pl.String,
                     "identity": pl.String, "target": pl.Int32, "model": pl.String,
                     "trainset": pl.String}


def select_training_videos(manifest: pl.DataFrame, trainset: TrainSet, seed: int) -> pl.DataFrame:
    """The (video, variant) rows of the training split that `trainset` trains on."""
    train = manifest.filter(pl.col("split") == "train")
    if trainset.variant is not None:
        train = train.filter(pl.col("variant") == trainset.variant)
    reals = train.filter(pl.col("label") == "real").sort("video_id")
    fakes = train.filter(pl.col("label") == "fake").sort("video_id")
    rng = np.random.default_rng(seed)
    if trainset.action is not None:
        fakes = fakes.filter(pl.col("action") == trainset.action)
        reals = _sample(reals, fakes.height, rng)
    elif trainset.n_fakes is not None:
        fakes = _balanced(fakes, trainset.n_fakes, rng)
        reals = _sample(reals, trainset.n_fakes, rng)
    return pl.concat([reals, fakes]).sort(["variant", "video_id"])


def _sample(table: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    if n >= table.height:
        return table
    rows = np.sort(rng.choice(table.height, size=n, replace=False))
    return table[rows.tolist()]


def _balanced(fakes: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """n fakes with the actions as equal as the data allows (round robin over shuffled actions)."""
    groups = {a[0]: g.sort("video_id") for a, g in fakes.group_by("action")}
    order = {a: rng.permutation(g.height).tolist() for a, g in groups.items()}
    picked: dict[str, list[int]] = {a: [] for a in groups}
    actions = sorted(groups)
    while sum(map(len, picked.values())) < min(n, fakes.height):
        for a in actions:
            if order[a] and sum(map(len, picked.values())) < n:
                picked[a].append(order[a].pop())
    parts = [groups[a][sorted(rows)] for a, rows in picked.items() if rows]
    return pl.concat(parts) if parts else fakes.head(0)


class MixedQuality(Dataset):
    """The same frames in several variants; each read returns one variant drawn at random."""

    def __init__(self, datasets: list[FrameDataset], seed: int) -> None:
        # item i must be the same frame of the same video in every variant
        layouts = [[(d.videos["video_id"][v], ref.index) for ref, _, v in d.items]
                   for d in datasets]
        if any(layout != layouts[0] for layout in layouts[1:]):
            raise ValueError("the variants do not hold the same frames of the same videos")
        self.datasets = datasets
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.datasets[0])

    def __getitem__(self, index: int):
        return self.datasets[int(self.rng.integers(len(self.datasets)))][index]


def frame_size(model: str, sizes: list[int], input_size: int | None = None) -> int:
    """The extracted frame size to read for `model` (at `input_size`, else its own): that size,
    else the nearest larger one."""
    want = input_size or MODELS[model].input_size
    if want in sizes:
        return want
    larger = [s for s in sizes if s >= want]
    return min(larger) if larger else max(sizes)


def _resize_to(size: int):
    def transform(image: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] == size:
            return image
        return F.interpolate(image[None], size=(size, size), mode="bilinear",
                             antialias=True, align_corners=False)[0]
    return transform


def frame_dataset(table: pl.DataFrame, model: str, sizes: list[int], root: Path,
                  input_size: int | None = None) -> FrameDataset:
    side = input_size or MODELS[model].input_size
    return FrameDataset(table, size=frame_size(model, sizes, side), root=root,
                        transform=_resize_to(side))


def _video_identity(table: pl.DataFrame) -> list[list]:
    """What a checkpoint depends on in a set of videos: each one's bytes, frames and label
    (`frames_prefix` is the key of the video's own frames; its shard's tar path changes with
    the shard's other videos)."""
    return (table.select("variant", "video_id", "sha256", "frames_prefix", "target")
            .sort(["variant", "video_id"]).rows())


def checkpoint_key(model: str, trainset: str, train: pl.DataFrame, val: pl.DataFrame,
                   settings: TrainSettings, size: int, pretrained_sha: str | None,
                   numerics: dict) -> str:
    """Content key of a trained detector: unchanged data and settings give the same key on
    the same float platform (`numerics`: float32 training's bits depend on the threads and
    the instruction set, dfmnist.numerics)."""
    return content_key(DETECTOR, model, trainset, settings.key_parts(), size, pretrained_sha,
                       _video_identity(train), _video_identity(val), numerics)


def run_training_job(manifest: pl.DataFrame, model: str, spec: str, settings: TrainSettings,
                     store: Store, root: str | Path = ".", sizes: list[int] | None = None,
                     device: str = "cpu", pretrained: str | None = None,
                     eval_batch: int = 64) -> tuple[pl.DataFrame, list[dict], dict]:
    """Train (or reuse the stored checkpoint of) `model` on `spec`, predict the test split.

    Returns per-frame test predictions for every variant, the training history and the run
    record (checkpoint key, reused or not, counts, pretrained weights or none).
    """
    from dfmnist.storage.files import sha256_file

    root = Path(root)
    variants = sorted(manifest["variant"].unique())
    trainset = parse_trainset(spec, variants)
    side = settings.extra.get("input_size") or MODELS[model].input_size
    sizes = sizes or [side]
    size = frame_size(model, sizes, side)
    train_rows = select_training_videos(manifest, trainset, settings.seed)
    val_rows = manifest.filter(pl.col("split") == "val")
    if trainset.variant is not None:
        val_rows = val_rows.filter(pl.col("variant") == trainset.variant)
    if trainset.action is not None and train_rows.filter(pl.col("label") == "fake").height == 0:
        # an action absent from the training split (small datasets): an empty, explained result
        log.warning("training set %s: no training fakes of %s, skipped", spec, trainset.action)
        record = {"model": model, "trainset": spec, "pretrained": None, "reused": False,
                  "skipped": f"no training fakes of {trainset.action}"}
        return pl.DataFrame(schema=PREDICTION_SCHEMA), [], record
    if train_rows.height == 0:
        raise ValueError(f"training set {spec!r} has no videos")
    pretrained_sha = sha256_file(pretrained) if pretrained else None
    dev = torch.device(resolve_device(device))
    key = checkpoint_key(model, spec, train_rows, val_rows, settings, size, pretrained_sha,
                         float_platform(str(dev)))
    if store.has(DETECTOR, key):
        item = store.item_dir(DETECTOR, key)
        net = Detector(model, side)
        net.load_state_dict(torch.load(item / "model.pt", map_location="cpu", weights_only=True))
        history = json.loads((item / "history.json").read_text())
        record = {**store.meta(DETECTOR, key)["record"], "reused": True}
        log.info("reusing checkpoint %s for %s on %s", key[:12], model, spec)
    else:
        if trainset.variant is None:
            per_variant = [frame_dataset(train_rows.filter(pl.col("variant") == v), model,
                                         sizes, root, side) for v in variants]
            train_ds: Dataset = MixedQuality(per_variant, settings.seed)
        else:
            train_ds = frame_dataset(train_rows, model, sizes, root, side)
        val_ds = frame_dataset(val_rows, model, sizes, root, side)
        log.info("training %s on %s: %d train frames (%d videos), %d val frames", model, spec,
                 len(train_ds), train_rows.height, len(val_ds))
        net, history, record = train_detector(model, train_ds, val_ds, settings, device,
                                              pretrained)
        record.update(key=key, trainset=spec, frame_size=size,
                      train_videos=train_rows.select("video_id").n_unique(),
                      train_reals=train_rows.filter(pl.col("label") == "real")
                      .select("video_id").n_unique(),
                      train_fakes=train_rows.filter(pl.col("label") == "fake")
                      .select("video_id").n_unique(),
                      val_videos=val_rows.height, train_frames=len(train_ds))
        with store.build(DETECTOR, key, {"record": record}) as tmp:
            torch.save(net.state_dict(), tmp / "model.pt")
            (tmp / "history.json").write_text(json.dumps(history, indent=1))
        record = {**record, "reused": False}
    test_rows = manifest.filter(pl.col("split") == "test")
    test_ds = frame_dataset(test_rows, model, sizes, root, side)
    scores = predict(net, test_ds, eval_batch, dev)
    predictions = frame_table(test_ds, scores).with_columns(
        pl.lit(model).alias("model"), pl.lit(spec).alias("trainset"),
    ).select([pl.col(c).cast(t) for c, t in PREDICTION_SCHEMA.items()])
    return predictions, history, record


def load_detector(store: Store, record: dict) -> Detector:
    """The trained detector of a training job's run record (its stored checkpoint)."""
    net = Detector(record["model"], record.get("input_size"))
    net.load_state_dict(torch.load(store.item_dir(DETECTOR, record["key"]) / "model.pt",
                                   map_location="cpu", weights_only=True))
    return net.eval()


def frame_table(dataset: FrameDataset, scores: np.ndarray) -> pl.DataFrame:
    """One row per predicted frame with its video's variant, label, action and identity."""
    videos = dataset.videos.with_row_index("video_index")
    frames = pl.DataFrame({
        "video_index": [v for _, _, v in dataset.items],
        "frame": [ref.index for ref, _, _ in dataset.items],
        "score": np.asarray(scores, float),
    }, schema={"video_index": pl.UInt32, "frame": pl.Int64, "score": pl.Float64})
    return frames.join(videos.select("video_index", "variant", "video_id", "label", "action",
                                     "identity", "target"), on="video_index").drop("video_index")


def write_job_outputs(output, predictions: pl.DataFrame, history: list[dict] | dict,
                      record: dict) -> None:
    """A training job's three files, each written atomically: `output.predictions` (parquet),
    `output.history` (csv) and `output.run` (the run record, JSON)."""
    import json

    from dfmnist.storage.files import atomic_path

    with atomic_path(output.predictions) as tmp:
        predictions.write_parquet(tmp)
    with atomic_path(output.history) as tmp:
        pl.DataFrame(history).write_csv(tmp)
    with atomic_path(output.run) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))

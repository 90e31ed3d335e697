"""Model attribution: which generator model made a fake, as a classification over the fakes.

Labels are the dataset's `model` column (fakes only; reals are not a class). One training job
per (method, compression variant): `dmasta` classifies a clip of a video's extracted frames
(dfmnist.train.dmasta), `frame_baseline` classifies single frames with the plain ResNet and a
video's class is the most probable after averaging its frames' class probabilities. Both
train with the project's loop (dfmnist.train.loop.fit, best epoch on the validation split) and
are tested per video on the test split, with `train.attribution.recipe`'s optimiser and inputs:
`dfmnist` (Adam, poly decay, ImageNet normalisation) or `authors` (DMA-STA's release:
dfmnist.train.dfdm_recipe).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch.utils.data import Dataset

from dfmnist.gpus import resolve_device
from dfmnist.numerics import float_platform
from dfmnist.storage.files import sha256_file
from dfmnist.storage.store import Store, content_key
from dfmnist.train.data import FrameDataset
from dfmnist.train.dfdm_recipe import (
    DFDM_MEAN,
    DFDM_STD,
    RECIPE_NOTES,
    WEIGHT_DECAY,
    authors_frames,
    authors_lr,
    authors_optimizer,
)
from dfmnist.train.dmasta import DMASTA, FrameClassifier
from dfmnist.train.experiments import frame_dataset
from dfmnist.train.loop import TrainSettings, fit, predict

log = logging.getLogger(__name__)

ATTRIBUTION = "attribution"  # the store kind of trained attribution models
MODEL_COLUMN = "model"
PREDICTION_SCHEMA = {"variant": pl.String, "video_id": pl.String, "identity": pl.String,
                     "method": pl.String, "true": pl.String, "predicted": pl.String,
                     "probs": pl.List(pl.Float64)}


class AttributionDataError(ValueError):
    """The dataset cannot be used for attribution (one line for the user)."""


def attribution_classes(manifest: pl.DataFrame) -> list[str]:
    """The classes: the distinct `model` values of the fakes, sorted."""
    if MODEL_COLUMN not in manifest.columns:
        raise AttributionDataError(
            "dataset.parquet has no `model` column: attribution needs the generator model of "
            "each fake (rebuild the dataset with a version that writes it)")
    fakes = manifest.filter(pl.col("label") == "fake")
    if fakes[MODEL_COLUMN].null_count():
        raise AttributionDataError(f"{fakes[MODEL_COLUMN].null_count()} fakes in dataset.parquet "
                                   "have no `model` value")
    classes = sorted(fakes[MODEL_COLUMN].unique().to_list())
    if len(classes) < 2:
        raise AttributionDataError(f"attribution needs fakes of at least two models; the dataset's "
                                   f"fakes are all {classes[0] if classes else 'absent'}")
    return classes


def labelled_fakes(manifest: pl.DataFrame, classes: list[str], variant: str) -> pl.DataFrame:
    """The fakes of one variant, `target` set to their class index."""
    index = {name: i for i, name in enumerate(classes)}
    return (manifest.filter((pl.col("label") == "fake") & (pl.col("variant") == variant))
            .with_columns(pl.col(MODEL_COLUMN).replace_strict(index, return_dtype=pl.Int64)
                          .alias("target")))


def long_enough(table: pl.DataFrame, clip_length: int) -> pl.DataFrame:
    """The videos with at least `clip_length` extracted frames (both methods test on these)."""
    return table.filter(pl.col("frame_indices").list.len() >= clip_length)


class ClipDataset(Dataset):
    """One item per video: `clip_length` consecutive extracted frames (T, 3, S, S), its class
    and its index in `frames.videos`. Training clips start at a random frame (seeded), test
    clips are the video's middle ones. With `flip` a clip is mirrored left-right with
    probability 1/2, all its frames alike (the authors' recipe, in training)."""

    def __init__(self, frames: FrameDataset, clip_length: int, random_start: bool = False,
                 seed: int = 0, flip: bool = False) -> None:
        per_video: dict[int, list[tuple[int, int]]] = {}
        for item, (ref, _, video) in enumerate(frames.items):
            per_video.setdefault(video, []).append((ref.index, item))
        self.frames, self.clip_length = frames, int(clip_length)
        self.clips = [(video, [item for _, item in sorted(refs)])
                      for video, refs in sorted(per_video.items()) if len(refs) >= clip_length]
        self.random_start, self.flip = random_start, flip
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        video, items = self.clips[index]
        spare = len(items) - self.clip_length
        start = int(self.rng.integers(spare + 1)) if self.random_start else spare // 2
        chosen = items[start:start + self.clip_length]
        target = self.frames.items[chosen[0]][1]
        clip = torch.stack([self.frames[i][0] for i in chosen])
        # drawn only with `flip`, so the other recipe's clip starts stay as they were
        if self.flip and self.rng.random() < 0.5:
            clip = clip.flip(-1)
        return clip, target, video


def attribution_settings(section: dict) -> TrainSettings:
    """The TrainSettings of an attribution job from the merged `train` section."""
    att = section["attribution"]
    extra = {"backbone": att["backbone"], "clip_length": int(att["clip_length"]),
             "input_size": int(att["input_size"])}
    lr, weight_decay = float(att["lr"]), float(att["weight_decay"])
    if att["recipe"] == "authors":
        # the release's rate and decay stand in the settings (and so in the store key and the
        # record) instead of the Adam ones it does not use
        lr, weight_decay = authors_lr(1), WEIGHT_DECAY
        # named only here, so the `dfmnist` recipe's stored models keep their keys
        extra["recipe"] = "authors"
    return TrainSettings(
        epochs=int(att["epochs"]), batch_size=int(att["batch_size"]), lr=lr,
        betas=tuple(float(b) for b in section["betas"]),
        poly_power=float(section["poly_power"]), weight_decay=weight_decay,
        seed=int(section["seed"]), extra=extra)


def attribution_recipe(settings: TrainSettings) -> str:
    """`dfmnist` or `authors` (train.attribution.recipe)."""
    return settings.extra.get("recipe", "dfmnist")


def build_attribution_model(method: str, classes: int, settings: TrainSettings) -> torch.nn.Module:
    backbone = settings.extra["backbone"]
    # the authors normalise with DFDM's frame statistics (dfmnist.train.dfdm_recipe)
    norm = ({"mean": DFDM_MEAN, "std": DFDM_STD}
            if attribution_recipe(settings) == "authors" else {})
    if method == "dmasta":
        return DMASTA(classes, settings.extra["clip_length"], backbone, **norm)
    if method == "frame_baseline":
        return FrameClassifier(classes, backbone, **norm)
    raise ValueError(f"unknown attribution method {method!r}")


def attribution_datasets(method: str, table: pl.DataFrame, settings: TrainSettings,
                         sizes: list[int], root: Path, train: bool) -> Dataset:
    """`method`'s items of `table`: clips (dmasta) or frames (frame_baseline), as the recipe
    prepares them for training (`train`) or for validation and test."""
    side = settings.extra["input_size"]
    authors = attribution_recipe(settings) == "authors"
    if authors:  # resize, centre crop, flips in training (a clip's frames flip together)
        frames = authors_frames(table, sizes, root, side,
                                flip=train and method == "frame_baseline", seed=settings.seed)
    else:
        frames = frame_dataset(table, "resnet50", sizes, root, side)
    if method == "frame_baseline":
        return frames
    return ClipDataset(frames, settings.extra["clip_length"], random_start=train,
                       seed=settings.seed, flip=train and authors)


def _identity(table: pl.DataFrame) -> list[list]:
    # frames_prefix keys the video's own frames (its shard tar changes with other videos)
    return (table.select("variant", "video_id", "sha256", "frames_prefix", MODEL_COLUMN)
            .sort(["variant", "video_id"]).rows())


def run_attribution_job(manifest: pl.DataFrame, method: str, variant: str,
                        settings: TrainSettings, store: Store, root: str | Path = ".",
                        sizes: list[int] | None = None, device: str = "cpu",
                        pretrained: str | None = None) -> tuple[pl.DataFrame, list[dict], dict]:
    """Train (or reuse the stored model of) `method` on `variant`'s training fakes, classify
    its test fakes. Returns one prediction row per test video, the history and a run record."""
    root = Path(root)
    classes = attribution_classes(manifest)
    clip = settings.extra["clip_length"]
    rows = long_enough(labelled_fakes(manifest, classes, variant), clip)
    short = labelled_fakes(manifest, classes, variant).height - rows.height
    split = {s: rows.filter(pl.col("split") == s) for s in ("train", "val", "test")}
    if split["train"].height == 0:
        raise AttributionDataError(f"variant {variant}: no training fakes with at least {clip} "
                                   "extracted frames (lower train.attribution.clip_length or "
                                   "raise targets.frames.count)")
    side = settings.extra["input_size"]
    sizes = sizes or [side]
    recipe = attribution_recipe(settings)
    pretrained_sha = sha256_file(pretrained) if pretrained else None
    dev = torch.device(resolve_device(device))
    # float32 training's bits depend on the float platform (dfmnist.numerics): part of the key
    key = content_key(ATTRIBUTION, method, variant, classes, settings.key_parts(), sizes,
                      pretrained_sha, _identity(split["train"]), _identity(split["val"]),
                      float_platform(str(dev)))
    torch.manual_seed(settings.seed)
    model = build_attribution_model(method, len(classes), settings)
    # the baseline sees as many frames per step as DMA-STA (batch_size clips of clip_length)
    run = (dataclasses.replace(settings, batch_size=settings.batch_size * clip)
           if method == "frame_baseline" else settings)
    if store.has(ATTRIBUTION, key):
        item = store.item_dir(ATTRIBUTION, key)
        model.load_state_dict(torch.load(item / "model.pt", map_location="cpu",
                                         weights_only=True))
        history = json.loads((item / "history.json").read_text())
        record = {**store.meta(ATTRIBUTION, key)["record"], "reused": True}
        log.info("reusing attribution model %s for %s on %s", key[:12], method, variant)
    else:
        record = {"method": method, "variant": variant, "classes": classes, "key": key,
                  "backbone": settings.extra["backbone"], "clip_length": clip,
                  "input_size": side, "recipe": recipe, "device": str(dev), "pretrained": None,
                  "train_videos": split["train"].height, "val_videos": split["val"].height,
                  "test_videos": split["test"].height, "short_videos": short}
        if pretrained:
            state = torch.load(pretrained, map_location="cpu", weights_only=True)
            model.load_imagenet(state.get("state_dict", state))
            record["pretrained"] = {"path": str(pretrained), "sha256": pretrained_sha}
        model.to(dev)
        train = attribution_datasets(method, split["train"], settings, sizes, root, train=True)
        val = attribution_datasets(method, split["val"], settings, sizes, root, train=False)
        log.info("%s on %s: %d training items (%d videos, %d classes), %d validation items",
                 method, variant, len(train), split["train"].height, len(classes), len(val))
        history, best = fit(model, "ce", train, val, run, dev, method,
                            epoch_optimizer=authors_optimizer if recipe == "authors" else None)
        record.update(best_epoch=best, epochs=settings.epochs)
        with store.build(ATTRIBUTION, key, {"record": record}) as tmp:
            torch.save(model.state_dict(), tmp / "model.pt")
            (tmp / "history.json").write_text(json.dumps(history, indent=1))
        record = {**record, "reused": False}
    test = attribution_datasets(method, split["test"], settings, sizes, root, train=False)
    probs = predict(model, test, run.batch_size, dev, loss_kind="ce")
    return video_predictions(test, probs, classes, method), history, record


def video_predictions(dataset: Dataset, probs: np.ndarray, classes: list[str],
                      method: str) -> pl.DataFrame:
    """One row per video: the mean class probabilities of its items and the most probable."""
    frames = dataset.frames if isinstance(dataset, ClipDataset) else dataset
    videos = ([v for v, _ in dataset.clips] if isinstance(dataset, ClipDataset)
              else [v for _, _, v in dataset.items])
    rows = []
    probs = np.asarray(probs, float).reshape(len(videos), len(classes))
    for v in sorted(set(videos)):
        mean = probs[np.asarray(videos) == v].mean(axis=0)
        row = frames.videos.row(v, named=True)
        rows.append({"variant": row["variant"], "video_id": row["video_id"],
                     "identity": row["identity"], "method": method,
                     "true": row[MODEL_COLUMN], "predicted": classes[int(np.argmax(mean))],
                     "probs": mean.tolist()})
    return pl.DataFrame(rows, schema=PREDICTION_SCHEMA)


# --- the table and the confusion matrices ------------------------------------------------------

#: DFDM's published figure, shared/seeds/dfdm-model-attribution-readme.txt: DMA-STA "achieved an
#: overall accuracy of ~70% in identifying the higher-quality Deepfakes in DFDM dataset"; the
#: readme's higher-quality videos are DFDM_crf10 (H.264 crf 10), five classes (the autoencoders).
PUBLISHED = {"method": "dmasta", "crf": 10, "accuracy": 70.0, "classes": 5}


def confusion_matrix(preds: pl.DataFrame, classes: list[str]) -> np.ndarray:
    """Counts (true class x predicted class) of the per-video predictions, in `classes` order."""
    index = {name: i for i, name in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for true, predicted in preds.select("true", "predicted").iter_rows():
        matrix[index[true], index[predicted]] += 1
    return matrix


def accuracy_table(preds: pl.DataFrame, methods: list[str], variants: list[str],
                   crfs: dict[str, int], classes: list[str]) -> pl.DataFrame:
    """Video accuracy (%) per variant and method, beside chance and DFDM's published figure."""
    rows = []
    for v in variants:
        for m in methods:
            cell = preds.filter((pl.col("variant") == v) & (pl.col("method") == m))
            correct = int((cell["true"] == cell["predicted"]).sum())
            published = (PUBLISHED["accuracy"] if m == PUBLISHED["method"]
                         and crfs.get(v) == PUBLISHED["crf"] else None)
            rows.append({"variant": v, "crf": crfs.get(v), "method": m,
                         "video_acc": 100 * correct / cell.height if cell.height else None,
                         "correct": correct, "test_videos": cell.height,
                         "chance_acc": 100 / len(classes), "published_acc": published})
    return pl.DataFrame(rows, schema={
        "variant": pl.String, "crf": pl.Int64, "method": pl.String, "video_acc": pl.Float64,
        "correct": pl.Int64, "test_videos": pl.Int64, "chance_acc": pl.Float64,
        "published_acc": pl.Float64})


def confusion_plot(preds: pl.DataFrame, classes: list[str], methods: list[str],
                   variants: list[str], path: str | Path) -> None:
    """One confusion matrix (counts, rows true, columns predicted) per method and variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    side = 1.2 + 0.45 * len(classes)
    fig, axes = plt.subplots(len(methods), len(variants), squeeze=False,
                             figsize=(side * len(variants) + 1, side * len(methods) + 0.6),
                             constrained_layout=True)
    for i, m in enumerate(methods):
        for j, v in enumerate(variants):
            ax = axes[i][j]
            matrix = confusion_matrix(preds.filter((pl.col("variant") == v)
                                                   & (pl.col("method") == m)), classes)
            ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(1, int(matrix.max())))
            for (r, c), count in np.ndenumerate(matrix):
                ax.text(c, r, str(count), ha="center", va="center", fontsize=7,
                        color="white" if count > matrix.max() / 2 else "black")
            ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=6)
            ax.set_yticks(range(len(classes)), classes, fontsize=6)
            ax.set_title(f"{m} / {v}", fontsize=8)
            if j == 0:
                ax.set_ylabel("true model", fontsize=7)
            if i == len(methods) - 1:
                ax.set_xlabel("predicted model", fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def attribution_notes(runs: list[dict], demo: bool) -> list[str]:
    """What a reader needs to judge the table: classes, data, recipe, weights, the source."""
    first = runs[0]
    lines = [
        f"classes (the dataset's `model` of each fake, reals excluded): "
        f"{', '.join(first['classes'])}; `video_acc`: share of test videos whose most probable "
        "class is their model; `chance_acc`: one class at random",
        f"`dmasta`: DMA-STA (Jia, Li, Lyu, ICIP 2022) on {first['clip_length']}-frame clips of "
        "the extracted frames (the middle ones at test); `frame_baseline`: the same ResNet "
        "without attention, per frame, a video's class from its frames' mean probabilities",
        f"frame encoder {first['backbone']} at {first['input_size']}x{first['input_size']} "
        "(DMA-STA: ResNet-50 at 224x224); the best epoch on the validation split",
        # which recipe trained the models (records written before the option: `dfmnist`)
        *(RECIPE_NOTES[r] for r in sorted({run.get("recipe", "dfmnist") for run in runs})),
        f"`published_acc`: DFDM's readme, DMA-STA ~{PUBLISHED['accuracy']:.0f}% overall on the "
        f"higher-quality videos (crf {PUBLISHED['crf']}, {PUBLISHED['classes']} autoencoder "
        "models); it names no figure for the other qualities or for a frame-level baseline",
    ]
    scratch = sorted({r["method"] for r in runs if not r.get("pretrained")})
    if scratch:
        lines.append(f"trained from scratch, without ImageNet weights: {', '.join(scratch)} "
                     "(DMA-STA starts from ImageNet)")
    lines.append("training / validation / test videos per variant: " + ", ".join(
        sorted({f"{r['variant']} {r['train_videos']}/{r['val_videos']}/{r['test_videos']}"
                for r in runs})))
    short = sorted({(r["variant"], r["short_videos"]) for r in runs if r.get("short_videos")})
    if short:
        lines.append("fakes left out for having fewer extracted frames than a clip: " + ", ".join(
            f"{v} {n}" for v, n in short))
    if demo:
        lines.append("**demo data**: a few built-in photos; with this few videos the numbers are "
                     "noise and say nothing about attribution on DFDM")
    return lines


def write_attribution(prediction_files: list[str], run_files: list[str], methods: list[str],
                      variants: list[str], crfs: dict[str, int], demo: bool,
                      csv: str | Path, md: str | Path, png: str | Path) -> pl.DataFrame:
    """The accuracy table (CSV, markdown with notes) and the confusion matrices (PNG)."""
    from dfmnist.storage.files import atomic_path
    from dfmnist.train.tables import markdown

    preds = pl.concat([pl.read_parquet(p) for p in prediction_files], how="vertical_relaxed")
    runs = [json.loads(Path(p).read_text()) for p in run_files]
    classes = runs[0]["classes"]
    table = accuracy_table(preds, methods, variants, crfs, classes)
    with atomic_path(csv) as tmp:
        table.write_csv(tmp)
    with atomic_path(md) as tmp:
        tmp.write_text(markdown(table, "Model attribution: video accuracy per variant and method",
                                attribution_notes(runs, demo)))
    with atomic_path(png) as tmp:
        confusion_plot(preds, classes, methods, variants, tmp)
    return table

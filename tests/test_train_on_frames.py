"""Training detectors on real face frames (two photos, a talking-head clip) and warped fakes of
them: a short training lowers the loss, checkpoints are keyed by the training data, mixed
quality draws every variant."""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import torch

from dfmnist.storage.store import Store
from dfmnist.storage.video import read_video
from dfmnist.targets.frames import FRAMES_TAR, write_frame_tar
from dfmnist.train.data import FrameDataset
from dfmnist.train.experiments import MixedQuality, run_training_job
from dfmnist.train.loop import Detector, TrainSettings, detector_loss, train_detector
from dfmnist.vision.tps import border_anchors, warp_image


@pytest.fixture(scope="module")
def real_frames(tmp_path_factory, astronaut, grace_hopper,
                carphone_path) -> tuple[Path, pl.DataFrame]:
    """Real face frames (two photos, a frame of a real talking-head clip) and fakes made from
    them as the demo generator does (thin-plate-spline warp, which also smooths the image),
    written as the store writes a shard (one frames tar) where a frame manifest points
    FrameDataset."""
    root = tmp_path_factory.mktemp("frames")
    clip = read_video(carphone_path).frames
    sources = {"astronaut": astronaut[:300, 100:400], "grace_hopper": grace_hopper[:512],
               "carphone": clip[60][:, 16:160]}
    rng = np.random.default_rng(0)
    anchors = border_anchors(256, 256)
    rows, samples = [], {}
    for identity, image in sources.items():
        for label in ("real", "fake"):
            prefix = f"{identity}_{label}"
            frames = []
            for index in (0, 1):
                frame = np.roll(cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA),
                                8 * index, axis=1)
                if label == "fake":
                    inner = rng.uniform(80, 176, (6, 2))
                    moved = inner + rng.normal(0, 8, inner.shape)
                    frame = warp_image(frame, np.vstack([anchors, moved]),
                                       np.vstack([anchors, inner]))
                    frame = cv2.GaussianBlur(frame, (0, 0), 1.5)
                frames.append(frame)
            samples[prefix] = (np.stack(frames), [0, 1])
            rows.append({"video_id": f"{label}/{identity}", "variant": "raw", "label": label,
                         "target": int(label == "real"), "identity": identity,
                         "action": None if label == "real" else "yaw",
                         "split": "val" if identity == "carphone" else "train",
                         "frames_tar": FRAMES_TAR, "frames_prefix": prefix,
                         "frame_indices": [0, 1],
                         "sha256": f"{identity}{label}"})
    write_frame_tar(root / FRAMES_TAR, samples, [256])
    return root, pl.DataFrame(rows)


def _training_loss(model: torch.nn.Module, dataset: FrameDataset) -> float:
    """The loss the optimiser minimises (train mode: batch statistics, dropout) on the whole
    set, averaged over fixed dropout draws so that two models are compared on equal terms."""
    model = copy.deepcopy(model).train()
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    targets = torch.tensor([dataset[i][1] for i in range(len(dataset))], dtype=torch.float32)
    torch.manual_seed(123)
    with torch.no_grad():
        return float(np.mean([detector_loss("mse", model(images), targets).item()
                              for _ in range(4)]))


def test_a_short_training_on_real_frames_lowers_the_loss(real_frames):
    root, manifest = real_frames
    train = FrameDataset(manifest, split="train", size=256, root=root)
    val = FrameDataset(manifest, split="val", size=256, root=root)
    assert len(train) == 8 and len(val) == 4
    settings = TrainSettings(epochs=6, batch_size=4, lr=1e-3, seed=0)
    torch.manual_seed(settings.seed)
    loss_before = _training_loss(Detector("mesoinception4"), train)
    model, history, record = train_detector("mesoinception4", train, val, settings)
    loss_after = _training_loss(model, train)
    assert loss_after < 0.8 * loss_before
    assert [h["epoch"] for h in history] == list(range(1, 7))
    # the kept epoch is the one with the best validation accuracy (ties: lower loss)
    best = max(h["val_acc"] for h in history)
    assert history[record["best_epoch"] - 1]["val_acc"] == best
    assert history[-1]["lr"] < history[0]["lr"] < settings.lr
    assert record["pretrained"] is None


def test_checkpoints_are_keyed_by_the_training_data(real_frames, tmp_path):
    root, manifest = real_frames
    manifest = pl.concat([manifest, manifest.filter(pl.col("identity") == "carphone")
                          .with_columns(pl.lit("test").alias("split"))])
    store = Store(tmp_path / "store")
    settings = TrainSettings(epochs=1, batch_size=4, seed=0)
    preds, _, first = run_training_job(manifest, "mesoinception4", "raw", settings, store, root,
                                       sizes=[256])
    assert not first["reused"] and first["train_videos"] == 4
    again, _, second = run_training_job(manifest, "mesoinception4", "raw", settings, store, root,
                                        sizes=[256])
    assert second["reused"] and second["key"] == first["key"]
    assert again["score"].to_list() == preds["score"].to_list()
    # test predictions cover every test frame of every variant, with labels
    assert preds.height == 4 and set(preds["label"]) == {"real", "fake"}
    # different training content: a new checkpoint
    changed = manifest.with_columns(
        pl.when(pl.col("video_id") == "fake/astronaut").then(pl.lit("changed"))
        .otherwise(pl.col("sha256")).alias("sha256"))
    _, _, third = run_training_job(changed, "mesoinception4", "raw", settings, store, root,
                                   sizes=[256])
    assert not third["reused"] and third["key"] != first["key"]
    assert len(store.keys("detector")) == 2


def test_mixed_quality_draws_every_variant(real_frames):
    root, manifest = real_frames
    train = manifest.filter(pl.col("split") == "train")
    ds = [FrameDataset(train, size=256, root=root) for _ in range(2)]
    ds[1].items = [(p, 1 - t, v) for p, t, v in ds[1].items]  # mark the second "variant"
    mixed = MixedQuality(ds, seed=0)
    targets = {mixed[0][1] for _ in range(40)}
    assert targets == {0, 1} and len(mixed) == len(ds[0])
    with pytest.raises(ValueError, match="same frames"):
        MixedQuality([ds[0], FrameDataset(train.head(2), size=256, root=root)], seed=0)

"""Model attribution: DMA-STA's shapes and attention, training on real frames, the table and
confusion matrices, and the `attribution` target run by Snakemake on a dataset of real frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import torch
import yaml

from dfmnist.storage.store import Store
from dfmnist.storage.video import read_video
from dfmnist.targets.frames import write_frame_tar
from dfmnist.train import train_config
from dfmnist.train.attribution import (
    ClipDataset,
    accuracy_table,
    attribution_classes,
    attribution_settings,
    confusion_matrix,
    confusion_plot,
    labelled_fakes,
    run_attribution_job,
)
from dfmnist.train.dmasta import DMASTA, FrameClassifier, SpatialAttention
from dfmnist.train.experiments import frame_dataset
from dfmnist.train.loop import fit

from numerics import assert_float64_equal

#: One torch thread: on a shared 2-core machine a second one makes each step slower.
pytestmark = pytest.mark.usefixtures("one_torch_thread")
SIDE = 64
#: Three stand-ins for generator models, each leaving its own trace on the same real frames.
TRACES = {
    "faceswap": lambda f: cv2.GaussianBlur(f, (0, 0), 1.5),
    "fomm": lambda f: f,
    "dfaker": lambda f: np.clip(f.astype(int) + [40, 0, -20], 0, 255).astype(np.uint8),
}


def _sources(carphone_path, astronaut, grace_hopper) -> list[np.ndarray]:
    """Six real 'videos' of six frames: four stretches of a talking-head clip, two photos
    drifting a few pixels per frame."""
    clip = read_video(carphone_path).frames[:, :, 16:160]  # 144x144 around the face
    videos = [clip[start:start + 18:3] for start in (0, 25, 50, 75)]
    for photo in (astronaut[:300, 100:400], grace_hopper[:512]):
        videos.append(np.stack([np.roll(photo, 4 * k, axis=1) for k in range(6)]))
    return videos


def make_dataset(root: Path, carphone_path, astronaut, grace_hopper,
                 variants: tuple[tuple[str, int], ...] = (("raw", 100), ("crf10", 60)),
                 ) -> pl.DataFrame:
    """dataset.parquet rows (as the workflow writes them, with `model`) over real frames tars:
    per source one real and one fake per trace, per variant (JPEG quality stands in for the
    compression); sources 0-3 train, 4 val, 5 test."""
    rows, shards = [], {}
    for i, frames in enumerate(_sources(carphone_path, astronaut, grace_hopper)):
        split = "train" if i < 4 else "val" if i == 4 else "test"
        for model in ["real", *TRACES]:
            traced = frames if model == "real" else np.stack([TRACES[model](f) for f in frames])
            for variant, quality in variants:
                coded = np.stack([cv2.imdecode(cv2.imencode(
                    ".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_UNCHANGED)
                    for f in traced])
                video_id = f"id{i}_{model}"
                frames_tar = f"results/frames/{variant}/frames.tar"
                shards.setdefault(frames_tar, {})[video_id] = (coded, np.arange(6))
                rows.append({"video_id": video_id, "variant": variant, "split": split,
                             "label": "real" if model == "real" else "fake",
                             "target": int(model == "real"), "identity": f"id{i}",
                             "action": None if model == "real" else "face_swap",
                             "generator": "real" if model == "real" else model,
                             "model": model, "sha256": f"{i}{model}{variant}",
                             "frames_tar": frames_tar, "frames_prefix": video_id,
                             "frame_indices": list(range(6))})
    for frames_tar, samples in shards.items():  # one tar per variant, as the store's shards
        (root / frames_tar).parent.mkdir(parents=True, exist_ok=True)
        write_frame_tar(root / frames_tar, samples, [SIDE])
    return pl.DataFrame(rows)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, carphone_path, astronaut, grace_hopper):
    root = tmp_path_factory.mktemp("attribution")
    return root, make_dataset(root, carphone_path, astronaut, grace_hopper)


@pytest.mark.numerics
def test_dmasta_maps_a_clip_to_class_logits_through_both_attentions():
    torch.manual_seed(3)
    # float64: the hand-built clip feature is the same function, compared to FLOAT64_EXACT
    model = DMASTA(num_classes=3, clip_length=4, backbone="resnet18").eval().double()
    clips = torch.rand(2, 4, 3, SIDE, SIDE, dtype=torch.float64)
    with torch.no_grad():
        logits = model(clips)
        weights = model.temporal_weights(clips)
        maps = model.spatial_maps(clips)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    # temporal: one weight per frame, normalised over the clip
    assert weights.shape == (2, 4)
    assert_float64_equal(weights.sum(1), torch.ones(2), "temporal weights")
    assert (weights > 0).all()
    # spatial: a gate in every residual block (ResNet-18: 8), per frame and location in (0, 1)
    assert len(maps) == 8 and maps[0].shape == (8, 1, 16, 16) and maps[-1].shape == (8, 1, 2, 2)
    assert all(float(m.min()) > 0 and float(m.max()) < 1 for m in maps)
    # the clip's feature is the weighted mean of its frames' features
    with torch.no_grad():
        features = model.frame_features(clips)
        by_hand = model.fc((weights[..., None] * features).sum(1))
    assert_float64_equal(by_hand, logits, "clip logits")
    # the paper's encoder: ResNet-50, a gate in each of its 16 bottlenecks, 2048-d features
    full = DMASTA(num_classes=5)
    assert full.encoder.feature_dim == 2048 and full.clip_length == 10
    assert sum(isinstance(m, SpatialAttention) for m in full.modules()) == 16
    with pytest.raises(ValueError, match="3 frames"):
        model(torch.rand(1, 3, 3, SIDE, SIDE))
    # the baseline: the same torchvision ResNet without gates, one frame in
    baseline = FrameClassifier(3, "resnet18")
    assert not any(isinstance(m, SpatialAttention) for m in baseline.modules())
    assert baseline(torch.rand(2, 3, SIDE, SIDE)).shape == (2, 3)


def test_imagenet_weights_load_into_the_encoder_but_not_the_gates(tmp_path):
    import torchvision.models as tvm

    torch.manual_seed(0)
    reference = tvm.resnet18(weights=None)  # a torchvision state dict, as the user's file
    model = DMASTA(3, 4, "resnet18")
    missing = model.load_imagenet(reference.state_dict())
    assert missing and all(".sa." in k for k in missing)
    assert torch.equal(model.encoder.conv1.weight, reference.conv1.weight)
    with pytest.raises(ValueError, match="not in the ImageNet file"):
        model.load_imagenet({k: v for k, v in reference.state_dict().items() if "layer4" not in k})


def test_classes_come_from_the_fakes_model_column(dataset):
    _, table = dataset
    assert attribution_classes(table) == ["dfaker", "faceswap", "fomm"]  # reals are no class
    fakes = labelled_fakes(table, ["dfaker", "faceswap", "fomm"], "raw")
    assert fakes.height == 18 and set(fakes["target"]) == {0, 1, 2}
    assert (fakes.filter(pl.col("model") == "fomm")["target"] == 2).all()
    with pytest.raises(ValueError, match="no `model` column"):
        attribution_classes(table.drop("model"))
    with pytest.raises(ValueError, match="at least two models"):
        attribution_classes(table.filter(pl.col("model").is_in(["real", "fomm"])))


def test_short_training_on_real_frames_lowers_the_loss_and_is_reused(dataset):
    root, table = dataset
    section = train_config({"train": {"attribution": {
        "backbone": "resnet18", "input_size": SIDE, "clip_length": 4, "epochs": 6,
        "batch_size": 4, "lr": 1e-3}}})
    settings = attribution_settings(section)
    classes = attribution_classes(table)
    train_rows = labelled_fakes(table, classes, "raw").filter(pl.col("split") == "train")
    clips = ClipDataset(frame_dataset(train_rows, "resnet50", [SIDE], root, SIDE), 4,
                        random_start=True)
    clip, target, _ = clips[0]
    assert clip.shape == (4, 3, SIDE, SIDE) and len(clips) == 12
    torch.manual_seed(0)
    model = DMASTA(len(classes), 4, "resnet18")
    history, best = fit(model, "ce", clips, clips, settings, torch.device("cpu"))
    assert len(history) == 6 and 1 <= best <= 6
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]
    # the workflow's job: trained once, then the stored model is reused with equal predictions
    store = Store(root / "store")
    quick = attribution_settings(train_config({"train": {"attribution": {
        "backbone": "resnet18", "input_size": SIDE, "clip_length": 4, "epochs": 1}}}))
    first, _, record = run_attribution_job(table, "dmasta", "raw", quick, store, root, [SIDE])
    again, _, reused = run_attribution_job(table, "dmasta", "raw", quick, store, root, [SIDE])
    assert not record["reused"] and reused["reused"] and record["key"] == reused["key"]
    assert first.equals(again) and first.height == 3  # one test video per class
    assert set(first["true"]) == set(classes) and first["probs"].list.sum().round(5).eq(1).all()


def test_table_and_confusion_matrix_count_the_videos(tmp_path):
    classes = ["dfaker", "faceswap", "fomm"]
    rows = [("raw", "dmasta", "fomm", "fomm"), ("raw", "dmasta", "fomm", "dfaker"),
            ("raw", "dmasta", "dfaker", "dfaker"), ("raw", "dmasta", "faceswap", "fomm"),
            ("crf10", "dmasta", "fomm", "fomm"), ("crf10", "frame_baseline", "dfaker", "fomm"),
            ("raw", "frame_baseline", "faceswap", "faceswap")]
    preds = pl.DataFrame([{"variant": v, "method": m, "true": t, "predicted": p,
                           "video_id": f"v{i}"} for i, (v, m, t, p) in enumerate(rows)])
    raw = preds.filter((pl.col("variant") == "raw") & (pl.col("method") == "dmasta"))
    # rows true, columns predicted, classes in order
    assert confusion_matrix(raw, classes).tolist() == [[1, 0, 0], [0, 0, 1], [1, 0, 1]]
    table = accuracy_table(preds, ["dmasta", "frame_baseline"], ["raw", "crf10"],
                           {"raw": 0, "crf10": 10}, classes)
    assert table.select("variant", "method", "correct", "test_videos").rows() == [
        ("raw", "dmasta", 2, 4), ("raw", "frame_baseline", 1, 1),
        ("crf10", "dmasta", 1, 1), ("crf10", "frame_baseline", 0, 1)]
    assert table["video_acc"].to_list() == [50.0, 100.0, 100.0, 0.0]
    assert table["chance_acc"].round(2).to_list() == [33.33] * 4
    # DFDM's figure: DMA-STA on the crf 10 videos only
    assert table["published_acc"].to_list() == [None, None, 70.0, None]
    confusion_plot(preds, classes, ["dmasta", "frame_baseline"], ["raw", "crf10"],
                   tmp_path / "cm.png")
    image = cv2.imread(str(tmp_path / "cm.png"))
    assert image is not None and image.shape[0] > 150 and image.std() > 10


# --- the workflow ------------------------------------------------------------------------------


def _workflow_dir(tmp_path, astronaut, grace_hopper, variants: dict[str, int]) -> Path:
    from tiny_demo import demo_photos, tiny_config

    workdir = tmp_path / "wf"
    config = tiny_config(workdir, demo_photos(workdir, astronaut, grace_hopper))
    config["compress"]["variants"] = {v: {"crf": crf} for v, crf in variants.items()}
    for key in ("single_action", "cam"):  # the demo names its own variant there
        config["train"][key]["variant"] = next(iter(variants))
    config["targets"]["frames"]["sizes"] = [SIDE]
    config["train"]["attribution"] = {"backbone": "resnet18", "input_size": SIDE,
                                      "clip_length": 4, "epochs": 1, "batch_size": 4}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


@pytest.mark.workflow
def test_attribution_target_plans_on_the_tiny_demo(tmp_path, carphone_path, astronaut,
                                                   grace_hopper):
    from tiny_demo import run_snakemake

    workdir = _workflow_dir(tmp_path, astronaut, grace_hopper, {"raw": 0, "crf10": 10})
    plan = run_snakemake(workdir, "-n", "attribution").stdout
    jobs = dict(line.split()[:2] for line in plan.splitlines()
                if line.split()[:1] in (["train_attribution"], ["attribution"],
                                        ["dataset_manifest"]))
    # two methods x two variants, one table, after the dataset is built
    assert jobs == {"train_attribution": "4", "attribution": "1", "dataset_manifest": "1"}


@pytest.mark.workflow
def test_attribution_target_trains_and_tables_on_real_frames(tmp_path, carphone_path,
                                                             astronaut, grace_hopper):
    from tiny_demo import run_snakemake

    # one variant (DFDM's published one) keeps the run short; the plan test shows one job
    # per variant
    workdir = _workflow_dir(tmp_path, astronaut, grace_hopper, {"crf10": 10})
    table = make_dataset(workdir, carphone_path, astronaut, grace_hopper, (("crf10", 60),))
    manifest = workdir / "results" / "dataset" / "dataset.parquet"
    manifest.parent.mkdir(parents=True)
    # only the attribution rules: the dataset above stands in for the built one
    # (one core: on a shared 2-core machine two torch threads per job make each step slower)
    only = ["--allowed-rules", "train_attribution", "attribution", "--cores", "1"]
    table.drop("model").write_parquet(manifest)
    failed = run_snakemake(workdir, "attribution", *only, check=False)
    assert failed.returncode != 0
    logs = list((workdir / "results" / "logs" / "train_attribution").rglob("*.log"))
    errors = [line for log in logs for line in log.read_text().splitlines() if " ERROR " in line]
    assert errors and all("no `model` column" in line for line in errors)
    assert not list((workdir / "results").rglob("predictions.parquet"))

    table.write_parquet(manifest)
    run_snakemake(workdir, "attribution", *only)
    tables = workdir / "results" / "tables"
    result = pl.read_csv(tables / "attribution.csv")
    assert result.select("variant", "crf", "method").rows() == [
        ("crf10", 10, "dmasta"), ("crf10", 10, "frame_baseline")]
    assert result["test_videos"].to_list() == [3, 3]
    assert result["published_acc"].to_list() == [70.0, None]
    for method in ("dmasta", "frame_baseline"):
        run = json.loads((workdir / "results" / "attribution" / method / "crf10" / "run.json")
                         .read_text())
        assert run["classes"] == ["dfaker", "faceswap", "fomm"] and run["train_videos"] == 12
    assert "~70% overall on the higher-quality videos" in (tables / "attribution.md").read_text()
    image = cv2.imread(str(tables / "attribution.png"))
    assert image is not None and image.shape[0] > 150 and image.std() > 10

"""Detectors, their training recipe and metrics, and the paper's experiments as Snakemake targets:
real photos and video frames, real training, real Snakemake runs."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import torch
import torchvision
import yaml

from dfmnist.storage.store import Store
from dfmnist.storage.video import read_video
from dfmnist.targets.frames import FRAMES_TAR, write_frame_tar
from dfmnist.train import (
    ENSEMBLE,
    MODELS,
    build_model,
    experiment_runs,
    train_config,
    train_settings,
)
from dfmnist.train.data import FrameDataset
from dfmnist.train.experiments import (
    MixedQuality,
    parse_trainset,
    run_training_job,
    select_training_videos,
)
from dfmnist.train.loop import (
    Detector,
    TrainSettings,
    detector_loss,
    poly_lambda,
    train_detector,
)
from dfmnist.train.metrics import accuracy, roc_auc, summarize, video_scores
from dfmnist.train.models import load_pretrained
from dfmnist.train.tables import markdown, per_action, table3, table4
from dfmnist.train.xception import Xception
from dfmnist.vision.tps import border_anchors, warp_image

from numerics import assert_float64_equal

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(set(MODELS) - set(ENSEMBLE)))  # B4s: test_ensemble
def test_detectors_give_one_finite_logit_per_image(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    side = MODELS[name].input_size
    with torch.no_grad():
        out = model(torch.rand(2, 3, side, side))
    assert out.shape == (2,) and torch.isfinite(out).all()
    # a detector that ignores its input would give equal logits to different images
    assert out[0] != out[1]


def test_resnet_takes_imagenet_weights_only_from_the_given_file(tmp_path):
    reference = torchvision.models.resnet50(weights=None)  # same layout as an ImageNet file
    path = tmp_path / "resnet50-imagenet.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet50")
    head_before = model.backbone.fc.weight.detach().clone()
    info = load_pretrained(model, path, freeze_backbone=True)
    assert info["missing"] == ["fc.bias", "fc.weight"] and len(info["sha256"]) == 64
    assert torch.equal(model.backbone.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)
    assert torch.equal(model.backbone.fc.weight, head_before)  # the 1-logit head stays new
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"backbone.fc.weight", "backbone.fc.bias"}
    # a file of another architecture is refused, not half-loaded
    other = tmp_path / "xception.pth"
    torch.save(Xception().state_dict(), other)
    with pytest.raises(ValueError, match="not in the file"):
        load_pretrained(build_model("resnet50"), other)


def test_xception_loads_a_checkpoint_with_the_common_layout(tmp_path):
    torch.manual_seed(1)
    source = Xception()
    state = {k.replace("fc.", "last_linear."): v for k, v in source.state_dict().items()}
    state["last_linear.weight"] = torch.zeros(1000, 2048)  # an ImageNet head: 1000 classes
    state["last_linear.bias"] = torch.zeros(1000)
    path = tmp_path / "xception-imagenet.pth"
    torch.save(state, path)
    torch.manual_seed(2)
    model = Xception()
    info = load_pretrained(model, path)
    assert info["missing"] == ["fc.bias", "fc.weight"]
    assert torch.equal(model.block7.rep[1].pointwise.weight, source.block7.rep[1].pointwise.weight)
    assert all(p.requires_grad for p in model.parameters())


def test_metrics_on_known_inputs():
    assert accuracy(np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 0, 1])) == 0.5
    assert accuracy(np.array([0.5]), np.array([1])) == 1.0  # threshold 0.5 counts as real
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert roc_auc(np.array([0.3, 0.3, 0.9]), np.array([1, 0, 1])) == 0.75  # a tie counts half
    assert math.isnan(roc_auc(np.array([0.2, 0.7]), np.array([1, 1])))
    frames = pl.DataFrame({
        "video_id": ["a", "a", "a", "b", "b", "c"],
        "score": [0.9, 0.8, 0.1, 0.4, 0.45, 0.7],
        "target": [1, 1, 1, 0, 0, 0],
    })
    videos = video_scores(frames, ("video_id",))
    assert videos["score"].to_list() == pytest.approx([0.6, 0.425, 0.7])
    stats = summarize(frames)
    # frames: 0.9, 0.8 right, 0.1 wrong, 0.4, 0.45 right, 0.7 wrong -> 4/6
    assert stats["frame_acc"] == pytest.approx(4 / 6)
    assert stats["video_acc"] == pytest.approx(2 / 3) and stats["n_videos"] == 3
    assert stats["video_auc"] == 0.5  # a (0.6) ranks above b (0.425) but below c (0.7)


def test_poly_decay_schedule():
    f = poly_lambda(100, 0.9)
    assert f(0) == 1.0 and f(100) == 0.0 and f(50) == pytest.approx(0.5 ** 0.9)


def test_tables_from_known_predictions():
    rows = []
    for trainset in ("raw", "c40"):
        for variant in ("raw", "c40"):
            right = trainset == variant
            for video, label, action in (("r1", "real", None), ("f1", "fake", "blink"),
                                         ("f2", "fake", "yaw")):
                target = int(label == "real")
                good = 0.8 if target else 0.2
                score = good if right or video == "r1" else 1 - good
                rows.append({"model": "mesoinception4", "trainset": trainset, "variant": variant,
                             "video_id": video, "label": label, "action": action,
                             "target": target, "score": score})
    preds = pl.DataFrame(rows)
    t3 = table3(preds, ["mesoinception4"], ["raw", "c40"])
    assert t3["frame_acc"].to_list() == [100.0, 100.0]
    assert t3["paper_acc"].to_list() == [60.39, 57.90]
    t4 = table4(preds, ["mesoinception4"], ["raw", "c40"])
    assert t4["frame_acc"].to_list() == pytest.approx([100 / 3, 100 / 3])
    assert t4.select("train", "test").rows() == [("raw", "c40"), ("c40", "raw")]
    assert t4["paper_acc"].to_list() == [56.92, 55.65]
    pa = per_action(preds, "mesoinception4", ["raw"])
    assert pa["action"].to_list() == ["blink", "original", "yaw"]
    text = markdown(t3, "Table 3", ["a note"])
    assert "| mesoinception4 | raw | 100.00 |" in text and "- a note" in text


def _manifest(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["video_id", "variant", "label", "action", "split"],
                        orient="row")


def test_training_sets_select_the_right_videos():
    rows = [(f"real/{i}", v, "real", None, "train") for i in range(6) for v in ("raw", "c40")]
    rows += [(f"fake/{a}/{i}", v, "fake", a, "train") for a in ("blink", "yaw", "nod")
             for i in range(3) for v in ("raw", "c40")]
    rows += [("real/v", "raw", "real", None, "val")]
    manifest = _manifest(rows)
    variants = ["c40", "raw"]
    full = select_training_videos(manifest, parse_trainset("raw", variants), 0)
    assert full.height == 15 and set(full["variant"]) == {"raw"}
    one = select_training_videos(manifest, parse_trainset("raw-action-yaw", variants), 0)
    assert one.filter(pl.col("label") == "fake")["action"].to_list() == ["yaw"] * 3
    assert one.filter(pl.col("label") == "real").height == 3
    small = select_training_videos(manifest, parse_trainset("c40-n4", variants), 0)
    fakes = small.filter(pl.col("label") == "fake")
    assert fakes.height == 4 and small.filter(pl.col("label") == "real").height == 4
    assert sorted(fakes.group_by("action").len()["len"].to_list()) == [1, 1, 2]
    mixed = select_training_videos(manifest, parse_trainset("mixed", variants), 0)
    assert mixed.height == 30
    for bad in ("c23", "raw-n", "raw-action-", "raw_mixed-n3"):
        with pytest.raises(ValueError, match="bad training set"):
            parse_trainset(bad, variants)


def test_detector_names_match_the_models():
    from dfmnist.train import DETECTORS

    assert set(DETECTORS) == set(MODELS)


def test_config_section_overrides_the_paper_defaults():
    section = train_config({"train": {"epochs": 3, "per_action": {"model": "mesoinception4"}}})
    assert section["epochs"] == 3 and section["batch_size"] == 64
    assert section["per_action"] == {"model": "mesoinception4"}
    assert section["table3"]["models"][0] == "resnet50"
    settings = train_settings(section, "xception")
    assert settings.freeze_backbone is False  # no ImageNet file given: nothing to freeze
    section["pretrained"] = {"xception": "/data/xception.pth"}
    assert train_settings(section, "xception").freeze_backbone is True
    demo = train_config(yaml.safe_load((REPO / "config.yaml").read_text()))
    assert demo["table3"]["models"] == ["mesoinception4"] and demo["epochs"] <= 10
    runs = experiment_runs(demo, ["raw", "c23", "c40"], ["blink", "yaw"])
    # table3, table4 and per_action share their training jobs
    assert runs["table3"] == runs["table4"] == runs["per_action"]
    assert runs["table5"] == [("mesoinception4", "mixed")]
    assert ("mesoinception4", "raw-action-yaw") in runs["single_action"]
    assert ("mesoinception4", "c40-n6") in runs["corpus_size"]
    for pairs in runs.values():  # every job name parses as a training set
        for _, spec in pairs:
            assert parse_trainset(spec, ["raw", "c23", "c40"]).spec == spec


def test_dataset_card_markdown_becomes_html():
    from dfmnist.report import markdown_to_html

    page = markdown_to_html("# Card\n\n- real = 1 `x`\n\n| a | b |\n|---|---|\n| 1 | <2> |\n", "t")
    assert "<h1>Card</h1>" in page and "<li>real = 1 <code>x</code></li>" in page
    assert "<tr><th>a</th><th>b</th></tr>" in page and "<td>&lt;2&gt;</td>" in page


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


# --- the workflow: table3 and per_action on the tiny demo -------------------------------------


@pytest.mark.workflow
def test_table3_and_per_action_on_the_tiny_demo(tmp_path, tiny_demo):
    from tiny_demo import clone, planned_jobs, run_snakemake

    workdir = clone(tiny_demo, tmp_path / "wf")  # the dataset as built; only train changes
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["train"].update(epochs=1, batch_size=8)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "table3", "per_action", "cam", "report_dataset")
    results = workdir / "results"
    dataset = pl.read_parquet(results / "dataset" / "dataset.parquet")
    t3 = pl.read_csv(results / "tables" / "table3.csv")
    assert t3.select("model", "variant").rows() == [("mesoinception4", v) for v in ("c40", "raw")]
    assert t3["paper_acc"].to_list() == [57.9, 60.39]
    test_videos = dataset.filter((pl.col("split") == "test") & (pl.col("variant") == "raw"))
    assert t3["test_videos"].to_list() == [test_videos.height] * 2
    assert t3["frame_acc"].is_between(0, 100).all()
    pa = pl.read_csv(results / "tables" / "per_action.csv")
    actions = set(test_videos["action"].fill_null("original"))
    assert set(pa["action"]) == actions and set(pa["variant"]) == {"raw", "c40"}
    md = (results / "tables" / "table3.md").read_text()
    assert "trained from scratch" in md and "demo data" in md and "| 60.39 |" in md
    for name in ("table3", "per_action"):
        image = cv2.imread(str(results / "tables" / f"{name}.png"))
        assert image is not None and image.shape[0] > 200 and image.std() > 10
    cam = pl.read_csv(results / "tables" / "cam.csv")
    assert cam.height >= 1 and cam["p_real"].is_between(0, 1).all()
    assert cv2.imread(str(results / "tables" / "cam.png")).shape[0] == 2 * 192  # frames, maps
    frames = cv2.imread(str(results / "report" / "sample_frames.png"))
    assert frames.shape[0] == 2 * 160  # one row per variant
    # per_action shares its training jobs with table3: one job per variant
    runs = sorted((results / "train" / "mesoinception4").glob("*/run.json"))
    assert [p.parent.name for p in runs] == ["c40", "raw"]
    first = {p.parent.name: json.loads(p.read_text()) for p in runs}
    assert not any(r["reused"] for r in first.values())

    # unchanged data: a rerun of the training jobs reuses the stored checkpoints
    run_snakemake(workdir, "table3", "per_action", "--forcerun", "train_detector")
    again = {p.parent.name: json.loads(p.read_text()) for p in runs}
    assert all(r["reused"] for r in again.values())
    assert {k: r["key"] for k, r in again.items()} == {k: r["key"] for k, r in first.items()}
    assert "Nothing to be done" in run_snakemake(workdir, "table3", "per_action", "-n").stdout
    # where training runs is not what it makes; the recipe is: both tables' jobs rerun, and
    # table3's one table job, nothing of the dataset
    targets = ("table3", "per_action")
    assert planned_jobs(workdir, lambda c: c["train"].update(device="auto"), *targets) == {}
    assert planned_jobs(workdir, lambda c: c["train"].update(epochs=3), *targets) == {
        "train_detector": 2, "experiment_table": 2, "table3": 1, "per_action": 1}
    # another table's model list is not table3's
    assert planned_jobs(workdir, lambda c: c["train"]["table5"].update(models=["xception"]),
                        *targets) == {}

    report = workdir / "report.html"
    run_snakemake(workdir, "--report", str(report), "table3", "per_action", "cam",
                  "report_dataset")
    text = report.read_text()
    for needle in ("table3.png", "per_action.csv", "cam.png", "sample_frames.png",
                   "dataset_card.html"):
        assert needle in text


@pytest.mark.numerics
def test_cam_of_a_pooled_head_is_the_classic_cam(astronaut):
    from dfmnist.train.cam import activation_maps, overlay

    torch.manual_seed(0)
    # float64: the classic CAM below is the same function, compared to FLOAT64_EXACT
    model = Detector("resnet50").eval().double()
    face = cv2.resize(astronaut[:300, 100:400], (224, 224), interpolation=cv2.INTER_AREA)
    images = torch.from_numpy(face.transpose(2, 0, 1).copy()).double()[None] / 255.0
    # an untrained head sees real evidence everywhere, so the map of the real class is the
    # informative one here
    maps = activation_maps(model, images, fake=False)
    # classic CAM: the head's weights times the last feature maps
    with torch.no_grad():
        net = model.net.backbone
        x = model.normalize(images)
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        feats = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        classic = torch.relu((net.fc.weight[0][None, :, None, None] * feats).sum(1, keepdim=True))
        classic = torch.nn.functional.interpolate(classic, size=(224, 224), mode="bilinear")[0, 0]
        classic = (classic - classic.min()) / (classic.max() - classic.min())
    assert maps.shape == (1, 224, 224) and maps.min() == 0 and maps.max() == pytest.approx(1)
    assert_float64_equal(maps[0], classic, "class activation map")
    blended = overlay(face, maps[0])
    assert blended.shape == face.shape and not np.array_equal(blended, face)

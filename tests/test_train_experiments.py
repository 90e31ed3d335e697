"""The paper's experiments on known inputs, without training: metrics, the learning-rate
schedule, tables 3 and 4 and per-action results, training-set selection, the `train` config
section and the runs it asks for, and the dataset card's markdown."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from dfmnist.train import experiment_runs, train_config, train_settings
from dfmnist.train.experiments import parse_trainset, select_training_videos
from dfmnist.train.loop import poly_lambda
from dfmnist.train.metrics import accuracy, roc_auc, summarize, video_scores
from dfmnist.train.tables import markdown, per_action, table3, table4

REPO = Path(__file__).resolve().parents[1]


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

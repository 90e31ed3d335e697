"""The paper's experiments as Snakemake targets on the tiny demo: table3 and per_action trained
and tabled, the CAM figure and the report, stored checkpoints reused, and what reruns when the
training recipe changes."""

from __future__ import annotations

import json

import cv2
import polars as pl
import pytest
import yaml


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

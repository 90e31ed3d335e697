"""The face-swap stage inside Snakemake on a tiny demo: real faces, real training, real video.

Two identities make one couple; two autoencoders swap it both ways beside one landmark-warp
animation, so the dataset holds several generators. Incremental: a second run has nothing to
do, and changing one model's iterations reruns only that model's jobs and what follows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from dfmnist.storage.store import Store
from dfmnist.storage.video import read_video
from dfmnist.vision.faces import FaceDetector

from tiny_demo import demo_photos, planned_jobs, run_snakemake, tiny_config

pytestmark = pytest.mark.workflow

MODELS = ["lightweight", "dfaker"]


def swap_config(workdir: Path, photos: dict[str, str]) -> dict:
    config = tiny_config(workdir, photos)
    config["actions"] = ["blink"]
    config["liveness"]["policy"] = {"blink": ["local"]}
    config["faceswap"] = {
        "models": MODELS, "width": 0.125, "per_identity": 12, "device": "cpu",
        "train": {"iterations": 6, "batch_size": 4, "lr": 0.0005, "seed": 0},
    }
    return config


@pytest.fixture(scope="module")
def swapped(tmp_path_factory, astronaut, grace_hopper) -> Path:
    workdir = tmp_path_factory.mktemp("swap")
    photos = demo_photos(workdir, astronaut, grace_hopper)
    photos.pop("carphone")  # two identities: one couple
    (workdir / "config.yaml").write_text(yaml.safe_dump(swap_config(workdir, photos)))
    run_snakemake(workdir)
    return workdir


def test_dataset_holds_both_generators_with_dfdm_names(swapped: Path):
    manifest = pl.read_parquet(swapped / "results" / "dataset" / "dataset.parquet")
    fakes = manifest.filter(pl.col("label") == "fake")
    assert set(fakes["generator"]) == {"landmark_warp", "face_swap"}
    swaps = fakes.filter(pl.col("generator") == "face_swap")
    assert set(swaps["model"]) == set(MODELS)
    one_variant = swaps.filter(pl.col("variant") == "raw")
    # both directions of the couple per model, DFDM's file names, not liveness-filtered
    assert one_variant.height == 2 * len(MODELS)
    for row in one_variant.iter_rows(named=True):
        assert {row["identity"], row["donor"]} == {"astronaut", "grace_hopper"}
        name = Path(row["raw_path"]).name
        assert name == f"id{row['identity']}_id{row['donor']}_demo00-00001_{row['model']}.mp4"
        assert row["liveness"] is None and row["weights_sha256"]
    # a couple's identities share a split
    assert one_variant["split"].n_unique() == 1
    assert set(manifest.filter(pl.col("identity").is_in(["astronaut", "grace_hopper"]))
               ["split"]) == {one_variant["split"][0]}


def test_a_swap_keeps_frames_size_and_replaces_only_the_face(swapped: Path):
    """The swap lands where MTCNN finds the target's face and nowhere else (a model trained
    for a few iterations draws no face yet: tests/test_faceswap_convert.py checks that a real
    face pasted the same way is found by MTCNN where the target's was)."""
    manifest = pl.read_parquet(swapped / "results" / "dataset" / "dataset.parquet")
    sources = pl.read_parquet(swapped / "results" / "manifests" / "sources.parquet")
    swaps = manifest.filter((pl.col("generator") == "face_swap") & (pl.col("variant") == "raw"))
    detector = FaceDetector(min_face_size=20)
    for swap in swaps.iter_rows(named=True):
        target = sources.filter(pl.col("clip_id") == swap["source_id"]).row(0, named=True)
        fake = read_video(swapped / swap["raw_path"]).frames
        real = read_video(swapped / target["path"]).frames
        assert fake.shape == real.shape
        track = detector.track(real)
        assert track.found.all()
        changed = np.abs(fake.astype(int) - real.astype(int)).max(axis=-1) > 0
        for t in range(len(real)):
            x0, y0, x1, y1 = track.boxes[t]
            cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.75 * max(x1 - x0, y1 - y0)
            ys, xs = np.nonzero(changed[t])
            assert ys.size > 0.5 * (x1 - x0) * (y1 - y0)  # most of the face box is replaced
            assert abs(xs.mean() - cx) < 0.15 * (x1 - x0) and abs(ys.mean() - cy) < 0.2 * (y1 - y0)
            outside = (np.abs(xs - cx) > half) | (np.abs(ys - cy) > half)
            assert outside.mean() < 0.02  # the background is the target's own


def test_trained_checkpoints_are_store_items(swapped: Path):
    store = Store(swapped / "results" / "store")
    assert len(store.keys("swap_model")) == len(MODELS)  # one couple
    assert len(store.keys("swap_faces")) == 2


def test_second_run_has_nothing_to_do(swapped: Path):
    proc = run_snakemake(swapped, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_one_models_iterations_retrain_only_that_model(swapped: Path):
    change = lambda c: c["faceswap"].update(per_model={"dfaker": {"iterations": 8}})  # noqa: E731
    jobs = planned_jobs(swapped, change)
    assert jobs["faceswap_train"] == 1 and jobs["faceswap_convert"] == 1
    assert "faceswap_faces" not in jobs and "generate_shard" not in jobs
    # run it: only dfaker's fakes are new items; lightweight's and the animation's are reused
    config = yaml.safe_load((swapped / "config.yaml").read_text())
    change(config)
    (swapped / "config.yaml").write_text(yaml.safe_dump(config))
    store = Store(swapped / "results" / "store")
    before = {k: store.keys(k) for k in ("fake", "compressed", "swap_model")}
    run_snakemake(swapped)
    new = {k: store.keys(k) - before[k] for k in before}
    assert len(new["swap_model"]) == 1 and len(new["fake"]) == 2
    manifest = pl.read_parquet(swapped / "results" / "dataset" / "dataset.parquet")
    new_fakes = manifest.filter(pl.col("content_key").is_in(list(new["fake"])))
    assert set(new_fakes["model"]) == {"dfaker"}
    assert len(new["compressed"]) == 2 * manifest["variant"].n_unique()


def test_recipe_figure_reuses_the_datasets_models_and_trains_the_other_recipe(swapped: Path):
    """The report's figure: the couple's target frame, then each model, one row per recipe.
    The dataset's own (faceswap-recipe) checkpoints come from the store; only the simple
    recipe trains. Switching a model to that recipe afterwards trains nothing: its checkpoint
    is already an item, so only that model's conversion reruns."""
    import cv2

    from dfmnist.faceswap.recipe_figure import LABEL, TILE

    store = Store(swapped / "results" / "store")
    before = store.keys("swap_model")
    run_snakemake(swapped, "faceswap_recipes")
    figure = cv2.imread(str(swapped / "results" / "report" / "faceswap_recipes.png"))
    assert figure.shape == (2 * (TILE + LABEL), LABEL + (1 + len(MODELS)) * TILE, 3)
    assert len(store.keys("swap_model") - before) == len(MODELS)
    rows = [figure[r * (TILE + LABEL) + LABEL:(r + 1) * (TILE + LABEL), LABEL:] for r in (0, 1)]
    assert np.array_equal(rows[0][:, :TILE], rows[1][:, :TILE])  # the same target frame
    assert not np.array_equal(rows[0][:, TILE:], rows[1][:, TILE:])  # the recipes differ

    def simple_lightweight(config: dict) -> None:
        config["faceswap"].setdefault("per_model", {})["lightweight"] = {"recipe": "simple"}

    jobs = planned_jobs(swapped, simple_lightweight)
    assert "faceswap_train" not in jobs and jobs["faceswap_convert"] == 1

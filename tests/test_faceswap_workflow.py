"""The face-swap stage inside Snakemake on a tiny demo: real faces, real training, real video.

Two identities make one couple; two autoencoders swap it both ways beside one landmark-warp
animation, so the dataset holds several generators. Incremental: a second run has nothing to
do, and changing one model's iterations reruns only that model's jobs and what follows.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml
from test_workflow import demo_photos, planned_jobs, run_snakemake, tiny_config

from dfmnist.faces import FaceDetector
from dfmnist.io import read_video
from dfmnist.store import Store

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


def test_a_swap_keeps_frames_size_and_the_face_where_it_was(swapped: Path):
    manifest = pl.read_parquet(swapped / "results" / "dataset" / "dataset.parquet")
    sources = pl.read_parquet(swapped / "results" / "manifests" / "sources.parquet")
    swap = manifest.filter((pl.col("generator") == "face_swap") & (pl.col("variant") == "raw")
                           ).row(0, named=True)
    target = sources.filter(pl.col("clip_id") == swap["source_id"]).row(0, named=True)
    fake, real = read_video(swap["raw_path"]), read_video(target["path"])
    assert fake.frames.shape == real.frames.shape
    detector = FaceDetector(min_face_size=20)
    fake_track, real_track = detector.track(fake.frames), detector.track(real.frames)
    assert fake_track.found.mean() > 0.8
    both = fake_track.found & real_track.found
    centre = lambda b: (b[:, :2] + b[:, 2:]) / 2  # noqa: E731
    side = (real_track.boxes[both, 2] - real_track.boxes[both, 0]).mean()
    shift = abs(centre(fake_track.boxes[both]) - centre(real_track.boxes[both])).max()
    assert shift < 0.25 * side


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

"""What Snakemake reruns on a build of the tiny demo (real MTCNN, real ffmpeg, real files):
nothing on a second run or for execution settings, exactly what a science setting, a replaced
photo or the FOMM generator changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import polars as pl
import pytest
import yaml

from dfmnist.storage.store import Store
from dfmnist.storage.tars import shard_samples
from dfmnist.storage.video import read_video

from tiny_demo import clone, planned_jobs, run_snakemake

pytestmark = pytest.mark.workflow


def store_keys(workdir: Path) -> dict[str, set[str]]:
    store = Store(workdir / "results" / "store")
    return {kind: store.keys(kind) for kind in ("source_frame", "fake", "compressed", "frames")}


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_demo: Path) -> Path:
    """A clone of the session's tiny demo build; later tests change it in order."""
    return clone(tiny_demo, tmp_path_factory.mktemp("wf") / "demo")


def test_second_run_has_nothing_to_do(built: Path):
    proc = run_snakemake(built, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


#: Settings that choose where, how fast or through what a job runs (dfmnist.config.checks
#: EXECUTION_ONLY): changing one must rerun nothing.
EXECUTION_CHANGES = {
    "faces.device": lambda c: c["faces"].update(device="cuda:1"),
    "faces.batch_size": lambda c: c["faces"].update(batch_size=3),
    "generate.device": lambda c: c["generate"].update(device="cuda:1"),
    "generate.threads": lambda c: c["generate"].update(threads=2),
    "generate.fomm.batch_size": lambda c: c["generate"]["fomm"].update(batch_size=2),
    "generate.fomm.winograd": lambda c: c["generate"]["fomm"].update(winograd=4),
    "liveness.cache": lambda c: c["liveness"].update(cache=c["liveness"]["cache"] + ".moved"),
    "liveness http": lambda c: c["liveness"]["providers"]["baidu"]["http"].update(qps=9),
}


def test_execution_settings_rerun_nothing(built: Path):
    """All of them changed at once in one dry run: a rule reruns when one of its params
    changes, so nothing planned for all means nothing planned for any one of them."""

    def change_all(config: dict) -> None:
        for change in EXECUTION_CHANGES.values():
            change(config)

    assert planned_jobs(built, change_all) == {}


def test_a_science_setting_reruns_exactly_what_it_changes(built: Path):
    # the splits' seed: the splits and what reads them, nothing upstream
    assert planned_jobs(built, lambda c: c["targets"].update(seed=1)) == {
        "splits": 1, "dataset_manifest": 1, "dataset_exports": 1, "deepfakebench_export": 1,
        "faceforensics_export": 1, "all": 1}
    # the source clips' frame rate: the demo's source clips and what derives from them, never
    # the driving videos or their crops
    jobs = planned_jobs(built, lambda c: c["demo"].update(clip_fps=10))
    assert jobs["demo_source_clips"] == 3 and jobs["score_sources"] == 1
    assert not {"demo_driving_video", "driving_shard", "driving_manifest"} & set(jobs)
    # the detectors' training recipe is not the dataset's
    assert planned_jobs(built, lambda c: c["train"].update(epochs=2)) == {}


def test_replacing_one_photo_rebuilds_exactly_what_derives_from_it(built: Path, astronaut):
    results = built / "results"
    before = store_keys(built)
    plan_before = pl.read_parquet(results / "plan" / "plan.parquet")
    accepted_before = pl.read_parquet(results / "fake" / "accepted.parquet")
    # a different real photo of a face for one identity: the astronaut photo, mirrored
    cv2.imwrite(str(built / "photos" / "grace_hopper.png"),
                cv2.cvtColor(astronaut[:, ::-1], cv2.COLOR_RGB2BGR))
    run_snakemake(built)
    after = store_keys(built)
    new = {kind: after[kind] - before[kind] for kind in after}

    plan = pl.read_parquet(results / "plan" / "plan.parquet")
    assert plan["candidate_id"].equals(plan_before["candidate_id"])
    affected = plan.filter(pl.col("identity") == "grace_hopper")
    assert affected.height > 0
    # fakes: exactly the candidates animated from the replaced identity
    assert new["fake"] == set(affected["key"])
    changed = plan.join(plan_before, on="candidate_id").filter(pl.col("key") != pl.col("key_right"))
    assert set(changed["identity"]) == {"grace_hopper"}
    # source scoring: one new shard item in which only that identity's clip(s) were scored,
    # the others copied from the older item; only selected sources' frames are files
    store = Store(results / "store")
    sources = pl.read_parquet(results / "manifests" / "sources.parquet")
    assert len(new["source_frame"]) == 1
    scored = {k: s["made"] for k, s in shard_samples(store, "source_frame",
                                                     next(iter(new["source_frame"]))).items()}
    changed_clips = sources.filter(pl.col("identity") == "grace_hopper")
    assert {k for k, made in scored.items() if made == "computed"} == set(changed_clips["key"])
    assert sorted(scored) == sorted(sources["key"])
    images = sources.filter("selected")["image_path"]
    assert images.is_not_null().all() and all((built / p).is_file() for p in images)
    assert sources.filter(~pl.col("selected"))["image_path"].is_null().all()
    # compression and frames: only videos that are new to the dataset (2 variants each)
    dataset = pl.read_parquet(results / "dataset" / "dataset.parquet")
    accepted = pl.read_parquet(results / "fake" / "accepted.parquet")
    new_fakes = set(accepted["sha256"]) - set(accepted_before["sha256"])
    new_reals = dataset.filter((pl.col("label") == "real") & (pl.col("identity") == "grace_hopper"))
    expected_videos = len(new_fakes) + new_reals["video_id"].n_unique()
    assert len(new["compressed"]) == 2 * expected_videos
    # frames: one store item per (variant, shard); a changed shard decodes only its new videos
    # and copies its other videos' frames from the shard's older tar
    shards = yaml.safe_load((built / "config.yaml").read_text())["compress"]["shards"]
    assert 0 < len(new["frames"]) <= 2 * shards
    made = [s["made"] for key in new["frames"]
            for s in shard_samples(store, "frames", key).values()]
    assert made.count("computed") == 2 * expected_videos and made.count("copied") > 0
    recompressed = {store.meta("compressed", k)["video_id"] for k in new["compressed"]}
    reals = {v for v in recompressed if v.startswith("real/")}
    assert reals == set(new_reals["video_id"])
    assert all(v.startswith("real/grace_hopper/") for v in reals)


def test_fomm_generator_inside_the_workflow(built: Path):
    """generator=fomm with a random-weight checkpoint in the original layout (64x64 small
    architecture): the fakes are re-rendered by FOMM, nothing upstream of the plan is."""
    import torch

    from dfmnist.generators.fomm import build_networks, save_checkpoint

    results = built / "results"
    torch.manual_seed(0)
    checkpoint = built / "fomm-small.pth.tar"
    save_checkpoint(checkpoint, *build_networks("small"), extra={"epoch": 0})
    config = yaml.safe_load((built / "config.yaml").read_text())
    config["generate"]["fomm"]["config"] = "small"
    (built / "config.yaml").write_text(yaml.safe_dump(config))
    before = store_keys(built)
    shortcut = ["--config", "generator=fomm", f"fomm_checkpoint={checkpoint}"]
    run_snakemake(built, *shortcut)
    after = store_keys(built)

    plan = pl.read_parquet(results / "plan" / "plan.parquet")
    assert (plan["generator"] == "fomm").all()
    assert after["source_frame"] == before["source_frame"]
    store = Store(results / "store")
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    shards = pl.concat([pl.read_parquet(p) for p in (results / "fake" / "raw" / "shards").glob(
        "*.parquet")])
    assert after["fake"] - before["fake"] == set(shards["key"])
    assert (shards["device"] == "cpu").all()
    # FOMM's float32 kernels decide its bytes: a fake's key is the plan's key and the float
    # platform it was rendered on (dfmnist.numerics)
    planned = {store.meta("fake", key)["planned_key"]: key for key in shards["key"]}
    assert set(planned) == set(plan["key"]) and not set(plan["key"]) & set(shards["key"])
    for item in plan.head(2).iter_rows(named=True):
        meta = store.meta("fake", planned[item["key"]])
        assert meta["generator"]["name"] == "fomm" and meta["device"] == "cpu"
        assert meta["generator"]["weights_sha256"] == sha
        assert meta["generator"]["params"]["config"] == "small"
        assert meta["numerics"]["platform"]["device"] == "cpu"
        assert meta["numerics"]["kernels"]["batch_size"] == config["generate"]["fomm"][
            "batch_size"]
        fake = read_video(store.item_dir("fake", planned[item["key"]]) / "video.mp4")
        driving = read_video(built / item["driving_video"])
        assert fake.frames.shape == (len(driving), 256, 256, 3)
        assert fake.frames.std() > 1.0  # rendered images, not a blank
    assert (results / "dataset" / "dataset.parquet").is_file()
    proc = run_snakemake(built, "-n", *shortcut)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_a_generator_mix_reuses_each_generators_fakes(built: Path):
    """generate.generators {fomm: 1, landmark_warp: 1} after builds with each alone: every
    candidate draws one of the two, and its fake is the item that generator already made (no
    new fake), so only the plan and what reads it rerun; `model` in the dataset names each
    fake's generator, the attribution classes. (Random-weight FOMM draws no face the local
    liveness check accepts: the policy is `unchecked` here.)"""
    checkpoint = built / "fomm-small.pth.tar"
    assert checkpoint.is_file()  # the FOMM test's, above
    config = yaml.safe_load((built / "config.yaml").read_text())
    config["generate"].update(generator="fomm", generators={"fomm": 1, "landmark_warp": 1})
    config["generate"]["fomm"]["checkpoint"] = str(checkpoint)
    config["liveness"]["policy"] = {action: ["unchecked"] for action in config["actions"]}
    (built / "config.yaml").write_text(yaml.safe_dump(config))
    before = store_keys(built)
    run_snakemake(built)
    after = store_keys(built)
    assert after["fake"] == before["fake"]
    dataset = pl.read_parquet(built / "results" / "dataset" / "dataset.parquet")
    fakes = dataset.filter(pl.col("label") == "fake")
    assert set(fakes["model"]) == {"fomm", "landmark_warp"}
    assert (fakes["generator"] == fakes["model"]).all()
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert set(fakes.filter(pl.col("model") == "fomm")["weights_sha256"]) == {sha}
    card = (built / "results" / "dataset" / "README.md").read_text()
    assert "animation generator: `fomm`" in card and "animation generator: `landmark_warp`" in card

"""Snakemake itself on a tiny demo config: real MTCNN, real ffmpeg, real files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import yaml

from dfmnist.storage.store import Store
from dfmnist.storage.tars import shard_samples
from dfmnist.storage.video import read_video
from dfmnist.targets.frames import read_frames
from dfmnist.train.data import FrameDataset

from tiny_demo import REPO, clone, planned_jobs, run_snakemake

pytestmark = pytest.mark.workflow


def store_keys(workdir: Path) -> dict[str, set[str]]:
    store = Store(workdir / "results" / "store")
    return {kind: store.keys(kind) for kind in ("source_frame", "fake", "compressed", "frames")}


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_demo: Path) -> Path:
    """A clone of the session's tiny demo build; later tests change it in order."""
    return clone(tiny_demo, tmp_path_factory.mktemp("wf") / "demo")


def test_demo_builds_a_consistent_dataset(built: Path):
    results = built / "results"
    dataset = pl.read_parquet(results / "dataset" / "dataset.parquet")
    config = yaml.safe_load((built / "config.yaml").read_text())
    assert set(dataset["variant"]) == {"raw", "c40"}
    # every selected real clip is in the dataset, once per variant
    sources = pl.read_parquet(results / "manifests" / "sources.parquet").filter("selected")
    reals = dataset.filter(pl.col("label") == "real")
    assert reals.height == sources.height * 2 and sources.height == 3
    fakes = dataset.filter(pl.col("label") == "fake")
    accepted = pl.read_parquet(results / "fake" / "accepted.parquet")
    assert fakes.height == accepted.height * 2
    assert set(accepted["action"]) <= set(config["actions"])
    # identity-disjoint splits, labels as in the paper (real = 1)
    per_identity = dataset.group_by("identity").agg(pl.col("split").n_unique())
    assert (per_identity["split"] == 1).all()
    assert (reals["target"] == 1).all() and (fakes["target"] == 0).all()
    for row in dataset.iter_rows(named=True):
        # paths are relative to the workflow directory, so a dataset can be moved whole
        assert (built / row["path"]).is_file() and row["n_frames"] == 3
        assert read_frames(built / row["frames_tar"], row["frames_prefix"], row["frame_indices"],
                           224).shape == (3, 224, 224, 3)
    # c40 is smaller than raw for every video
    wide = dataset.pivot(on="variant", index="video_id", values="size_bytes")
    assert (wide["c40"] < wide["raw"]).all()
    # driving crops are 256x256 with their landmark tracks; one log per job
    driving = pl.read_parquet(results / "manifests" / "driving.parquet")
    yaw = driving.filter(pl.col("action") == "yaw").row(0, named=True)
    crop = cv2.VideoCapture(str(built / yaw["video_path"]))
    assert (crop.get(cv2.CAP_PROP_FRAME_WIDTH), crop.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (256, 256)
    assert (built / yaw["track_path"]).is_file()
    assert (results / "logs" / "driving_shard" / "0.log").stat().st_size > 0
    assert (results / "logs" / "generate_shard" / "0.log").stat().st_size > 0
    rates = pl.read_csv(results / "liveness" / "spoof_rates.csv")
    assert set(rates["action"]) == set(config["actions"])
    # decoded videos keep their frame count through compression
    for row in dataset.filter(pl.col("variant") == "c40").head(3).iter_rows(named=True):
        raw = read_video(built / row["raw_path"])
        assert len(read_video(built / row["path"])) == len(raw)
    # fakes carry their liveness verdicts and generator
    assert fakes["liveness_passed"].all() and fakes["generator"].eq("landmark_warp").all()


def test_exports_agree_with_the_manifest(built: Path):
    results = built / "results"
    dataset = pl.read_parquet(results / "dataset" / "dataset.parquet")
    card = (results / "dataset" / "README.md").read_text()
    assert "real = 1" in card and "config sha256" in card
    reals = dataset.filter((pl.col("label") == "real") & (pl.col("variant") == "raw")).height
    assert f"{reals} real" in card
    # the PyTorch dataset reads the frames with the paper's labels
    train = FrameDataset(dataset, split="train", variants="c40", size=224, root=built)
    image, target, _ = train[0]
    assert image.shape == (3, 224, 224) and 0 <= float(image.min()) < float(image.max()) <= 1
    expected = dataset.filter((pl.col("split") == "train") & (pl.col("variant") == "c40"))
    assert len(train) == expected["n_frames"].sum()
    assert sorted({t for _, t, _ in train.items}) == sorted(set(expected["target"]))


def deepfakebench_checkout(export: Path, root: Path) -> dict[str, int]:
    """A DeepfakeBench checkout set up as the README says: the export's LMDBs (or rgb/ tree)
    linked into datasets/lmdb/ (datasets/rgb/), the JSONs copied to preprocessing/dataset_json/,
    label_dict.yaml's lines appended under label_dict (after two of DeepfakeBench's own);
    returns that label_dict."""
    folder = "lmdb" if (export / "lmdb").is_dir() else "rgb"
    (root / "datasets" / folder).mkdir(parents=True)
    for dataset in (export / folder).iterdir():
        (root / "datasets" / folder / dataset.name).symlink_to(dataset.resolve())
    shutil.copytree(export / "dataset_json", root / "preprocessing" / "dataset_json")
    ours = (export / "label_dict.yaml").read_text()
    return yaml.safe_load("label_dict:\n  DFD_fake: 1\n  DFD_real: 0\n" + ours)["label_dict"]


@pytest.mark.skipif(not os.environ.get("DFMNIST_DEEPFAKEBENCH"),
                    reason="set DFMNIST_DEEPFAKEBENCH to a DeepfakeBench checkout (and have "
                           "its loader's requirements importable) to run its own loader")
@pytest.mark.parametrize("layout", ["lmdb", "folders"])
def test_deepfakebench_own_loader_reads_the_export(built: Path, layout: str, tmp_path: Path):
    """DeepfakeBench's DeepfakeAbstractBaseDataset itself, from a checkout the user names."""
    export = (built / "results" / "deepfakebench" if layout == "lmdb"
              else folders_export(built, tmp_path))
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "deepfakebench_own_loader.py"),
         os.environ["DFMNIST_DEEPFAKEBENCH"], str(export)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "OK: " in proc.stdout, \
        proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"({layout})" in proc.stdout


def folders_export(built: Path, tmp_path: Path) -> Path:
    """The build's export with `targets.deepfakebench.format: folders`, written beside it (its
    unpacked tar members in a store of its own: the build's store stays as built)."""
    from dfmnist.targets.annotations import blank_mask
    from dfmnist.targets.deepfakebench.layout import write_deepfakebench_folders

    results = built / "results"
    config = yaml.safe_load((built / "config.yaml").read_text())
    # the tables name store files relative to the work directory
    manifest = pl.read_parquet(results / "dataset" / "dataset.parquet").with_columns(
        (pl.lit(f"{built}/") + pl.col("frames_tar")).alias("frames_tar"))
    annotations = pl.concat([pl.read_parquet(p) for p in (results / "annotations").glob("*/*")])
    annotations = annotations.with_columns(
        (pl.lit(f"{built}/") + pl.col("annotations_tar")).alias("annotations_tar"))
    store = Store(tmp_path / "store")
    size = config["targets"]["frames"]["sizes"][0]
    out = tmp_path / "deepfakebench"
    write_deepfakebench_folders(manifest, annotations, out, config["targets"]["dataset_name"],
                                config["targets"]["deepfakebench"]["path_prefix"], size,
                                blank_mask(size, store), store)
    return out


def check_deepfakebench_export(built: Path, export: Path, root: Path) -> None:
    """Every JSON of the export, read by DeepfakeBench's rules as its loader would (LMDB or
    folders, whichever the export is): every frame, its mask and its landmarks."""
    from deepfakebench_rules import (
        collect,
        derived_paths,
        load_item,
        load_item_lmdb,
        open_lmdb,
    )

    results = built / "results"
    dataset = pl.read_parquet(results / "dataset" / "dataset.parquet")
    config = yaml.safe_load((built / "config.yaml").read_text())
    name = config["targets"]["dataset_name"]
    use_lmdb = (export / "lmdb").is_dir()
    label_dict = deepfakebench_checkout(export, root)
    ours = {k: v for k, v in label_dict.items() if k.startswith(name)}
    assert ours == {f"{name}_real": 0, f"{name}_landmark_warp": 1}  # fake = 1 in DeepfakeBench
    folder = root / "preprocessing" / "dataset_json"
    stems = sorted(p.stem for p in folder.glob("*.json"))
    assert stems == sorted(f"{name}_{v}" for v in dataset["variant"].unique())
    for stem in stems:
        tree = json.loads((folder / f"{stem}.json").read_text())
        assert list(tree) == [stem] and set(tree[stem]) == set(ours)
        variant = stem.removeprefix(f"{name}_")
        env = open_lmdb(root / "datasets" / "lmdb", stem) if use_lmdb else None
        for split in ("train", "val", "test"):
            items = collect(folder, stem, split, label_dict)
            rows = dataset.filter((pl.col("variant") == variant) & (pl.col("split") == split))
            assert len(items) == rows["n_frames"].sum()
            assert {v for _, _, v in items} == {f"{e['label']}_{video}" for label in tree[stem]
                                                for video, e in tree[stem][label][split].items()}
            # DeepfakeBench's targets: fake 1, real 0, the opposite of ours
            assert sorted({t for _, t, _ in items}) == sorted({1 - t for t in rows["target"]})
            exported = set()
            for frame, target, _ in items:
                if use_lmdb:
                    assert frame.startswith(f"{name}\\{variant}\\")
                    image, mask, landmarks = load_item_lmdb(frame, env)
                    assert mask.shape == (256, 256, 3)  # its LMDB branch decodes masks in colour
                    mask = mask[..., 0]
                    # the loader's own "no landmarks" value; our five points beside it
                    assert landmarks.shape == (81, 2) and not landmarks.any()
                    key = derived_paths(frame)[1].removesuffix(".npy") + ".mtcnn5.npy"
                    with env.begin() as txn:
                        landmarks = np.load(io.BytesIO(txn.get(key.encode())))
                else:
                    assert frame.startswith(f"./datasets/rgb/{name}/")
                    image, mask, landmarks = load_item(frame, root)
                assert image.shape == (256, 256, 3) and mask.shape == (256, 256)
                assert set(np.unique(mask)) <= {0, 255}
                # reals: nothing changed; fakes: the face, not the whole frame
                assert (mask.mean() / 255 > 0.1) == bool(target) and mask.mean() / 255 < 0.9
                assert landmarks.shape == (5, 2) and np.isfinite(landmarks).all()
                assert ((landmarks > 0) & (landmarks < 256)).all()
                exported.add(hashlib.sha256(image.tobytes()).hexdigest())
            # the exported frames are the store's frames, pixel for pixel (the loader decodes
            # BGR, as cv2 does; the store's reader gives RGB)
            stored = {hashlib.sha256(np.ascontiguousarray(f[..., ::-1]).tobytes()).hexdigest()
                      for r in rows.iter_rows(named=True)
                      for f in read_frames(built / r["frames_tar"], r["frames_prefix"],
                                           r["frame_indices"], 256)}
            assert exported == stored
        if env is not None:
            env.close()
        for label in tree[stem]:
            for entry in (e for s in tree[stem][label].values() for e in s.values()):
                # the lists beside `frames` name what the loader derives itself
                masks, landmarks = zip(*(derived_paths(f) for f in entry["frames"]), strict=True)
                assert entry["masks"] == list(masks) and entry["landmarks"] == list(landmarks)


def test_deepfakebench_lmdb_export_by_the_loaders_rules(built: Path, tmp_path: Path):
    export = built / "results" / "deepfakebench"
    check_deepfakebench_export(built, export, tmp_path)
    # the default export is a file per variant's LMDB and its JSON, whatever the frames (and
    # Snakemake's time stamp of a folder output)
    files = sorted(p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file())
    stems = [p.stem for p in (export / "dataset_json").glob("*.json")]
    assert files == sorted([".snakemake_timestamp", "label_dict.yaml",
                            *(f"dataset_json/{s}.json" for s in stems),
                            *(f"lmdb/{s}_lmdb/data.mdb" for s in stems)])


def test_deepfakebench_folder_export_by_the_loaders_rules(built: Path, tmp_path: Path):
    export = folders_export(built, tmp_path / "out")
    check_deepfakebench_export(built, export, tmp_path / "dfb")
    # every exported file is a link into a store, not a copy
    for path in (export / "rgb").rglob("*"):
        if path.is_file():
            assert path.stat().st_nlink > 1 or (
                path.is_symlink() and (tmp_path / "out" / "store") in path.resolve().parents), path


def test_faceforensics_layout_and_pair_splits(built: Path):
    results = built / "results"
    dataset = pl.read_parquet(results / "dataset" / "dataset.parquet")
    ff = results / "faceforensics"
    splits = {s: json.loads((ff / "splits" / f"{s}.json").read_text())
              for s in ("train", "val", "test")}
    # FF++'s split files: lists of [target, source] string pairs
    assert all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
               for pairs in splits.values() for p in pairs)
    # a tool maps each name and each joined pair to its split (as DeepfakeBench's rearrange
    # does for FF++); every exported video must land in its own manifest split
    mode = {}
    for split, pairs in splits.items():
        for a, b in pairs:
            mode.update({a: split, b: split, f"{a}_{b}": split, f"{b}_{a}": split})
    for row in dataset.iter_rows(named=True):
        top, method = (("original_sequences", "voxceleb1") if row["label"] == "real"
                       else ("manipulated_sequences", "landmark_warp"))
        videos = ff / top / method / row["variant"] / "videos"
        name = row["source_id"].replace("/", "-")
        if row["label"] == "fake":
            name += f"_{row['action']}-{row['take'].replace('/', '-')}"
        assert (videos / f"{name}.mp4").samefile(built / row["path"])  # a hard link
        assert mode[name] == row["split"]
    files = list(ff.glob("*/*/*/videos/*.mp4"))
    assert len(files) == dataset.height


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


def test_bad_config_fails_with_one_line_naming_the_key(tmp_path: Path):
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    cases = [
        (lambda c: c.update(actions=["blink", "moonwalk"]), "actions"),
        (lambda c: c["plan"].update(per_action=-1), "plan.per_action"),
        (lambda c: c["demo"].update(enabled=False), "data.sources_dir"),
        (lambda c: (c["demo"].update(enabled=False),
                    c["data"].update(sources_dir=str(tmp_path / "nope"),
                                     driving_dir=str(tmp_path))), "directory not found"),
        (lambda c: c["compress"].update(varaints={}), "varaints"),
        (lambda c: c["generate"].update(generator="fomm"), "generate.fomm.checkpoint"),
        (lambda c: c["generate"].update(generator="fomm", fomm={
            "checkpoint": str(tmp_path / "missing" / "vox-cpk.pth.tar")}),
         "missing/vox-cpk.pth.tar"),
    ]
    for case, (mutate, needle) in enumerate(cases):
        config = yaml.safe_load(yaml.safe_dump(base))
        mutate(config)
        workdir = tmp_path / f"case{case}"
        workdir.mkdir()
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        proc = run_snakemake(workdir, "-n", check=False)
        assert proc.returncode != 0
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("config error")]
        assert len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
        if "fomm" in needle:  # says where the original checkpoint is published
            assert "first-order-model" in lines[0]
    shutil.rmtree(tmp_path, ignore_errors=True)

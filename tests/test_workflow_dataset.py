"""The tiny demo's dataset as Snakemake builds it (real MTCNN, real ffmpeg, real files): a
consistent manifest, its card and PyTorch reader, and its exports read as their users would,
DeepfakeBench (by its loader's rules, and by its own loader when DFMNIST_DEEPFAKEBENCH names a
checkout) and FaceForensics++'s layout and split files."""

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
from dfmnist.storage.video import read_video
from dfmnist.targets.frames import read_frames
from dfmnist.train.data import FrameDataset

from tiny_demo import REPO, clone

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_demo: Path) -> Path:
    """A clone of the session's tiny demo build, which these tests only read."""
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

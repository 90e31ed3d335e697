"""Source indexing over VoxCeleb1-style trees (clips and frame folders) and auditable scores."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest

from dfmnist.sources.scoring import score_shard, with_source_images
from dfmnist.sources.selection import clip_digest, sample_clip, select_sources
from dfmnist.storage.discovery import source_clips
from dfmnist.storage.store import Store
from dfmnist.storage.tars import shard_samples
from dfmnist.storage.video import read_video


def save_rgb(path: Path, image: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def tree(tmp_path_factory, astronaut, carphone_path) -> Path:
    root = tmp_path_factory.mktemp("vox")
    (root / "id_a" / "v1" / "c2").mkdir(parents=True)
    shutil.copy(carphone_path, root / "id_a" / "v1" / "c1.mp4")
    for i, frame in enumerate(read_video(carphone_path, max_frames=30).frames[::5]):
        save_rgb(root / "id_a" / "v1" / "c2" / f"{i:05d}.jpg", frame)
    # astronaut frames: tilted, tilted the other way, upright and sharp, upright but blurred
    face = cv2.resize(astronaut[0:256, 128:384], (256, 256))
    folder = root / "id_b" / "1.6" / "yt_xyz"
    folder.mkdir(parents=True)
    for i, image in enumerate([rotated(face, 25), rotated(face, -20), face,
                               cv2.GaussianBlur(face, (0, 0), 3)]):
        save_rgb(folder / f"{i:05d}.png", image)
    (root / "id_b" / "1.6" / "notes.txt").write_text("not a clip")
    (root / "id_b" / "1.6" / "empty").mkdir()
    return root


def test_index_finds_clips_and_frame_folders(tree):
    clips = source_clips(tree)[0]
    assert list(clips) == ["id_a/v1/c1", "id_a/v1/c2", "id_b/1.6/yt_xyz"]
    assert clips["id_a/v1/c1"].is_file() and clips["id_b/1.6/yt_xyz"].is_dir()
    frames, idx, total = sample_clip(clips["id_a/v1/c2"], 3)
    assert frames.shape == (3, 144, 176, 3) and list(idx) == [0, 2, 5] and total == 6


def test_frame_folder_digest_follows_its_images(tree, tmp_path):
    folder = source_clips(tree)[0]["id_b/1.6/yt_xyz"]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert clip_digest(copy) == clip_digest(folder)
    image = cv2.imread(str(copy / "00000.png"))
    image[0, 0] = 255 - image[0, 0]
    cv2.imwrite(str(copy / "00000.png"), image)
    assert clip_digest(copy) != clip_digest(folder)


def test_scores_pick_the_upright_sharp_frame_and_are_auditable(tree, tmp_path, detector):
    store = Store(tmp_path / "store")
    clips = source_clips(tree)[0]
    records = score_shard(clips, detector, 4, 0.9, store)
    by_id = {r["clip_id"]: r for r in records}
    astro = by_id["id_b/1.6/yt_xyz"]
    assert astro["faces_found"] == 4 and astro["frame"] == 2  # upright and sharp wins
    frames = pl.DataFrame(astro["frames"])
    assert frames["frame"].to_list() == [0, 1, 2, 3]
    # tilted frames lose on roll, the blurred one on sharpness, with the same pose
    assert abs(frames["roll"][0]) > 15 and abs(frames["roll"][1]) > 10
    assert abs(frames["roll"][2]) < 5
    assert frames["sharpness"][3] < frames["sharpness"][2] / 3
    assert frames["score"].arg_max() == 2

    table = with_source_images(select_sources(pl.DataFrame(records, infer_schema_length=None),
                                              count=2, seed=0), store)
    assert table.filter("selected")["identity"].sort().to_list() == ["id_a", "id_b"]
    assert table.filter(pl.col("identity") == "id_a")["identity_rank"].sort().to_list() == [1, 2]
    # a selected clip's best frame is a PNG file of its own, the frame itself; the others
    # have none (their frames stay in the shard's tar)
    selected = table.filter("selected")
    astro_path = selected.filter(pl.col("clip_id") == "id_b/1.6/yt_xyz")["image_path"][0]
    stored = cv2.cvtColor(cv2.imread(astro_path), cv2.COLOR_BGR2RGB)
    original = cv2.cvtColor(cv2.imread(str(tree / "id_b/1.6/yt_xyz/00002.png")),
                            cv2.COLOR_BGR2RGB)
    assert np.array_equal(stored, original)
    assert all(Path(p).is_file() for p in selected["image_path"])
    assert table.filter(~pl.col("selected"))["image_path"].is_null().all()
    chosen_a = table.filter((pl.col("identity") == "id_a") & pl.col("selected")).row(0, named=True)
    other_a = table.filter((pl.col("identity") == "id_a") & ~pl.col("selected")).row(0, named=True)
    assert chosen_a["identity_rank"] == 1 and chosen_a["score"] >= other_a["score"]
    # every sampled frame's scores travel with the selection
    assert table.schema["frames"] == pl.List(pl.Struct({
        "frame": pl.Int64, "found": pl.Boolean, "prob": pl.Float64, "yaw": pl.Float64,
        "pitch": pl.Float64, "roll": pl.Float64, "frontal": pl.Float64,
        "sharpness": pl.Float64, "score": pl.Float64}))


def test_a_shard_that_gains_a_clip_scores_only_that_clip(tree, tmp_path, detector):
    store = Store(tmp_path / "store")
    clips = source_clips(tree)[0]
    first = {c: clips[c] for c in ("id_a/v1/c1", "id_b/1.6/yt_xyz")}
    before = score_shard(first, detector, 4, 0.9, store)
    assert all(r["computed"] for r in before)
    # the shard gains a clip and one that cannot be read: a new shard item in which only the
    # new clip is scored, the others copied from the older item; the unreadable one is a row
    # with its reason and in no item
    (tree / "id_a" / "v1" / "broken.mp4").write_bytes(b"")
    grown = {**clips, "id_a/v1/broken": tree / "id_a" / "v1" / "broken.mp4"}
    try:
        after = {r["clip_id"]: r for r in score_shard(grown, detector, 4, 0.9, store)}
    finally:
        (tree / "id_a" / "v1" / "broken.mp4").unlink()
    assert [c for c, r in after.items() if r["computed"]] == ["id_a/v1/c2"]
    broken = after["id_a/v1/broken"]
    assert broken["reason"] == "empty file (0 bytes)" and not broken["computed"]
    for old in before:
        assert after[old["clip_id"]] == old | {"computed": False, "frames_tar":
                                               after[old["clip_id"]]["frames_tar"]}
    shards = sorted(store.keys("source_frame"))
    assert len(shards) == 2
    samples = [shard_samples(store, "source_frame", shard) for shard in shards]
    grown_shard = next(s for s in samples if len(s) == 3)
    assert broken["key"] not in grown_shard
    assert sorted(s["made"] for s in grown_shard.values()) == ["computed", "copied", "copied"]
    # the unchanged shard again: nothing scored
    again = score_shard(clips, detector, 4, 0.9, store)
    assert not any(r["computed"] for r in again) and len(store.keys("source_frame")) == 2

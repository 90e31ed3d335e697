"""Frames stored per shard: one tar per (variant, shard) on real encoded video, read by
FrameDataset; the store's file count grows with shards, not with videos."""

from pathlib import Path

import polars as pl
import pytest
import torch

from dfmnist.storage.files import sha256_file
from dfmnist.storage.store import Store
from dfmnist.storage.tars import member, open_tar, shard_samples
from dfmnist.storage.video import Encoding, read_video, write_video
from dfmnist.targets.frames import FRAMES, extract_shard, frame_member
from dfmnist.train.data import FrameDataset

SAMPLING = {"sampling": "uniform", "count": 3, "sizes": [128, 64]}


@pytest.fixture(scope="module")
def clips(tmp_path_factory, carphone_path: Path) -> list[Path]:
    """Five different real clips: 128x128 windows at different places of the carphone video."""
    video = read_video(carphone_path, max_frames=12)
    folder = tmp_path_factory.mktemp("clips")
    return [write_video(folder / f"clip{i}.mp4", video.frames[:, :128, 6 * i:6 * i + 128],
                        video.fps, Encoding(crf=18, preset="veryfast")) for i in range(5)]


def videos(paths: list[Path]) -> pl.DataFrame:
    return pl.DataFrame({"video_id": [f"real/clip{p.stem[-1]}" for p in paths],
                         "variant": ["raw"] * len(paths), "path": [str(p) for p in paths],
                         "sha256": [sha256_file(p) for p in paths]})


def store_files(store: Store) -> int:
    return sum(1 for p in (store.root / FRAMES).rglob("*") if p.is_file())


def test_a_shard_is_one_container_whatever_its_videos(tmp_path: Path, clips: list[Path]):
    store = Store(tmp_path)
    one = extract_shard(videos(clips[:1]), SAMPLING, store)
    assert one["computed"].all() and store_files(store) == 2  # frames.tar and meta.json
    four = extract_shard(videos(clips[1:]), SAMPLING, store)
    assert four["frames_tar"].n_unique() == 1 and four["frames_prefix"].n_unique() == 4
    # a shard of four videos costs the volume what a shard of one does
    assert len(store.keys(FRAMES)) == 2 and store_files(store) == 4


def test_frame_dataset_reads_the_shard_container(tmp_path: Path, clips: list[Path]):
    table = extract_shard(videos(clips[:3]), SAMPLING, Store(tmp_path))
    manifest = table.with_columns(
        pl.Series("target", [1, 0, 1]), pl.Series("label", ["real", "fake", "real"]),
        pl.lit("train").alias("split"), pl.lit(None, pl.String).alias("action"))
    dataset = FrameDataset(manifest, size=128, root="/")
    assert len(dataset) == 9
    for i in range(len(dataset)):
        image, target, video = dataset[i]
        row = dataset.videos.row(video, named=True)
        j = dataset.items[i][0].index
        # frames at full size are the decoded frames themselves (lossless PNG in the tar)
        expected = read_video(clips[int(row["video_id"][-1])]).frames[j]
        assert torch.equal(image, torch.from_numpy(expected.transpose(2, 0, 1)).float() / 255)
        assert target == row["target"]
    with pytest.raises(FileNotFoundError, match="no frame 0 of size 32"):
        FrameDataset(manifest, size=32, root="/")


def test_changing_one_video_copies_the_others(tmp_path: Path, clips: list[Path]):
    store = Store(tmp_path)
    before = extract_shard(videos(clips[:3]), SAMPLING, store)
    again = extract_shard(videos(clips[:3]), SAMPLING, store)
    assert again.equals(before.with_columns(pl.lit(False).alias("computed")))
    # clip 2 replaced by clip 3: a new shard item, only the new video decoded
    after = extract_shard(videos([*clips[:2], clips[3]]), SAMPLING, store)
    assert after["computed"].to_list() == [False, False, True]
    shard = Path(after["frames_tar"][0]).parent.name
    made = {k: s["made"] for k, s in shard_samples(store, FRAMES, shard).items()}
    assert made == dict(zip(after["key"], ["copied", "copied", "computed"], strict=True))
    old, new = open_tar(before["frames_tar"][0]), open_tar(after["frames_tar"][0])
    for prefix, indices in before.head(2).select("frames_prefix", "frame_indices").rows():
        for j in indices:
            for size in SAMPLING["sizes"]:
                name = member(prefix, frame_member(j, size))
                assert new.read(name) == old.read(name)
    assert not any(n.startswith(before["frames_prefix"][2]) for n in new.members)
    assert len(store.keys(FRAMES)) == 2 and store_files(store) == 4


def test_a_new_layout_recomputes_what_an_older_layout_holds(tmp_path: Path):
    """Samples are copied only from shards of the same layout: bumping a layout rebuilds
    every sample even where its key stayed the same."""
    from dfmnist.storage.tars import ensure_shard

    calls: list[str] = []

    def compute(sample: str):
        def run():
            calls.append(sample)
            return [("data.txt", sample.encode())], {"n": len(sample)}
        return run

    store = Store(tmp_path)
    samples = ["alpha", "beta"]
    ensure_shard(store, "toy", "layout-1", "toy.tar", {s: compute(s) for s in samples})
    ensure_shard(store, "toy", "layout-1", "toy.tar", {s: compute(s) for s in [*samples, "c"]})
    assert calls == ["alpha", "beta", "c"]  # the second shard copied alpha and beta
    key, tar = ensure_shard(store, "toy", "layout-2", "toy.tar",
                            {s: compute(s) for s in samples})
    assert calls == ["alpha", "beta", "c", "alpha", "beta"]
    assert {s: info["made"] for s, info in shard_samples(store, "toy", key).items()} == {
        "alpha": "computed", "beta": "computed"}
    assert open_tar(tar).read(member("beta", "data.txt")) == b"beta"

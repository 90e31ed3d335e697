"""Compression, frame extraction and source scoring on real encoded video."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dfmnist.compress import compress_shard, encoding_for
from dfmnist.frames import extract_shard, uniform_indices
from dfmnist.io import Encoding, read_video, sha256_file, write_video
from dfmnist.sources import score_clip, select_sources
from dfmnist.store import Store


@pytest.fixture(scope="module")
def real_clip(tmp_path_factory, carphone_path: Path) -> Path:
    video = read_video(carphone_path, max_frames=30)
    frames = video.frames[:, :, 8:152]  # 144x144, even sizes
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, video.fps,
                       Encoding(crf=18, preset="veryfast"))


def test_variants_lower_bitrate_and_are_reused(tmp_path: Path, real_clip: Path):
    store = Store(tmp_path)
    videos = pl.DataFrame({"video_id": ["real/a"], "label": ["real"], "path": [str(real_clip)],
                           "sha256": [sha256_file(real_clip)]})
    rates = {}
    for name, crf in (("raw", 0), ("c23", 23), ("c40", 40)):
        table = compress_shard(videos, name, encoding_for({"crf": crf}), store)
        assert table["computed"].to_list() == [True]
        rates[name] = table["bitrate_kbps"][0]
        decoded = read_video(table["path"][0])
        assert decoded.frames.shape == (30, 144, 144, 3)
    assert rates["raw"] > rates["c23"] > rates["c40"] > 0
    again = compress_shard(videos, "c23", encoding_for({"crf": 23}), store)
    assert again["computed"].to_list() == [False]
    assert len(store.keys("compressed")) == 3


def test_frames_are_uniform_and_integer_named(tmp_path: Path, real_clip: Path):
    assert uniform_indices(30, 4).tolist() == [0, 10, 19, 29]
    assert uniform_indices(3, 8).tolist() == [0, 1, 2]
    videos = pl.DataFrame({"video_id": ["real/a"], "variant": ["raw"], "path": [str(real_clip)],
                           "sha256": [sha256_file(real_clip)]})
    table = extract_shard(videos, 4, Store(tmp_path))
    names = [Path(p).name for p in table["frame_paths"][0]]
    assert names == ["0000.png", "0010.png", "0019.png", "0029.png"]


def test_score_clip_picks_a_face_frame(tmp_path: Path, real_clip: Path, detector):
    store = Store(tmp_path)
    record = score_clip("carphone/v1/00001", real_clip, detector, 6, 0.9, store)
    assert record["computed"] and record["faces_found"] == 6 and record["sampled"] == 6
    assert 0 < record["frontal"] <= 1 and record["prob"] > 0.9
    scores = pl.read_parquet(Path(store.item_dir("source_frame", record["key"]))
                             / "scores.parquet")
    assert record["score"] == pytest.approx(scores["score"].max())
    assert len(record["landmarks"]) == 10 and Path(record["image_path"]).is_file()
    again = score_clip("carphone/v1/00001", real_clip, detector, 6, 0.9, store)
    assert not again["computed"] and again["key"] == record["key"]


def test_selection_is_balanced_over_identities():
    rows = [{"clip_id": f"{i}/v/{c}", "identity": i, "faces_found": 1, "score": s}
            for i, n in (("a", 5), ("b", 1), ("c", 3))
            for c, s in zip(range(n), np.linspace(1, 0, n), strict=True)]
    table = select_sources(pl.DataFrame(rows), count=5, seed=0)
    chosen = table.filter("selected")
    assert chosen.height == 5
    per = dict(chosen.group_by("identity").len().iter_rows())
    assert per == {"a": 2, "b": 1, "c": 2}
    # within an identity the best-scoring clips are taken first
    assert set(chosen.filter(pl.col("identity") == "a")["clip_id"]) == {"a/v/0", "a/v/1"}
    assert select_sources(pl.DataFrame(rows), 0, 0)["selected"].all()

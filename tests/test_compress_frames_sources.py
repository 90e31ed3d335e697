"""Compression, frame extraction and source scoring on real encoded video."""

import hashlib
import tarfile
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest

from dfmnist.compress import (
    PRESETS,
    compress_shard,
    encoding_for,
    quality_against,
    variants_from_config,
)
from dfmnist.sources.scoring import score_shard
from dfmnist.sources.selection import select_sources
from dfmnist.storage.files import sha256_file
from dfmnist.storage.store import Store
from dfmnist.storage.tars import open_tar
from dfmnist.storage.video import Encoding, read_video, write_video
from dfmnist.targets.frames import (
    FrameTar,
    extract_shard,
    read_frames,
    sample_indices,
    uniform_indices,
)


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
    rates, psnr, ssim = {}, {}, {}
    for name, crf in (("raw", 0), ("c23", 23), ("c40", 40)):
        table = compress_shard(videos, name, encoding_for({"crf": crf}), store)
        assert table["computed"].to_list() == [True]
        rates[name], psnr[name], ssim[name] = table.select("bitrate_kbps", "psnr_db", "ssim").row(0)
        decoded = read_video(table["path"][0])
        assert decoded.frames.shape == (30, 144, 144, 3)
        assert f"-crf {crf} " in table["ffmpeg_args"][0] + " "
        assert "{input}" in table["ffmpeg_args"][0] and table["ffmpeg_version"][0].startswith(
            "ffmpeg version")
    assert rates["raw"] > rates["c23"] > rates["c40"] > 0
    assert psnr["raw"] > psnr["c23"] > psnr["c40"] > 20
    assert ssim["raw"] >= ssim["c23"] > ssim["c40"] > 0.5
    again = compress_shard(videos, "c23", encoding_for({"crf": 23}), store)
    assert again["computed"].to_list() == [False]
    assert len(store.keys("compressed")) == 3


def test_presets_and_identical_video_quality(real_clip: Path):
    assert list(variants_from_config({"preset": "dfdm", "variants": {}})) == [
        "crf0", "crf10", "crf23"]
    assert variants_from_config({"preset": "paper"}) == PRESETS["paper"]
    mine = {"x": {"crf": 30}}
    assert variants_from_config({"preset": "dfdm", "variants": mine}) == mine
    psnr, ssim = quality_against(real_clip, real_clip)
    assert psnr == float("inf") and ssim == pytest.approx(1.0)


def test_frames_are_sampled_resized_and_integer_named(tmp_path: Path, real_clip: Path):
    assert uniform_indices(30, 4).tolist() == [0, 10, 19, 29]
    assert uniform_indices(3, 8).tolist() == [0, 1, 2]
    assert sample_indices(30, {"sampling": "every_k", "k": 7}).tolist() == [0, 7, 14, 21, 28]
    videos = pl.DataFrame({"video_id": ["real/a"], "variant": ["raw"], "path": [str(real_clip)],
                           "sha256": [sha256_file(real_clip)]})
    sampling = {"sampling": "uniform", "count": 4, "k": 5, "sizes": [144, 64]}
    table = extract_shard(videos, sampling, Store(tmp_path))
    indices = table["frame_indices"][0].to_list()
    assert indices == [0, 10, 19, 29]
    frames_tar, prefix = Path(table["frames_tar"][0]), table["frames_prefix"][0]
    assert frames_tar.name == "frames.tar" and prefix == table["key"][0]
    assert sorted(p.name for p in frames_tar.parent.iterdir()) == ["frames.tar", "meta.json"]
    # WebDataset layout (webdataset/tariterators.py: a member's sample key is its path up to
    # the first dot of its base name, the rest its field; a sample ends where the key changes,
    # so a sample's members must be adjacent): one sample per frame, one field per size
    with tarfile.open(frames_tar) as tar:
        names = tar.getnames()
    keys = [n.split(".", 1)[0] for n in names]
    assert [k for i, k in enumerate(keys) if i == 0 or k != keys[i - 1]] == \
        [f"{prefix}/0000", f"{prefix}/0010", f"{prefix}/0019", f"{prefix}/0029"]
    assert {n.split(".", 1)[1] for n in names} == {"144.png", "64.png"}
    for size in (144, 64):
        assert read_frames(frames_tar, prefix, indices, size).shape == (4, size, size, 3)
    # the full-size frame is the decoded frame itself (lossless PNG)
    decoded = read_video(real_clip).frames[10]
    assert np.array_equal(FrameTar(frames_tar, prefix).rgb(10, 144), decoded)
    with pytest.raises(FileNotFoundError, match="no frame 11 of size 144"):
        FrameTar(frames_tar, prefix).png(11, 144)


def test_score_shard_picks_a_face_frame_and_is_reused(tmp_path: Path, real_clip: Path,
                                                    detector):
    store = Store(tmp_path)
    [record] = score_shard({"carphone/v1/00001": real_clip}, detector, 6, 0.9, store)
    assert record["computed"] and record["faces_found"] == 6 and record["sampled"] == 6
    assert 0 < record["frontal"] <= 1 and record["prob"] > 0.9
    assert record["score"] == pytest.approx(max(f["score"] for f in record["frames"]))
    assert len(record["landmarks"]) == 10 and record["image_path"] is None
    # the shard is one store item: the best frames' tar and the meta holding the scores
    assert sorted(p.name for p in (tmp_path / "source_frame").rglob("*") if p.is_file()) == [
        "frames.tar", "meta.json"]
    png = open_tar(record["frames_tar"]).read(record["frame_member"])
    assert hashlib.sha256(png).hexdigest() == record["image_sha256"]
    frame = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == (144, 144, 3)
    again = score_shard({"carphone/v1/00001": real_clip}, detector, 6, 0.9, store)
    assert not again[0]["computed"] and again[0] == {**record, "computed": False}


def test_selection_is_balanced_over_identities():
    rows = [{"clip_id": f"{i}/v/{c}", "identity": i, "faces_found": 1, "score": s,
             "reason": None}
            for i, n in (("a", 5), ("b", 1), ("c", 3))
            for c, s in zip(range(n), np.linspace(1, 0, n), strict=True)]
    # the best score of all, but rejected (a clip too short to be a real video)
    rows.append({"clip_id": "a/v/9", "identity": "a", "faces_found": 1, "score": 2.0,
                 "reason": "too short: 3 frames, fewer than sources.min_frames (8)"})
    table = select_sources(pl.DataFrame(rows), count=5, seed=0)
    chosen = table.filter("selected")
    assert chosen.height == 5
    per = dict(chosen.group_by("identity").len().iter_rows())
    assert per == {"a": 2, "b": 1, "c": 2}
    # within an identity the best-scoring clips are taken first
    assert set(chosen.filter(pl.col("identity") == "a")["clip_id"]) == {"a/v/0", "a/v/1"}
    everything = select_sources(pl.DataFrame(rows), 0, 0)
    assert everything.filter(pl.col("reason").is_null())["selected"].all()
    assert not everything.filter(pl.col("clip_id") == "a/v/9")["selected"].any()

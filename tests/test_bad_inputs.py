"""Damaged, odd and hostile inputs on the driving and the source side, through real Snakemake
runs: every unusable file is a row with a reason in words a user understands, hidden files and
non-videos are ignored and counted, two files with one id stop the build with one line naming
both, and the rest of the dataset builds (exit 0)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import yaml

from dfmnist.config.checks import ConfigError, driving_takes, source_clips
from dfmnist.storage.video import Encoding, ffmpeg_exe, read_video, write_video

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.workflow


def face_frames(face: np.ndarray, n: int, height: int = 240, width: int = 320) -> np.ndarray:
    frames = np.full((n, height, width, 3), 110, np.uint8)
    fh, fw = face.shape[:2]
    for t in range(n):
        y, x = (height - fh) // 2, (width - fw) // 2 + t % 5
        frames[t, y : y + fh, x : x + fw] = face
    return frames


def truncated_copy(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def faststart(src: Path, dst: Path) -> Path:
    """The index first (as phones and streaming copies write it), so a cut keeps the header."""
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(src), "-c", "copy",
                    "-movflags", "+faststart", str(dst)], check=True)
    return dst


def make_driving(root: Path, face: np.ndarray, tmp: Path) -> dict[str, str]:
    """A driving tree with two good takes and one of each kind of damage; the reason each bad
    take must be rejected with (a fragment of it)."""
    blink, yaw = root / "blink", root / "yaw"
    blink.mkdir(parents=True)
    yaw.mkdir()
    good = write_video(blink / "good take (1) é.mp4", face_frames(face, 20), 25.0,
                       Encoding(crf=18, preset="veryfast"))
    write_video(yaw / "{take}.mp4", face_frames(face, 20), 25.0,
                Encoding(crf=18, preset="veryfast"))
    long_take = write_video(tmp / "long.mp4", face_frames(face, 60), 25.0,
                            Encoding(crf=18, preset="veryfast"))
    (blink / "zero.mp4").write_bytes(b"")
    (blink / "notes.mp4").write_text("shot list: blink twice, then nod\n" * 8)
    truncated_copy(good, blink / "unfinished.mp4")  # no index: the phone died while recording
    truncated_copy(faststart(long_take, tmp / "fast.mp4"), blink / "cut_copy.mp4", 0.7)
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=duration=1", str(blink / "voice_memo.m4v")], check=True)
    write_video(blink / "one_frame.mp4", face_frames(face, 1), 25.0)
    write_video(yaw / "empty_room.mp4", np.full((20, 240, 320, 3), 90, np.uint8), 25.0)
    os.symlink(tmp / "gone.mp4", yaw / "moved.mp4")  # a link into a folder that was moved
    os.mkfifo(yaw / "stream.mp4")  # reading a pipe would wait forever
    # company that phones and other systems bring along: ignored and counted
    (blink / "._good take (1) é.mp4").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)
    (blink / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (yaw / "README.txt").write_text("takes from volunteer 7")
    return {
        "blink/zero": "empty file (0 bytes)",
        "blink/notes": "not a video file (it holds text)",
        "blink/unfinished": "damaged or truncated container",
        "blink/cut_copy": "damaged or truncated video data",
        "blink/voice_memo": "no video stream",
        "blink/one_frame": "too short: 1 frame, fewer than driving.min_frames (8)",
        "yaw/empty_room": "no face found in any of 20 frames",
        "yaw/moved": "broken link",
        "yaw/stream": "not a regular file",
    }


def make_sources(root: Path, face: np.ndarray, carphone: Path, tmp: Path) -> dict[str, str]:
    good = root / "id00001" / "v1"
    bad = root / "id00002" / "v2"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    frames = read_video(carphone, max_frames=24).frames
    write_video(good / "00001.mp4", frames, 25.0, Encoding(crf=18, preset="veryfast"))
    folder = good / "00002"
    folder.mkdir()
    for i, image in enumerate(frames[:10]):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (folder / ".DS_Store").write_bytes(b"junk")
    (bad / "00001.mp4").write_bytes(b"")
    (bad / "00002.mp4").write_text("<html>404 Not Found</html>\n" * 4)
    truncated_copy(good / "00001.mp4", bad / "00003.mp4")
    write_video(bad / "00004.mp4", frames[:3], 25.0)
    write_video(bad / "00005.mp4", np.full((12, 144, 176, 3), 60, np.uint8), 25.0)
    broken = bad / "00006"
    broken.mkdir()
    for i, image in enumerate(frames[:10]):
        cv2.imwrite(str(broken / f"{i:05d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (broken / "00000.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # cut short
    (root / "id00002" / "._v2").write_bytes(b"\x00")
    return {
        "id00002/v2/00001": "empty file (0 bytes)",
        "id00002/v2/00002": "not a video file (it holds text)",
        "id00002/v2/00003": "damaged or truncated container",
        "id00002/v2/00004": "too short: 3 frames, fewer than sources.min_frames (8)",
        "id00002/v2/00005": "no face found in any of 4 sampled frames",
        "id00002/v2/00006": "damaged frame image 00000.png",
    }


def run(work: Path, *targets: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
           "--cores", "2", *targets]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def base_config(sources: Path, driving: Path) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["actions"] = ["blink", "yaw"]
    config["demo"]["enabled"] = False
    config["data"] = {"sources_dir": str(sources), "driving_dir": str(driving)}
    config["liveness"]["policy"] = {"blink": ["local"], "yaw": ["local"]}
    config["driving"].update(smooth_window=3, min_frames=8, shards=3)
    config["sources"].update(count=0, frames_per_clip=4, min_frames=8, shards=2)
    config["plan"].update(per_action=1, oversample=1.0)
    return config


def test_every_bad_input_is_a_row_with_a_reason_and_the_rest_builds(
        tmp_path, grace_hopper, carphone_path):
    face = cv2.resize(grace_hopper, (128, 150), interpolation=cv2.INTER_AREA)
    driving_expected = make_driving(tmp_path / "phone", face, tmp_path)
    source_expected = make_sources(tmp_path / "vox", face, carphone_path, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(
        yaml.safe_dump(base_config(tmp_path / "vox", tmp_path / "phone")))
    proc = run(work, "results/plan/plan.parquet")
    assert proc.returncode == 0, proc.stderr[-6000:]
    results = work / "results"

    manifest = pl.read_parquet(results / "manifests" / "driving.parquet")
    assert sorted(manifest["take"]) == ["good take (1) é", "{take}"]
    failures = pl.read_parquet(results / "manifests" / "driving_failures.parquet")
    got = {f"{r['action']}/{r['take']}": r for r in failures.iter_rows(named=True)}
    assert set(got) == set(driving_expected)
    for take, reason in driving_expected.items():
        assert reason in got[take]["reason"], (take, got[take]["reason"])
        assert got[take]["source_path"].endswith(Path(take).name + Path(
            got[take]["source_path"]).suffix)
    assert got["yaw/empty_room"]["frames"] == 20 and got["yaw/empty_room"]["faces_found"] == 0
    assert got["blink/zero"]["size_bytes"] == 0
    assert "of about 60 frames" in got["blink/cut_copy"]["reason"]  # decoded, of how many
    cut = got["blink/cut_copy"]
    assert 0 < cut["frames"] < 60 and (cut["width"], cut["height"], cut["codec"]) == (
        320, 240, "h264")
    for row in manifest.iter_rows(named=True):
        video = read_video(work / row["video_path"])
        assert len(video) == row["frames"] == 20 and video.frames.shape[1:] == (256, 256, 3)

    sources = pl.read_parquet(results / "manifests" / "sources.parquet")
    rejected = pl.read_parquet(results / "manifests" / "source_failures.parquet")
    reasons = dict(zip(rejected["clip_id"], rejected["reason"], strict=True))
    assert set(reasons) == set(source_expected)
    for clip, reason in source_expected.items():
        assert reason in reasons[clip], (clip, reasons[clip])
    assert sorted(sources.filter("selected")["clip_id"]) == ["id00001/v1/00001",
                                                              "id00001/v1/00002"]
    assert sources.filter(pl.col("reason").is_not_null()).height == len(source_expected)
    plan = pl.read_parquet(results / "plan" / "plan.parquet")
    assert sorted(plan["action"].unique()) == ["blink", "yaw"]

    log = (results / "logs" / "driving_manifest.log").read_text()
    assert "3 files ignored" in log and "._good take (1) é.mp4: hidden" in log
    assert "README.txt: not a video" in log
    assert "3 ignored: 2 hidden, 1 not a video" in proc.stderr  # said once, at start
    # a rerun has nothing to do; a new shard layout reuses every stored take and verdict
    again = run(work, "results/plan/plan.parquet", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["driving"]["shards"] = 2
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    assert run(work, "results/manifests/driving.parquet").returncode == 0
    shards = pl.concat([pl.read_parquet(p) for p in (results / "driving" / "shards").glob(
        "[01].parquet")])
    stored = shards.filter(pl.col("key").is_not_null())
    assert stored.height == 9 and not stored["computed"].any()  # 2 crops, 7 rejections
    assert pl.read_parquet(results / "manifests" / "driving.parquet").equals(
        manifest.drop("computed").with_columns(computed=pl.lit(False)).select(
            pl.read_parquet(results / "manifests" / "driving.parquet").columns))


def test_two_files_with_one_id_are_a_config_error_naming_both(tmp_path, grace_hopper):
    face = cv2.resize(grace_hopper, (128, 150), interpolation=cv2.INTER_AREA)
    driving = tmp_path / "phone" / "blink"
    driving.mkdir(parents=True)
    write_video(driving / "a.mp4", face_frames(face, 2), 25.0)
    write_video(driving / "a.mov", face_frames(face, 2), 25.0)
    (tmp_path / "phone" / "yaw").mkdir()
    write_video(tmp_path / "phone" / "yaw" / "b.mp4", face_frames(face, 2), 25.0)
    clips = tmp_path / "vox" / "id1" / "v1"
    clips.mkdir(parents=True)
    write_video(clips / "c.mp4", face_frames(face, 2), 25.0)
    config = base_config(tmp_path / "vox", tmp_path / "phone")
    with pytest.raises(ConfigError, match=r"take 'blink/a' has two inputs in .*: a.mov and a.mp4"):
        driving_takes(config)
    (driving / "a.mov").unlink()
    assert list(driving_takes(config)[0]["blink"]) == ["a"]
    (clips / "c").mkdir()
    cv2.imwrite(str(clips / "c" / "0.png"), face)
    with pytest.raises(ConfigError, match=r"clip 'c' has two inputs in .*: c and c.mp4"):
        source_clips(config)
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    proc = run(work, "-n")
    assert proc.returncode != 0
    assert "config error at data.sources_dir: clip 'c' has two inputs" in proc.stderr

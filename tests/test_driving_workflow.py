"""Snakemake's driving and source stages on a real-data layout: a rotated phone take with audio
is cropped upright, a take without a face is rejected into the failures manifest while the rest
still builds, and a VoxCeleb1-style frame folder is scored, selected and made a video."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import yaml

from dfmnist.storage.shard_inputs import read_list
from dfmnist.storage.video import Encoding, ffmpeg_exe, read_video, write_video
from dfmnist.vision.faces import FaceTrack
from dfmnist.vision.motion import roll_degrees

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.workflow


def face_frames(face: np.ndarray, n: int, height: int, width: int) -> np.ndarray:
    frames = np.full((n, height, width, 3), 110, np.uint8)
    fh, fw = face.shape[:2]
    for t in range(n):
        y, x = (height - fh) // 2, (width - fw) // 2 + t
        frames[t, y : y + fh, x : x + fw] = face
    return frames


def test_rejected_take_goes_to_failures_and_the_rest_builds(tmp_path, grace_hopper,
                                                            carphone_path):
    face = cv2.resize(grace_hopper, (128, 150), interpolation=cv2.INTER_AREA)
    sources = tmp_path / "vox" / "id00001" / "vid1"
    sources.mkdir(parents=True)
    shutil.copy(carphone_path, sources / "00001.mp4")
    folder = tmp_path / "vox" / "id00002" / "1.6" / "yt_abc"
    folder.mkdir(parents=True)
    images = read_video(carphone_path, max_frames=6).frames
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"{i:07d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    driving = tmp_path / "phone"
    (driving / "blink").mkdir(parents=True)
    (driving / "yaw").mkdir()
    # a portrait take stored sideways with a rotation flag and an audio track
    sideways = write_video(tmp_path / "sideways.mp4",
                           np.rot90(face_frames(face, 10, 320, 240), k=-1, axes=(1, 2)), 30.0,
                           Encoding(crf=14, preset="veryfast"))
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-display_rotation:v:0", "90",
                    "-i", str(sideways), "-f", "lavfi", "-i", "sine=duration=1", "-map", "0:v",
                    "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest",
                    str(driving / "blink" / "IMG_0001.MOV")], check=True)
    write_video(driving / "blink" / "empty_room.mp4", np.full((8, 240, 320, 3), 90, np.uint8),
                25.0)
    write_video(driving / "yaw" / "take1.mp4", face_frames(face, 8, 240, 320), 25.0)

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["actions"] = ["blink", "yaw"]
    config["demo"]["enabled"] = False
    config["data"] = {"sources_dir": str(tmp_path / "vox"), "driving_dir": str(driving)}
    config["liveness"]["policy"] = {"blink": ["local"], "yaw": ["local"]}
    config["driving"].update(fps=0, max_missing=0.5, smooth_window=3, min_frames=4, shards=2)
    config["sources"].update(count=0, frames_per_clip=6, folder_fps=25, min_frames=4)
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
           "--cores", "2", "results/manifests/driving.parquet",
           "results/manifests/sources.parquet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]

    results = work / "results"
    manifest = pl.read_parquet(results / "manifests" / "driving.parquet").sort("action")
    failures = pl.read_parquet(results / "manifests" / "driving_failures.parquet")
    assert manifest.select("action", "take").rows() == [("blink", "IMG_0001"), ("yaw", "take1")]
    assert failures.select("action", "take", "reason").rows() == [
        ("blink", "empty_room", "no face found in any of 8 frames")]
    assert (manifest["jitter_px"] <= manifest["jitter_raw_px"]).all()
    for row in manifest.iter_rows(named=True):
        video = read_video(work / row["video_path"])
        assert video.frames.shape[1:] == (256, 256, 3) and len(video) == row["frames"]
        track = FaceTrack.from_frame(pl.read_parquet(work / row["track_path"]))
        assert len(track) == row["frames"] and track.found.all()
        # the face is upright and centred in the crop
        lms = track.landmarks
        assert np.abs(roll_degrees(lms)).max() < 10
        assert (lms[:, :2, 1].max(axis=1) < lms[:, 2, 1]).all()
        centres = (track.boxes[:, :2] + track.boxes[:, 2:]) / 2
        assert np.abs(centres - 128).max() < 24
    info = manifest.row(0, named=True)
    assert info["rotation"] in (90, 270) and (info["width"], info["height"]) == (240, 320)
    assert info["fps"] == pytest.approx(30.0) and info["frames"] == 10
    sources_table = pl.read_parquet(results / "manifests" / "sources.parquet").sort("clip_id")
    assert sources_table["clip_id"].to_list() == ["id00001/vid1/00001", "id00002/1.6/yt_abc"]
    assert sources_table["selected"].all()
    row = sources_table.row(1, named=True)
    assert row["source_path"] == str(folder) and row["path"].endswith("clip.mp4")
    assert [f["frame"] for f in row["frames"]] == list(range(6))  # every sampled frame scored
    assert row["frame"] == max(row["frames"], key=lambda f: f["score"])["frame"]
    made = read_video(work / row["path"])
    assert made.fps == pytest.approx(25.0) and np.array_equal(made.frames, images)
    # a second run has nothing to do
    again = subprocess.run([*cmd, "-n"], capture_output=True, text=True, env=env, timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr
    # a take replaced in place reruns its shard only (the shard's input list changed), and
    # the ids of both stages' shard lists are the inputs found
    time_before = (results / "inputs" / "sources" / "0.jsonl").stat().st_mtime_ns
    write_video(driving / "yaw" / "take1.mp4", face_frames(face, 9, 240, 320), 25.0)
    changed = subprocess.run([*cmd, "-n"], capture_output=True, text=True, env=env,
                             timeout=300)
    out = changed.stdout + changed.stderr
    assert re.search(r"^driving_shard\s+1$", out, flags=re.MULTILINE), out[-3000:]
    assert "score_sources" not in out
    assert (results / "inputs" / "sources" / "0.jsonl").stat().st_mtime_ns == time_before
    listed = {}
    for shard_list in sorted((results / "inputs" / "driving").glob("*.jsonl")):
        listed.update(read_list(shard_list))
    assert sorted(listed) == ["blink/IMG_0001", "blink/empty_room", "yaw/take1"]

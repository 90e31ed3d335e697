"""The store survives crashes: a real generation job killed with SIGKILL mid-shard, then a
rerun that completes and reuses what was finished; a stored video damaged after publishing is
found by `python -m dfmnist.storage.store verify` and rebuilt alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from dfmnist.storage.store import Store
from dfmnist.storage.video import read_video

from tiny_demo import REPO, run_snakemake, tiny_config

pytestmark = pytest.mark.workflow


def fakes_in(store: Path) -> dict[str, float]:
    """Published fake items -> the mtime of their meta.json."""
    return {p.parent.name: p.stat().st_mtime for p in (store / "fake").glob("*/*/meta.json")}


def test_killed_generation_job_resumes_and_verify_rebuilds_damage(tmp_path):
    work = tmp_path / "wf"
    work.mkdir()
    config = tiny_config(work, {"astronaut": "builtin:astronaut",
                                "grace_hopper": "builtin:grace_hopper"})
    config["generate"]["shards"] = 1
    config["plan"].update(per_action=1, oversample=2.0)  # 6 candidates in one shard
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(work, "results/plan/plan.parquet")
    plan = pl.read_parquet(work / "results" / "plan" / "plan.parquet")
    assert plan.height == 6
    store_root = work / "results" / "store"
    shard = "results/fake/raw/shards/0.parquet"

    job = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
         "--cores", "1", shard], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + 300
    while len(fakes_in(store_root)) < 2 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)  # snakemake, the job's python and its ffmpeg at once
    job.wait()
    finished = fakes_in(store_root)
    assert 2 <= len(finished) < 6, "the kill must land mid-shard"
    assert not (work / shard).exists()

    proc = run_snakemake(work, "--unlock")
    proc = run_snakemake(work, shard)
    assert proc.returncode == 0
    fakes = pl.read_parquet(work / shard)
    assert fakes.height == 6
    reused = set(fakes.filter(~pl.col("computed"))["key"])
    assert set(finished) <= reused  # every item published before the kill was kept ...
    after = fakes_in(store_root)
    assert all(after[k] == finished[k] for k in finished)  # ... untouched (same mtime)
    log = (work / "results" / "logs" / "generate_shard" / "0.log").read_text()
    assert log.count("] reused ") == len(reused)
    for path in fakes["video_path"]:
        assert len(read_video(work / path)) > 0  # only whole, decodable videos
    staging = store_root / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []  # the dead job's leftovers

    # a published video damaged afterwards (same size, other bytes) and one truncated
    flipped, truncated = sorted(fakes["key"])[:2]
    store = Store(store_root)
    video = store.item_dir("fake", flipped) / "video.mp4"
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0xFF
    video.write_bytes(bytes(data))
    short = store.item_dir("fake", truncated) / "video.mp4"
    short.write_bytes(short.read_bytes()[: short.stat().st_size // 2])
    assert not store.has("fake", truncated)  # a size mismatch is absent at once
    verify = [sys.executable, "-m", "dfmnist.storage.store", "verify", str(store_root)]
    check = subprocess.run(verify, capture_output=True, text=True, check=True)
    assert f"dropped fake/{flipped}: video.mp4 does not match its recorded sha256" in check.stdout
    assert f"dropped fake/{truncated}: video.mp4 has" in check.stdout
    assert "2 dropped" in check.stdout
    run_snakemake(work, shard, "--forcerun", "generate_shard")
    again = pl.read_parquet(work / shard)
    assert set(again.filter(pl.col("computed"))["key"]) == {flipped, truncated}
    for key in (flipped, truncated):
        assert store.has("fake", key)
        assert len(read_video(store.item_dir("fake", key) / "video.mp4")) > 0
    mode = (store.item_dir("fake", flipped) / "video.mp4").stat().st_mode & 0o777
    assert mode == 0o666 & ~current_umask()  # readable by the group, as the umask allows


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

"""Damage in the store is noticed by its readers and repaired by `verify --repair` and a plain
Snakemake run (dfmnist.storage.integrity), on a clone of the tiny demo's build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from dfmnist.storage.files import sha256_file
from dfmnist.storage.integrity import StoreDamage, item_of
from dfmnist.storage.tars import open_tar
from dfmnist.storage.video import read_video

from tiny_demo import clone, run_snakemake

pytestmark = pytest.mark.workflow


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def planned(workdir: Path) -> dict[str, int]:
    out = run_snakemake(workdir, "-n").stdout
    if "Job stats:" not in out:
        return {}
    table = out.split("Job stats:", 1)[1].strip().split("\n\n", 1)[0].splitlines()[2:]
    return {rule: int(n) for rule, n in (line.split() for line in table) if rule != "total"}


def test_a_flipped_byte_is_refused_then_repaired_by_a_plain_rerun(tiny_demo: Path,
                                                                  tmp_path: Path):
    workdir = clone(tiny_demo, tmp_path / "demo")
    results = workdir / "results"
    before = pl.read_parquet(results / "dataset" / "dataset.parquet")
    fake = before.filter((pl.col("label") == "fake") & (pl.col("variant") == "c40")).row(
        0, named=True)
    video = workdir / fake["path"]
    root, kind, key, name = item_of(video)
    assert (kind, name) == ("compressed", "video.mp4")
    good = sha256_file(video)
    manifests = sorted((results / "compress").rglob("*.parquet"))
    assert len(manifests) >= 2  # so that "only its job" means something (one per variant)
    flip_byte(video)

    # a reader refuses the changed bytes, naming the item and the repair command
    with pytest.raises(StoreDamage, match=rf"compressed/{key} is damaged: .*verify --repair"):
        read_video(video)
    tar = Path(fake["frames_tar"])
    open_tar(workdir / tar)  # an intact store file opens

    repair = subprocess.run([sys.executable, "-m", "dfmnist.storage.store", "verify", "--repair",
                             str(results / "store")], capture_output=True, text=True,
                            check=True, timeout=300)
    assert f"quarantined compressed/{key}" in repair.stdout
    quarantined = list((results / "store" / ".quarantine").glob(f"*/items/compressed/{key}"))
    assert len(quarantined) == 1  # the damaged bytes are kept for inspection

    # a plain run rebuilds that video and what reads it: its compression shard, not the others,
    # and nothing upstream of compression
    jobs = planned(workdir)
    assert jobs.get("compress_shard") == 1, jobs
    assert not {"generate_shard", "driving_shard", "score_sources", "liveness_shard",
                "demo_source_clips", "demo_driving_video"} & set(jobs), jobs
    run_snakemake(workdir)
    assert sha256_file(video) == good
    assert pl.read_parquet(results / "dataset" / "dataset.parquet").equals(before)
    assert planned(workdir) == {}

"""The two Snakemake profiles as Snakemake itself reads them (no cluster needed; the real SLURM
run is tests/test_slurm.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.cli import parse_args

from tiny_demo import tiny_config

REPO = Path(__file__).resolve().parents[1]
PHOTOS = {"astronaut": "builtin:astronaut", "grace_hopper": "builtin:grace_hopper",
          "carphone": "builtin:carphone"}


@pytest.mark.parametrize(("visible", "gpus"), [
    ("0", 1), ("0,1,2", 3), ("GPU-5a1c,GPU-77e0", 2), ("", 0), ("-1", 0),
])
def test_workstation_profile_counts_the_visible_gpus(monkeypatch, visible, gpus):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    _, args = parse_args(["-s", str(REPO / "Snakefile"), "-n"])
    assert args.resources["gpu"].value == gpus
    assert args.resources["api_calls"].value == 1
    assert args.cores == os.cpu_count()
    assert args.scheduler == "greedy"


def test_workstation_profile_without_cuda_variable_counts_nvidia_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    _, args = parse_args(["-s", str(REPO / "Snakefile"), "-n"])
    devices = [d for d in os.listdir("/dev") if re.fullmatch(r"nvidia\d+", d)]
    assert args.resources["gpu"].value == len(devices)


def jobs_of_dry_run(out: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) per job in a dry run's output (group members are indented)."""
    jobs = []
    for block in re.split(r"\n(?=\s*(?:local)?(?:rule|checkpoint) \w+:)", out):
        rule = re.match(r"\s*(?:local)?(?:rule|checkpoint) (\w+):", block)
        res = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        if rule and res:
            jobs.append((rule.group(1), dict(kv.split("=", 1) for kv in res.group(1).split(", "))))
    return jobs


def test_slurm_profile_gives_gpu_shards_one_gres_gpu_and_groups_small_jobs(tmp_path: Path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config(tmp_path, PHOTOS)))
    # two visible GPUs on the submit host: the workstation profile's gpu=2 (which Snakemake
    # loads too) must not throttle SLURM's GPU jobs
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0,1"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
         "--profile", str(REPO / "profiles" / "slurm"), "-n"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    assert "workflow specific profile" in out  # profiles/default was loaded as well
    _, args = parse_args(["-s", str(REPO / "Snakefile"), "--profile",
                          str(REPO / "profiles" / "slurm"), "-n"])
    assert args.scheduler == "greedy"  # the workflow profile's, under SLURM too
    jobs = jobs_of_dry_run(out)
    assert {rule for rule, _ in jobs} >= {"generate_shard", "driving_shard", "compress_shard"}
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    gpu_rules = {r for r, res in profile["set-resources"].items() if "gres" in res}
    assert {"generate_shard", "train_detector"} <= gpu_rules
    for rule, res in jobs:
        if rule in gpu_rules:
            assert (res["slurm_partition"], res["gres"], res["gpu"]) == ("gpu", "gpu:1", "0")
            assert res["runtime"] == "240" and res["mem_mb"] == "8000"
        elif rule != "all":
            assert res["slurm_partition"] == "cpu" and "gres" not in res
            assert res["runtime"] == "60" and res["mem_mb"] == "4000"
            assert res.get("gpu", "0") == "0"
    groups = set(profile["groups"].values())
    assert groups == set(profile["group-components"])
    announced = set(re.findall(r"Group job (\w+)", out))
    assert announced and announced <= groups

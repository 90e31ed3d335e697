"""profiles/slurm on a real single-node SLURM (tests/slurm/start.sh): the tiny demo built with
`snakemake --profile profiles/slurm`, GPU shards as gres jobs, then a run that submits nothing.

Deselected by default (pyproject's addopts); run with `python -m pytest -m slurm`. The cluster
in use is the running one, else this module starts one with tests/slurm/start.sh (root or
passwordless sudo) and stops it again at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import yaml

from tiny_demo import tiny_config

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "slurm"
PHOTOS = {"astronaut": "builtin:astronaut", "grace_hopper": "builtin:grace_hopper",
          "carphone": "builtin:carphone"}
# What differs from a real cluster: no accounting database (sacct cannot answer, so the plugin
# asks squeue) and a 2-core node (status checks every few seconds instead of the plugin's
# 40 s wait before the first one, which would dominate a run this small).
LOCAL_CLUSTER_ARGS = ["--slurm-status-command", "squeue",
                      "--slurm-init-seconds-before-status-checks", "5",
                      "--seconds-between-status-checks", "3"]

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(shutil.which("sbatch") is None,
                       reason="SLURM is not installed (tests/slurm/start.sh installs and starts "
                              "a local cluster; .ci/run does this)"),
]


def cluster_up() -> bool:
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                              timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and any(s in proc.stdout for s in ("idle", "mixed", "alloc"))


@pytest.fixture(scope="module")
def cluster():
    started = not cluster_up()
    if started:
        subprocess.run([str(CLUSTER / "start.sh")], check=True, timeout=600)
    assert cluster_up()
    yield
    if started:
        subprocess.run([str(CLUSTER / "stop.sh")], check=True, timeout=120)


def slurm_jobs() -> list[dict[str, str]]:
    """Every job slurmctld still knows (the test cluster keeps finished ones for an hour)."""
    fields = ["id", "name", "comment", "partition", "state", "gres"]
    out = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%j|%k|%P|%T|%b"],
                         capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines()]


def run_profile(workdir: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
         "--profile", str(REPO / "profiles" / "slurm"), *LOCAL_CLUSTER_ARGS],
        cwd=workdir, capture_output=True, text=True, timeout=1500,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc, time.monotonic() - start


@pytest.fixture(scope="module")
def built(cluster, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    workdir = tmp_path_factory.mktemp("slurm")
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(workdir, PHOTOS)))
    proc, seconds = run_profile(workdir)
    print(f"SLURM build of the tiny demo: {seconds:.0f} s")
    return workdir, proc


def test_profile_builds_the_demo_through_sbatch(built):
    workdir, proc = built
    log = proc.stdout + proc.stderr
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    (run_id,) = set(re.findall(r"SLURM run ID: (\S+)", log))
    jobs = {j["id"]: j for j in slurm_jobs() if j["name"] == run_id}
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert sorted(jobs) == sorted(submitted) and jobs
    assert all(j["state"] == "COMPLETED" for j in jobs.values())
    # each submission's SLURM log is kept under results/logs/slurm/{rule_R|group_G_...}/
    logdir = workdir / "results" / "logs" / "slurm"
    kind = {p.stem: p.relative_to(logdir).parts[0] for p in logdir.rglob("*.log")}
    assert sorted(kind) == sorted(submitted)
    finished = Counter(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", log))

    # GPU rules: one gres GPU each, on the GPU partition; nothing else asks for a GPU
    gpu_rules = {r for r, res in profile["set-resources"].items() if "gpu" in res.get("gres", "")}
    gpu_jobs = {i for i, k in kind.items() if k in {f"rule_{r}" for r in gpu_rules}}
    shards = yaml.safe_load((workdir / "config.yaml").read_text())["generate"]["shards"]
    assert len(gpu_jobs) == sum(finished[r] for r in gpu_rules)
    assert finished["generate_shard"] >= shards
    for i, job in jobs.items():
        if i in gpu_jobs:
            assert (job["partition"], job["gres"]) == ("gpu", "gres:gpu:1")
            # the scheduler allocated one of the node's two (fake) GPUs to the job
            detail = subprocess.run(["scontrol", "show", "job", "-d", i], capture_output=True,
                                    text=True, check=True).stdout
            assert re.search(r"^\s*JOB_GRES=gpu(:\w+)?:1\s*$", detail, re.MULTILINE), detail
        else:
            assert job["partition"] == "cpu" and "gpu" not in job["gres"]

    # grouped rules: a group's jobs went out together, fewer submissions than jobs
    groups = set(profile["groups"].values())
    for group in groups:
        rules = [r for r, g in profile["groups"].items() if g == group]
        n_jobs = sum(finished[r] for r in rules)
        n_submissions = sum(k.startswith(f"group_{group}_") for k in kind.values())
        assert 1 <= n_submissions < n_jobs or n_jobs <= 1, (group, n_submissions, n_jobs)
    # local rules (all, the liveness cache merge) run on the submitting host, not through sbatch
    local = set(re.findall(r"^localrule (\w+):", log, re.MULTILINE)) | {"all"}
    ungrouped = sum(n for r, n in finished.items() if r not in profile["groups"] and r not in local)
    grouped_submissions = sum(k.startswith("group_") for k in kind.values())
    assert len(jobs) == ungrouped + grouped_submissions < sum(finished.values()) - 1

    # the dataset is complete and consistent
    results = workdir / "results"
    dataset = pl.read_parquet(results / "dataset" / "dataset.parquet")
    sources = pl.read_parquet(results / "manifests" / "sources.parquet").filter("selected")
    accepted = pl.read_parquet(results / "fake" / "accepted.parquet")
    assert set(dataset["variant"]) == {"raw", "c40"} and sources.height == 3
    assert dataset.filter(pl.col("label") == "real").height == 2 * sources.height
    assert dataset.filter(pl.col("label") == "fake").height == 2 * accepted.height > 0
    assert all((workdir / p).is_file() for p in dataset["path"])
    assert list((results / "deepfakebench" / "dataset_json").glob("*.json"))


def test_second_run_submits_nothing(built):
    workdir, _ = built
    before = {j["id"] for j in slurm_jobs()}
    proc, _ = run_profile(workdir)
    log = proc.stdout + proc.stderr
    assert "Nothing to be done" in log
    assert "has been submitted" not in log
    assert {j["id"] for j in slurm_jobs()} == before

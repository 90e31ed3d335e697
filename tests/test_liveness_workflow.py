"""The workflow's liveness stage (Snakemake) with baidu and tianyan pointed at the test server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from dfmnist.storage.files import sha256_file

from liveness_server import (
    SECRETS,
    TIANYAN_PATH,
    TOKEN_PATH,
    VERIFY_PATH,
    face_videos,
    start_server,
)

ACTIONS = ["blink", "yaw", "smile"]


@pytest.fixture
def server(monkeypatch):
    with start_server(monkeypatch) as srv:
        yield srv


@pytest.mark.workflow
def test_snakemake_liveness_stage_against_the_server(server, astronaut, tmp_path):
    """The liveness rules with the paper's policy, both providers pointed at the server, which
    injects transient faults, an expired token (err_no 111), a refusal and an undocumented
    code: the first run completes with every other verdict right and the one video unjudged;
    the next run asks only about that one; with the stage's results deleted, a further run
    answers everything from the cache (zero calls)."""
    repo = Path(__file__).resolve().parents[1]
    workdir = tmp_path / "wf"
    config = yaml.safe_load((repo / "config.yaml").read_text())
    actions = ACTIONS
    videos = face_videos(tmp_path / "videos", astronaut, 6)
    urls = server.urls()
    config["actions"] = actions
    config["generate"]["shards"] = 1
    config["plan"].update(per_action=1, max_rounds=0)  # no top-up: nothing upstream runs here
    config["liveness"]["policy"] = "paper"
    config["liveness"]["cache"] = str(tmp_path / "cache" / "liveness.sqlite")
    http = {"qps": 50, "concurrency": 4, "timeout": 0.5, "backoff_base": 0.01}
    config["liveness"]["providers"]["baidu"].update(
        token_url=urls["token_url"], verify_url=urls["verify_url"], http=http)
    config["liveness"]["providers"]["tianyan"].update(url=urls["tianyan_url"], http=http)
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    shard = workdir / "results" / "fake" / "raw" / "shards" / "0.parquet"
    shard.parent.mkdir(parents=True)
    fakes = pl.DataFrame({
        "candidate_id": [f"c{i}" for i in range(6)], "action": [actions[i % 3] for i in range(6)],
        "video_path": [str(p) for p in videos], "sha256": [sha256_file(p) for p in videos],
        "rank": list(range(6))})
    fakes.write_parquet(shard)
    for i, sha in enumerate(fakes["sha256"]):  # c0 blink, c1 yaw, c2 smile, c3 blink, ...
        server.baidu_scores[sha] = 0.9 if i != 3 else 0.01
        server.tianyan_results[sha] = {"live": True, "action_passed": i != 0, "score": 0.9}
    server.refusals[fakes["sha256"][5]] = 216501  # c5 (smile): no face, a failed verdict
    server.style = "err_no"  # every Baidu error spelled err_no/err_msg
    server.faults["baidu"] = ["429", "expire", "qps", "500"]
    server.faults["tianyan"] = ["unknown"]  # the first tianyan video stays unjudged
    targets = ["results/fake/accepted.parquet", "results/liveness/spoof_rates.png"]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir),
           "--cores", "2", "--allowed-rules", "liveness_shard", "liveness_cache_merge",
           "filter_fakes", "--", *targets]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-4000:]
    calls = dict(server.counts)
    # baidu judges all six, plus four injected faults (the expired token is sent again);
    # tianyan only blink and yaw (four)
    assert calls[VERIFY_PATH] == 6 + 4 and calls[TIANYAN_PATH] == 4
    assert calls[TOKEN_PATH] == 2
    baidu = pl.read_parquet(workdir / "results" / "liveness" / "baidu" / "0.parquet")
    assert baidu["passed"].to_list() == [True, True, True, False, True, False]
    assert json.loads(baidu["details"][5])["code"] == 216501
    tianyan_path = workdir / "results" / "liveness" / "tianyan" / "0.parquet"
    assert pl.read_parquet(tianyan_path)["passed"].null_count() == 1
    rates = pl.read_csv(workdir / "results" / "liveness" / "spoof_rates_by_provider.csv")
    assert rates.filter(pl.col("provider") == "tianyan")["unjudged"].sum() == 1
    # the next run reruns the tianyan job for its one unjudged video, and asks only that
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-4000:]
    assert server.counts[TIANYAN_PATH] == 5 and server.counts[VERIFY_PATH] == 10
    tianyan = pl.read_parquet(tianyan_path)
    assert tianyan["passed"].null_count() == 0 and tianyan["cached"].sum() == 3
    calls = dict(server.counts)
    accepted = pl.read_parquet(workdir / "results" / "fake" / "accepted.parquet")
    # blink: c0 fails tianyan, c3 fails baidu; yaw: c1 first; smile: c2 first (baidu only)
    assert dict(zip(accepted["action"], accepted["candidate_id"], strict=True)) == {
        "yaw": "c1", "smile": "c2"}
    steady = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, timeout=300)
    assert "liveness_shard" not in steady.stdout  # every fake judged: nothing left to run
    rates = pl.read_csv(workdir / "results" / "liveness" / "spoof_rates_by_provider.csv")
    blink = {r["provider"]: r["spoof_rate"] for r in rates.iter_rows(named=True)
             if r["action"] == "blink"}
    assert blink == {"baidu": 0.5, "tianyan": 0.5, "policy": 0.0}
    # the jobs wrote journals; the merge folded them into the cache file
    cache_file = tmp_path / "cache" / "liveness.sqlite"
    assert cache_file.is_file() and not list((tmp_path / "cache").glob("*.journals/*.jsonl"))
    summary = pl.read_csv(workdir / "results" / "liveness" / "spoof_rates.csv")
    assert summary.filter(pl.col("action") == "blink")["shortfall"].item() == 1
    assert (workdir / "results" / "liveness" / "spoof_rates.png").stat().st_size > 10_000
    # delete the stage's results: the verdicts live on in the cache outside results/
    shutil.rmtree(workdir / "results" / "liveness")
    (workdir / "results" / "fake" / "accepted.parquet").unlink()
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-4000:]
    assert dict(server.counts) == calls
    assert pl.read_parquet(workdir / "results" / "liveness" / "baidu" / "0.parquet")[
        "cached"].all()
    leaks = [*SECRETS.values(), *server.tokens]
    for path in [*workdir.rglob("*"), *(tmp_path / "cache").rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in leaks if s.encode() in data], path
    assert not [s for s in leaks if s in first.stderr + first.stdout + second.stderr
                + third.stderr]


@pytest.mark.workflow
def test_more_api_jobs_at_once_than_the_qps_share_stops_at_the_start(tmp_path):
    """`--resources api_calls=2` lets two web API jobs run at once; with `liveness.api_jobs: 1`
    each would send at the full qps, so the run stops before any job, in one line; with
    `api_jobs: 2` (each at qps / 2) it plans."""
    repo = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((repo / "config.yaml").read_text())
    config["liveness"]["policy"] = "paper"
    config["liveness"]["providers"]["tianyan"]["url"] = "https://tianyan.example/liveness"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d",
           str(tmp_path), "--cores", "2", "-n", "--resources", "api_calls=2"]
    stopped = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert stopped.returncode != 0
    lines = [line for line in stopped.stderr.splitlines() if "liveness.api_jobs" in line]
    assert len(lines) == 1 and "lets 2 liveness jobs" in lines[0] and "qps / 1" in lines[0]
    config["liveness"]["api_jobs"] = 2
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    planned = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "liveness_shard" in planned.stdout

"""The workflow's liveness stage (Snakemake) with baidu and tianyan pointed at the test server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from dfmnist.io import sha256_file

sys.path.insert(0, str(Path(__file__).parent))
from liveness_server import (  # noqa: E402
    SECRETS,
    TIANYAN_PATH,
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
    """The liveness rules with the paper's policy, both providers pointed at the server;
    after the stage's results are deleted, a second run answers everything from the cache."""
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
    server.faults["baidu"] = ["429", "qps"]
    targets = ["results/fake/accepted.parquet", "results/liveness/spoof_rates.png"]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(workdir),
           "--cores", "2", "--allowed-rules", "liveness_shard", "filter_fakes", "--", *targets]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-4000:]
    calls = dict(server.counts)
    # baidu judges all six, tianyan only blink and yaw (four), plus the two injected faults
    assert calls[VERIFY_PATH] == 6 + 2 and calls[TIANYAN_PATH] == 4
    accepted = pl.read_parquet(workdir / "results" / "fake" / "accepted.parquet")
    # blink: c0 fails tianyan, c3 fails baidu; yaw: c1 first; smile: c2 first (baidu only)
    assert dict(zip(accepted["action"], accepted["candidate_id"], strict=True)) == {
        "yaw": "c1", "smile": "c2"}
    rates = pl.read_csv(workdir / "results" / "liveness" / "spoof_rates_by_provider.csv")
    blink = {r["provider"]: r["spoof_rate"] for r in rates.iter_rows(named=True)
             if r["action"] == "blink"}
    assert blink == {"baidu": 0.5, "tianyan": 0.5, "policy": 0.0}
    summary = pl.read_csv(workdir / "results" / "liveness" / "spoof_rates.csv")
    assert summary.filter(pl.col("action") == "blink")["shortfall"].item() == 1
    assert (workdir / "results" / "liveness" / "spoof_rates.png").stat().st_size > 10_000
    # delete the stage's results: the verdicts live on in the cache outside results/
    shutil.rmtree(workdir / "results" / "liveness")
    (workdir / "results" / "fake" / "accepted.parquet").unlink()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-4000:]
    assert dict(server.counts) == calls
    assert pl.read_parquet(workdir / "results" / "liveness" / "baidu" / "0.parquet")[
        "cached"].all()
    leaks = [*SECRETS.values(), *server.tokens]
    for path in [*workdir.rglob("*"), *(tmp_path / "cache").rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in leaks if s.encode() in data], path
    assert not [s for s in leaks if s in first.stderr + first.stdout + second.stderr]

"""The liveness verdict cache against a real HTTP server on 127.0.0.1 (tests/liveness_server):
a second run makes no request, no secret or token is written or logged, verdicts are keyed on
the provider's config version, per-job journals merge; `python -m dfmnist.liveness` stats and
export."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import polars as pl

from dfmnist.liveness.cache import VerdictCache
from dfmnist.liveness.journal import JobCache, merge, read_journals
from dfmnist.liveness.shard import verify_shard

from liveness_clients import ACTIONS, baidu, fakes_table, tianyan
from liveness_server import (
    SECRETS,
    TIANYAN_PATH,
    TOKEN_PATH,
    VERIFY_PATH,
)

# -- the cache and secrets -------------------------------------------------------------------


def test_a_second_run_makes_no_calls_and_no_secret_is_written(api_server, api_videos, tmp_path,
                                                               caplog):
    caplog.set_level(logging.DEBUG)
    fakes = fakes_table(api_videos)
    policy = {"baidu": ACTIONS, "tianyan": ["blink", "open_mouth", "yaw", "nod"]}
    results, cache_path = tmp_path / "results", tmp_path / "cache" / "liveness.sqlite"
    api_server.faults["baidu"] = ["429", "expire", "busy"]
    api_server.faults["tianyan"] = ["500", "qps"]

    def run() -> dict[str, pl.DataFrame]:
        tables = {}
        with VerdictCache(cache_path) as cache:
            for name, make in (("baidu", baidu), ("tianyan", tianyan)):
                tables[name] = verify_shard(fakes, make(api_server), cache, actions=policy[name])
                out = results / "liveness" / name / "0.parquet"
                out.parent.mkdir(parents=True, exist_ok=True)
                tables[name].write_parquet(out)
        return tables

    first = run()
    calls = dict(api_server.counts)
    # one request per video and per fault (more when requests in flight share an expired token)
    assert calls[VERIFY_PATH] >= 6 + 3 and calls[TIANYAN_PATH] == 5 + 2
    assert first["baidu"].height == 6 and first["tianyan"].height == 5
    assert not first["baidu"]["cached"].any()
    second = run()
    assert dict(api_server.counts) == calls  # not a single request, not even a token
    assert second["baidu"]["cached"].all() and second["tianyan"]["cached"].all()
    for name in ("baidu", "tianyan"):
        assert second[name]["passed"].to_list() == first[name]["passed"].to_list()
    with VerdictCache(cache_path) as cache:
        stats = {row["provider"]: row for row in cache.stats()}
    assert stats["baidu"]["hits"] == 6 and stats["baidu"]["misses"] == 6
    assert stats["baidu"]["calls"] == calls[VERIFY_PATH]
    assert stats["baidu"]["retries"] == 2  # 429 and busy; the renewal's resend is no retry
    assert stats["baidu"]["token_calls"] == calls[TOKEN_PATH] == 2
    assert stats["tianyan"]["calls"] == 7 and stats["tianyan"]["retries"] == 2
    # nothing written, cached or logged holds a key, a secret or an access token
    leaks = [*SECRETS.values(), *api_server.tokens]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("liveness.sqlite") for p in files)
    for path in files:
        data = path.read_bytes()
        assert not [s for s in leaks if s.encode() in data], path
    assert caplog.text and not [s for s in leaks if s in caplog.text]


def test_verdict_cache_keys_on_provider_config_version(api_server, api_videos, tmp_path):
    fakes = fakes_table(api_videos).head(2)
    with VerdictCache(tmp_path / "c.sqlite") as cache:
        verify_shard(fakes, baidu(api_server, threshold="frr_1e-3"), cache)
        verify_shard(fakes, baidu(api_server, threshold="frr_1e-3"), cache)
        assert api_server.counts[VERIFY_PATH] == 2
        verify_shard(fakes, baidu(api_server, threshold="frr_1e-2"), cache)  # another version
        assert api_server.counts[VERIFY_PATH] == 4 and cache.count("baidu") == 4


# -- the command line ------------------------------------------------------------------------


def test_cli_stats_and_export(api_one_server, api_videos, tmp_path):
    api_server = api_one_server
    cache_path = tmp_path / "c.sqlite"
    fakes = fakes_table(api_videos)
    with VerdictCache(cache_path) as cache:
        verify_shard(fakes, baidu(api_server), cache)
        verify_shard(fakes, baidu(api_server), cache)
    cli = [sys.executable, "-m", "dfmnist.liveness"]
    out = subprocess.run([*cli, "stats", "--cache", str(cache_path)], capture_output=True,
                         text=True, check=True).stdout
    header, *rows = [ln.split() for ln in out.splitlines() if ln.strip()]
    assert header == ["provider", "verdicts", "passed", "hits", "misses", "calls", "retries",
                      "token_calls", "errors"]
    (row,) = rows
    verdicts = baidu(api_server).verify_many([(p, "blink") for p in api_videos])
    passed = sum(v.passed for v in verdicts)
    assert row == ["baidu", "6", str(passed), "6", "6", "6", "0", "1", "0"]
    assert not (tmp_path / "c.sqlite-wal").exists()  # rollback journal, not WAL
    parquet = tmp_path / "verdicts.parquet"
    subprocess.run([*cli, "export", "--cache", str(cache_path), "--out", str(parquet)],
                   check=True, capture_output=True)
    table = pl.read_parquet(parquet)
    assert table.height == 6 and set(table["video_sha256"]) == set(fakes["sha256"])
    assert json.loads(table["details"][0])["thresholds"]["frr_1e-4"] == 0.05


def test_jobs_write_journals_and_one_merge_folds_them_in(api_one_server, api_videos, tmp_path):
    """Two jobs (as on two hosts) never write the shared file; stats/export see their
    verdicts before and after the merge; a rerun asks nothing."""
    api_server, cache_path = api_one_server, tmp_path / "c.sqlite"
    fakes = fakes_table(api_videos)
    with JobCache(cache_path, "baidu-0") as a, JobCache(cache_path, "baidu-1") as b:
        verify_shard(fakes.head(3), baidu(api_server), a)
        verify_shard(fakes.tail(3), baidu(api_server), b)
    assert not cache_path.exists() and len(read_journals(cache_path)) == 2
    cli = [sys.executable, "-m", "dfmnist.liveness"]
    out = subprocess.run([*cli, "stats", "--cache", str(cache_path)], capture_output=True,
                         text=True, check=True).stdout
    assert out.splitlines()[1].split()[:2] == ["baidu", "6"]
    assert merge(cache_path) == {"journals": 2, "verdicts": 6, "removed": 2}
    with VerdictCache(cache_path) as cache:
        (stats,) = cache.stats()
    assert stats["verdicts"] == 6 and stats["calls"] == 6 and stats["misses"] == 6
    calls = api_server.counts[VERIFY_PATH]
    with JobCache(cache_path, "baidu-0") as again:
        assert verify_shard(fakes, baidu(api_server), again)["cached"].all()
    assert api_server.counts[VERIFY_PATH] == calls
    assert merge(cache_path)["verdicts"] == 0
    with VerdictCache(cache_path) as cache:
        assert cache.stats()[0]["hits"] == 6 and cache.count() == 6

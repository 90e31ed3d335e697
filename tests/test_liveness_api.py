"""Baidu and TianyanData clients against a real HTTP server on 127.0.0.1 (tests/liveness_server).

Real ffmpeg-encoded videos of a real face go over real sockets; the server answers in the
shapes Baidu's documents show, checks tokens and signatures, injects faults, counts every
request and records when each arrived.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from dfmnist.liveness import BaiduProvider, TianyanProvider, make_provider
from dfmnist.liveness.cache import VerdictCache
from dfmnist.liveness.journal import JobCache, merge, read_journals
from dfmnist.liveness.remote import (
    AuthError,
    ProviderUnreachable,
    QuotaExceeded,
    RetriesExhausted,
    SlidingWindowLimiter,
    Unjudged,
)
from dfmnist.liveness.shard import verify_shard
from dfmnist.storage.files import sha256_file

from liveness_server import (
    SECRETS,
    TIANYAN_PATH,
    TOKEN_PATH,
    VERIFY_PATH,
    LivenessServer,
    face_videos,
    start_server,
)

RequestRejected = Unjudged

FAST = {"qps": 200, "concurrency": 4, "timeout": 0.5, "max_attempts": 4,
        "backoff_base": 0.01, "backoff_max": 0.05, "token_interval": 0.05}
ACTIONS = ["blink", "open_mouth", "yaw", "nod", "smile", "blink"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory, astronaut) -> list[Path]:
    return face_videos(tmp_path_factory.mktemp("api_videos"), astronaut, len(ACTIONS))


@pytest.fixture
def shas(videos) -> list[str]:
    return [sha256_file(p) for p in videos]


@pytest.fixture(params=["documented", "err_no"])
def server(monkeypatch, request):
    """The server, answering errors as documented (gateway error_code, service err_no), and
    with err_no for every error."""
    with start_server(monkeypatch) as srv:
        srv.style = request.param
        yield srv


@pytest.fixture
def one_server(monkeypatch):
    """The server answering errors as documented (for tests where the spelling is moot)."""
    with start_server(monkeypatch) as srv:
        yield srv


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most arrivals inside any sliding window of `window` seconds."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while t - times[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


def baidu(server: LivenessServer, **kw) -> BaiduProvider:
    urls = server.urls()
    return BaiduProvider(token_url=urls["token_url"], verify_url=urls["verify_url"],
                         http={**FAST, **kw.pop("http", {})}, **kw)


def tianyan(server: LivenessServer, **kw) -> TianyanProvider:
    return TianyanProvider(url=server.urls()["tianyan_url"], http={**FAST, **kw.pop("http", {})},
                           **kw)


def fakes_table(videos: list[Path]) -> pl.DataFrame:
    return pl.DataFrame({
        "candidate_id": [f"c{i}" for i in range(len(videos))], "action": ACTIONS,
        "video_path": [str(p) for p in videos], "sha256": [sha256_file(p) for p in videos],
        "rank": list(range(len(videos)))})


# -- verdicts --------------------------------------------------------------------------------

def test_baidu_verdicts_follow_the_score_and_the_configured_threshold(server, videos, shas):
    for sha, score in zip(shas[:4], [0.95, 0.5, 0.1, 0.01], strict=True):
        server.baidu_scores[sha] = score
    items = [(p, "blink") for p in videos[:4]]
    named = baidu(server, threshold="frr_1e-3")  # 0.3 in the server's answer
    verdicts = named.verify_many(items)
    assert [v.passed for v in verdicts] == [True, True, False, False]
    assert [v.score for v in verdicts] == [0.95, 0.5, 0.1, 0.01]
    assert verdicts[0].details["threshold_value"] == 0.3
    assert verdicts[0].details["thresholds"]["frr_1e-4"] == 0.05
    # one token for the whole batch, one request per video
    assert server.counts[TOKEN_PATH] == 1 and server.counts[VERIFY_PATH] == 4
    fixed = baidu(server, threshold=0.6)
    assert [v.passed for v in fixed.verify_many(items)] == [True, False, False, False]
    assert fixed.config_version() != named.config_version()
    with pytest.raises(RequestRejected, match="no numeric threshold 'frr_9'"):
        baidu(server, threshold="frr_9").verify(videos[0], "yaw")


def test_baidu_refusals_are_failed_verdicts_with_code_and_message(server, tmp_path, videos,
                                                                   shas):
    junk = tmp_path / "not_a_video.mp4"
    junk.write_bytes(b"plain text, not an mp4")
    verdict = baidu(server).verify(junk, "blink")  # "not found video info"
    assert not verdict.passed and verdict.details["code"] == 216508
    assert verdict.details["reason"] == "not found video info" and verdict.details["refused"]
    server.refusals[shas[0]] = 216501  # no face
    server.faults["baidu"] = ["refuse:216434"]  # liveness check failed
    got = baidu(server, http={"concurrency": 1}).verify_many(
        [(videos[1], "blink"), (videos[0], "yaw"), (videos[2], "nod")])
    assert [v.details.get("code") for v in got] == [216434, 216501, None]
    assert got[1].details["reason"] == "not found face" and got[2].details["score"] > 0


def test_tianyan_sends_signed_action_requests(server, videos, shas):
    server.tianyan_results[shas[0]] = {"live": True, "action_passed": True, "score": 0.8}
    server.tianyan_results[shas[1]] = {"live": True, "action_passed": False, "score": 0.9}
    server.tianyan_results[shas[2]] = {"live": False, "action_passed": True, "score": 0.9}
    server.tianyan_results[shas[3]] = {"live": True, "action_passed": True, "score": 0.4}
    provider = tianyan(server)
    items = [(videos[0], "blink"), (videos[1], "open_mouth"), (videos[2], "yaw"),
             (videos[3], "nod")]
    verdicts = provider.verify_many(items)
    assert [v.passed for v in verdicts] == [True, False, False, False]
    assert sorted(server.actions_seen) == ["blink", "mouth", "nod", "yaw"]
    assert verdicts[1].details["action_passed"] is False
    # actions TianyanData does not check are refused without a request
    with pytest.raises(RequestRejected, match="'smile' is not supported"):
        provider.verify(videos[4], "smile")
    assert server.counts[TIANYAN_PATH] == 4


def test_wrong_credentials_stop_the_batch_without_leaking(server, videos, monkeypatch):
    monkeypatch.setenv("TIANYAN_SECRET", "not-the-secret-0451")
    with pytest.raises(AuthError, match="code 1001") as info:
        tianyan(server).verify_many([(p, "blink") for p in videos])
    assert "not-the-secret-0451" not in str(info.value)
    monkeypatch.setenv("BAIDU_SECRET_KEY", "wrong-baidu-secret-77")
    with pytest.raises(AuthError, match="Client authentication failed") as info:
        baidu(server).verify_many([(p, "blink") for p in videos])  # stops at once
    message = str(info.value)
    assert message.startswith("baidu: ") and "\n" not in message
    assert "wrong-baidu-secret-77" not in message and SECRETS["BAIDU_API_KEY"] not in message
    assert server.counts[TOKEN_PATH] == 1  # one token request, no retry of bad credentials
    monkeypatch.setenv("BAIDU_API_KEY", "unknown-key-31")
    with pytest.raises(AuthError, match="invalid_client: unknown client id"):
        baidu(server).verify(videos[0], "blink")
    monkeypatch.delenv("BAIDU_API_KEY")
    with pytest.raises(AuthError, match="BAIDU_API_KEY is not set"):
        baidu(server).verify(videos[0], "blink")
    assert server.counts[VERIFY_PATH] == 0


# -- retries ---------------------------------------------------------------------------------

@pytest.mark.parametrize("api", ["baidu", "tianyan"])
@pytest.mark.parametrize("fault", ["429", "500", "slow", "qps", "busy"])
def test_transient_faults_are_retried(server, videos, shas, api, fault):
    server.baidu_scores[shas[0]] = 0.7
    server.tianyan_results[shas[0]] = {"live": True, "action_passed": True, "score": 0.7}
    if api == "tianyan" and fault == "busy":
        fault = "qps"
    server.faults[api] = [fault, fault]
    provider = baidu(server) if api == "baidu" else tianyan(server)
    verdict = provider.verify(videos[0], "blink")
    assert verdict.passed and verdict.score == 0.7
    path = VERIFY_PATH if api == "baidu" else TIANYAN_PATH
    assert server.counts[path] == 3 and provider.calls == 3 and provider.retries == 2


def test_attempts_are_capped_and_errors_never_cached(server, videos, tmp_path):
    server.faults["baidu"] = ["500"] * 20
    provider = baidu(server, http={"max_attempts": 3})
    with pytest.raises(RetriesExhausted, match="after 3 attempts; last error: baidu: HTTP 500"):
        provider.verify(videos[0], "blink")
    assert server.counts[VERIFY_PATH] == 3
    fakes = fakes_table(videos).head(1)
    with VerdictCache(tmp_path / "cache.sqlite") as cache:
        table = verify_shard(fakes, baidu(server, http={"max_attempts": 3}), cache)
        assert table["passed"].to_list() == [None] and cache.count() == 0
        (stats,) = cache.stats()
        assert stats["errors"] == 1 and stats["calls"] == 3 and stats["misses"] == 1


@pytest.mark.parametrize("api", ["baidu", "tianyan"])
@pytest.mark.parametrize("fault", ["unknown", "malformed", "mistyped"])
def test_unknown_or_broken_answers_leave_only_that_video_unjudged(server, videos, tmp_path,
                                                                    api, fault):
    fakes = fakes_table(videos).filter(pl.col("action") != "smile")  # tianyan judges these
    server.faults[api] = [fault]
    make = baidu if api == "baidu" else tianyan
    path = VERIFY_PATH if api == "baidu" else TIANYAN_PATH
    with VerdictCache(tmp_path / "cache.sqlite") as cache:
        first = verify_shard(fakes, make(server, http={"concurrency": 1}), cache)
        assert first["passed"].null_count() == 1 and server.counts[path] == fakes.height
        assert cache.count() == fakes.height - 1  # the unjudged video is not cached
        unjudged = first.filter(pl.col("passed").is_null())
        assert json.loads(unjudged["details"][0])["unjudged"].startswith(api)
        second = verify_shard(fakes, make(server), cache)  # asks only about that one
    assert server.counts[path] == fakes.height + 1
    assert second["passed"].null_count() == 0
    assert second["cached"].to_list() == [c is not None for c in first["passed"]]


def test_unreachable_provider_stops_fast_with_one_line(one_server, videos):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"
    provider = BaiduProvider(token_url=dead + TOKEN_PATH, verify_url=dead + VERIFY_PATH,
                             http={"qps": 5, "concurrency": 4})  # default backoff and limits
    start = time.perf_counter()
    with pytest.raises(ProviderUnreachable) as info:
        provider.verify_many([(videos[i % len(videos)], "blink") for i in range(40)])
    assert time.perf_counter() - start < 15
    message = str(info.value)
    assert message.startswith(f"baidu: cannot reach 127.0.0.1:{port}") and "\n" not in message


def test_expired_and_invalid_tokens_are_refreshed(server, videos):
    provider = baidu(server)
    provider.verify(videos[0], "blink")
    server.faults["baidu"] = ["expire"]  # the token in use expires: error 111
    provider.verify(videos[1], "blink")  # refreshed once, sent again, inside this call
    assert server.counts[TOKEN_PATH] == 2 and server.counts[VERIFY_PATH] == 3
    server.tokens.clear()  # the server forgets every token: error 110
    assert provider.verify(videos[2], "blink").provider == "baidu"
    assert server.counts[TOKEN_PATH] == 3 and server.counts[VERIFY_PATH] == 5
    # a token kept past its lifetime (minus the margin) is renewed before use
    short = baidu(server, token_margin=0.0)
    server.token_lifetime = 1
    short.verify(videos[0], "blink")
    time.sleep(1.1)
    short.verify(videos[1], "blink")
    assert server.counts[TOKEN_PATH] == 5
    # a token refused again right after renewal leaves the video unjudged; renewals are
    # bounded per job
    server.faults["baidu"] = ["expire", "expire"]
    with pytest.raises(Unjudged, match="refused again with a fresh token"):
        baidu(server).verify(videos[3], "blink")
    bounded = baidu(server, http={"max_token_requests": 2})
    server.faults["baidu"] = ["expire", "expire"]
    with pytest.raises(Unjudged):
        bounded.verify(videos[3], "blink")
    with pytest.raises(AuthError, match="2 token requests and still no token"):
        server.faults["baidu"] = ["expire"]
        bounded.verify(videos[4], "blink")


@pytest.mark.parametrize(("api", "fault", "message"), [
    ("baidu", "quota", "error 17: daily request quota reached"),
    ("baidu", "total_quota", "error 19: total request quota reached"),
    ("tianyan", "quota", "code 1004: quota used up"),
])
def test_quota_stops_cleanly_and_keeps_what_was_paid_for(server, videos, tmp_path, api, fault,
                                                          message):
    fakes = fakes_table(videos).filter(pl.col("action") != "smile")
    server.faults[api] = ["ok", "ok", fault]
    make = baidu if api == "baidu" else tianyan
    path = VERIFY_PATH if api == "baidu" else TIANYAN_PATH
    with VerdictCache(tmp_path / "cache.sqlite") as cache:
        with pytest.raises(QuotaExceeded, match=message):
            verify_shard(fakes, make(server, http={"concurrency": 1}), cache)
        assert cache.count() == 2 and server.counts[path] == 3
        table = verify_shard(fakes, make(server), cache)  # the next day
    assert table["cached"].to_list() == [True, True] + [False] * (fakes.height - 2)
    assert server.counts[path] == 3 + fakes.height - 2


# -- the cache and secrets -------------------------------------------------------------------

def test_a_second_run_makes_no_calls_and_no_secret_is_written(server, videos, tmp_path,
                                                               caplog):
    caplog.set_level(logging.DEBUG)
    fakes = fakes_table(videos)
    policy = {"baidu": ACTIONS, "tianyan": ["blink", "open_mouth", "yaw", "nod"]}
    results, cache_path = tmp_path / "results", tmp_path / "cache" / "liveness.sqlite"
    server.faults["baidu"] = ["429", "expire", "busy"]
    server.faults["tianyan"] = ["500", "qps"]

    def run() -> dict[str, pl.DataFrame]:
        tables = {}
        with VerdictCache(cache_path) as cache:
            for name, make in (("baidu", baidu), ("tianyan", tianyan)):
                tables[name] = verify_shard(fakes, make(server), cache, actions=policy[name])
                out = results / "liveness" / name / "0.parquet"
                out.parent.mkdir(parents=True, exist_ok=True)
                tables[name].write_parquet(out)
        return tables

    first = run()
    calls = dict(server.counts)
    # one request per video and per fault (more when requests in flight share an expired token)
    assert calls[VERIFY_PATH] >= 6 + 3 and calls[TIANYAN_PATH] == 5 + 2
    assert first["baidu"].height == 6 and first["tianyan"].height == 5
    assert not first["baidu"]["cached"].any()
    second = run()
    assert dict(server.counts) == calls  # not a single request, not even a token
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
    leaks = [*SECRETS.values(), *server.tokens]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("liveness.sqlite") for p in files)
    for path in files:
        data = path.read_bytes()
        assert not [s for s in leaks if s.encode() in data], path
    assert caplog.text and not [s for s in leaks if s in caplog.text]


def test_verdict_cache_keys_on_provider_config_version(server, videos, tmp_path):
    fakes = fakes_table(videos).head(2)
    with VerdictCache(tmp_path / "c.sqlite") as cache:
        verify_shard(fakes, baidu(server, threshold="frr_1e-3"), cache)
        verify_shard(fakes, baidu(server, threshold="frr_1e-3"), cache)
        assert server.counts[VERIFY_PATH] == 2
        verify_shard(fakes, baidu(server, threshold="frr_1e-2"), cache)  # another version
        assert server.counts[VERIFY_PATH] == 4 and cache.count("baidu") == 4


@pytest.mark.parametrize("qps", [5, 12])
def test_no_window_of_one_second_holds_more_than_qps_requests(one_server, videos, qps):
    """Server-side arrival times of 36 calls, the first ones waiting for the token."""
    server = one_server
    server.delay = 0.02
    provider = baidu(server, http={"qps": qps, "concurrency": 8})
    n = 36 if qps > 5 else 30
    start = time.perf_counter()
    verdicts = provider.verify_many([(videos[i % len(videos)], "blink") for i in range(n)])
    elapsed = time.perf_counter() - start
    assert all(v.provider == "baidu" for v in verdicts)
    arrivals = server.arrivals[VERIFY_PATH]
    assert len(arrivals) == n and max_in_window(arrivals) <= qps
    assert elapsed < (n / qps) * 1.2 + 1.0  # and not much slower than the limit


@pytest.mark.parametrize("qps", [5])
def test_qps_holds_through_token_renewals_retries_and_slow_answers(one_server, videos, qps):
    """Server-side arrival times with every fault that delays a request after it was meant to
    go: a token that expires mid-run and takes 1.3 s to renew, QPS refusals (error 18), 500s,
    slow and cut-short answers. No sliding 1 s window holds more than `qps` arrivals."""
    server = one_server
    server.token_delay, server.slow_seconds = 1.3, 0.6
    faults = ["slow", "qps", "500", "expire", "qps", "slow", "malformed", "qps", "500", "slow",
              "qps", "qps"]
    server.faults["baidu"] = [f for fault in faults for f in (None, None, fault)]
    provider = baidu(server, http={"qps": qps, "concurrency": 4, "max_attempts": 6,
                                   "timeout": 5.0, "backoff_base": 0.05, "backoff_max": 0.2})
    n = 30
    verdicts = provider.verify_many([(videos[i % len(videos)], "blink") for i in range(n)])
    judged = [v for v in verdicts if not isinstance(v, Exception)]
    assert len(judged) >= n - 1  # the cut-short answer leaves one video unjudged at most
    assert provider.token_calls == server.counts[TOKEN_PATH] == 2 and provider.retries == 7
    arrivals = server.arrivals[VERIFY_PATH]
    assert len(arrivals) == provider.calls > n
    assert max_in_window(arrivals) <= qps, sorted(arrivals)


def test_a_request_takes_its_slot_when_it_goes_out_not_before(one_server, videos):
    """Requests that wait for a pooled connection (one connection, a slow first answer) take
    their slots when they are sent: had they taken them while waiting, they would all arrive
    at once when the connection frees."""
    server = one_server
    server.slow_seconds = 1.5
    server.faults["baidu"] = ["slow"]
    provider = baidu(server, http={"qps": 5, "concurrency": 6, "connections": 1,
                                   "timeout": 5.0})
    provider.verify_many([(videos[i % len(videos)], "blink") for i in range(12)])
    arrivals = server.arrivals[VERIFY_PATH]
    assert len(arrivals) == 12 and max_in_window(arrivals) <= 5, sorted(arrivals)


def test_jobs_share_one_accounts_qps(one_server, videos):
    """Two jobs on one account at `jobs: 2`: each sends at qps / 2, together within qps."""
    import threading

    server = one_server
    providers = [baidu(server, http={"qps": 6, "jobs": 2}) for _ in range(2)]
    items = [(videos[i % len(videos)], "blink") for i in range(12)]
    threads = [threading.Thread(target=p.verify_many, args=(items,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    arrivals = server.arrivals[VERIFY_PATH]
    assert len(arrivals) == 24 and max_in_window(arrivals) <= 6, sorted(arrivals)


def test_the_window_holds_across_batches(one_server, videos):
    """One provider, several batches (each its own event loop): the limiter remembers."""
    server = one_server
    provider = baidu(server, http={"qps": 4})
    for _ in range(3):
        provider.verify_many([(videos[i], "blink") for i in range(3)])
    assert max_in_window(server.arrivals[VERIFY_PATH]) <= 4


def test_sliding_window_limiter_spaces_slots():
    async def take(n: int) -> list[float]:
        limiter, times = SlidingWindowLimiter(qps=20, margin=0.0), []
        for _ in range(n):
            await limiter.acquire()
            times.append(time.monotonic())
        return times

    times = asyncio.run(take(21))
    assert max_in_window(times) <= 20 and 0.95 <= times[-1] - times[0] < 1.5


def test_registry_builds_remote_providers(server):
    provider = make_provider("baidu", verify_url=server.urls()["verify_url"])
    assert isinstance(provider, BaiduProvider) and provider.http.qps == 5
    with pytest.raises(ValueError, match="threshold must be in"):
        make_provider("tianyan", threshold=2)


# -- the command line ------------------------------------------------------------------------

def test_cli_stats_and_export(one_server, videos, tmp_path):
    server = one_server
    cache_path = tmp_path / "c.sqlite"
    fakes = fakes_table(videos)
    with VerdictCache(cache_path) as cache:
        verify_shard(fakes, baidu(server), cache)
        verify_shard(fakes, baidu(server), cache)
    cli = [sys.executable, "-m", "dfmnist.liveness"]
    out = subprocess.run([*cli, "stats", "--cache", str(cache_path)], capture_output=True,
                         text=True, check=True).stdout
    header, *rows = [ln.split() for ln in out.splitlines() if ln.strip()]
    assert header == ["provider", "verdicts", "passed", "hits", "misses", "calls", "retries",
                      "token_calls", "errors"]
    (row,) = rows
    passed = sum(v.passed for v in baidu(server).verify_many([(p, "blink") for p in videos]))
    assert row == ["baidu", "6", str(passed), "6", "6", "6", "0", "1", "0"]
    assert not (tmp_path / "c.sqlite-wal").exists()  # rollback journal, not WAL
    parquet = tmp_path / "verdicts.parquet"
    subprocess.run([*cli, "export", "--cache", str(cache_path), "--out", str(parquet)],
                   check=True, capture_output=True)
    table = pl.read_parquet(parquet)
    assert table.height == 6 and set(table["video_sha256"]) == set(fakes["sha256"])
    assert json.loads(table["details"][0])["thresholds"]["frr_1e-4"] == 0.05


def test_jobs_write_journals_and_one_merge_folds_them_in(one_server, videos, tmp_path):
    """Two jobs (as on two hosts) never write the shared file; stats/export see their
    verdicts before and after the merge; a rerun asks nothing."""
    server, cache_path = one_server, tmp_path / "c.sqlite"
    fakes = fakes_table(videos)
    with JobCache(cache_path, "baidu-0") as a, JobCache(cache_path, "baidu-1") as b:
        verify_shard(fakes.head(3), baidu(server), a)
        verify_shard(fakes.tail(3), baidu(server), b)
    assert not cache_path.exists() and len(read_journals(cache_path)) == 2
    cli = [sys.executable, "-m", "dfmnist.liveness"]
    out = subprocess.run([*cli, "stats", "--cache", str(cache_path)], capture_output=True,
                         text=True, check=True).stdout
    assert out.splitlines()[1].split()[:2] == ["baidu", "6"]
    assert merge(cache_path) == {"journals": 2, "verdicts": 6, "removed": 2}
    with VerdictCache(cache_path) as cache:
        (stats,) = cache.stats()
    assert stats["verdicts"] == 6 and stats["calls"] == 6 and stats["misses"] == 6
    calls = server.counts[VERIFY_PATH]
    with JobCache(cache_path, "baidu-0") as again:
        assert verify_shard(fakes, baidu(server), again)["cached"].all()
    assert server.counts[VERIFY_PATH] == calls
    assert merge(cache_path)["verdicts"] == 0
    with VerdictCache(cache_path) as cache:
        assert cache.stats()[0]["hits"] == 6 and cache.count() == 6

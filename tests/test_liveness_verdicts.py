"""Baidu and TianyanData verdicts from a real HTTP server on 127.0.0.1 (tests/liveness_server):
scores against thresholds, refusals, signed requests, credentials, retried transient faults,
unjudged videos, token renewal and quotas.

Real ffmpeg-encoded videos of a real face go over real sockets; the server answers in the
shapes Baidu's documents show, checks tokens and signatures, injects faults and counts every
request.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import polars as pl
import pytest

from dfmnist.liveness import BaiduProvider, make_provider
from dfmnist.liveness.cache import VerdictCache
from dfmnist.liveness.remote import (
    AuthError,
    ProviderUnreachable,
    QuotaExceeded,
    RetriesExhausted,
    Unjudged,
)
from dfmnist.liveness.shard import verify_shard
from dfmnist.storage.files import sha256_file

from liveness_clients import ACTIONS, baidu, fakes_table, tianyan
from liveness_server import (
    SECRETS,
    TIANYAN_PATH,
    TOKEN_PATH,
    VERIFY_PATH,
    face_videos,
    start_server,
)

RequestRejected = Unjudged


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


def test_registry_builds_remote_providers(server):
    provider = make_provider("baidu", verify_url=server.urls()["verify_url"])
    assert isinstance(provider, BaiduProvider) and provider.http.qps == 5
    with pytest.raises(ValueError, match="threshold must be in"):
        make_provider("tianyan", threshold=2)


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

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

from liveness_clients import baidu, fakes_table, tianyan
from liveness_server import (
    SECRETS,
    TIANYAN_PATH,
    TOKEN_PATH,
    VERIFY_PATH,
)

RequestRejected = Unjudged


@pytest.fixture
def shas(api_videos) -> list[str]:
    return [sha256_file(p) for p in api_videos]


# -- verdicts --------------------------------------------------------------------------------


def test_baidu_verdicts_follow_the_score_and_the_configured_threshold(api_server, api_videos, shas):
    for sha, score in zip(shas[:4], [0.95, 0.5, 0.1, 0.01], strict=True):
        api_server.baidu_scores[sha] = score
    items = [(p, "blink") for p in api_videos[:4]]
    named = baidu(api_server, threshold="frr_1e-3")  # 0.3 in the server's answer
    verdicts = named.verify_many(items)
    assert [v.passed for v in verdicts] == [True, True, False, False]
    assert [v.score for v in verdicts] == [0.95, 0.5, 0.1, 0.01]
    assert verdicts[0].details["threshold_value"] == 0.3
    assert verdicts[0].details["thresholds"]["frr_1e-4"] == 0.05
    # one token for the whole batch, one request per video
    assert api_server.counts[TOKEN_PATH] == 1 and api_server.counts[VERIFY_PATH] == 4
    fixed = baidu(api_server, threshold=0.6)
    assert [v.passed for v in fixed.verify_many(items)] == [True, False, False, False]
    assert fixed.config_version() != named.config_version()
    with pytest.raises(RequestRejected, match="no numeric threshold 'frr_9'"):
        baidu(api_server, threshold="frr_9").verify(api_videos[0], "yaw")


def test_baidu_refusals_are_failed_verdicts_with_code_and_message(api_server, tmp_path, api_videos,
                                                                   shas):
    junk = tmp_path / "not_a_video.mp4"
    junk.write_bytes(b"plain text, not an mp4")
    verdict = baidu(api_server).verify(junk, "blink")  # "not found video info"
    assert not verdict.passed and verdict.details["code"] == 216508
    assert verdict.details["reason"] == "not found video info" and verdict.details["refused"]
    api_server.refusals[shas[0]] = 216501  # no face
    api_server.faults["baidu"] = ["refuse:216434"]  # liveness check failed
    got = baidu(api_server, http={"concurrency": 1}).verify_many(
        [(api_videos[1], "blink"), (api_videos[0], "yaw"), (api_videos[2], "nod")])
    assert [v.details.get("code") for v in got] == [216434, 216501, None]
    assert got[1].details["reason"] == "not found face" and got[2].details["score"] > 0


def test_tianyan_sends_signed_action_requests(api_server, api_videos, shas):
    api_server.tianyan_results[shas[0]] = {"live": True, "action_passed": True, "score": 0.8}
    api_server.tianyan_results[shas[1]] = {"live": True, "action_passed": False, "score": 0.9}
    api_server.tianyan_results[shas[2]] = {"live": False, "action_passed": True, "score": 0.9}
    api_server.tianyan_results[shas[3]] = {"live": True, "action_passed": True, "score": 0.4}
    provider = tianyan(api_server)
    items = [(api_videos[0], "blink"), (api_videos[1], "open_mouth"), (api_videos[2], "yaw"),
             (api_videos[3], "nod")]
    verdicts = provider.verify_many(items)
    assert [v.passed for v in verdicts] == [True, False, False, False]
    assert sorted(api_server.actions_seen) == ["blink", "mouth", "nod", "yaw"]
    assert verdicts[1].details["action_passed"] is False
    # actions TianyanData does not check are refused without a request
    with pytest.raises(RequestRejected, match="'smile' is not supported"):
        provider.verify(api_videos[4], "smile")
    assert api_server.counts[TIANYAN_PATH] == 4


def test_wrong_credentials_stop_the_batch_without_leaking(api_server, api_videos, monkeypatch):
    monkeypatch.setenv("TIANYAN_SECRET", "not-the-secret-0451")
    with pytest.raises(AuthError, match="code 1001") as info:
        tianyan(api_server).verify_many([(p, "blink") for p in api_videos])
    assert "not-the-secret-0451" not in str(info.value)
    monkeypatch.setenv("BAIDU_SECRET_KEY", "wrong-baidu-secret-77")
    with pytest.raises(AuthError, match="Client authentication failed") as info:
        baidu(api_server).verify_many([(p, "blink") for p in api_videos])  # stops at once
    message = str(info.value)
    assert message.startswith("baidu: ") and "\n" not in message
    assert "wrong-baidu-secret-77" not in message and SECRETS["BAIDU_API_KEY"] not in message
    assert api_server.counts[TOKEN_PATH] == 1  # one token request, no retry of bad credentials
    monkeypatch.setenv("BAIDU_API_KEY", "unknown-key-31")
    with pytest.raises(AuthError, match="invalid_client: unknown client id"):
        baidu(api_server).verify(api_videos[0], "blink")
    monkeypatch.delenv("BAIDU_API_KEY")
    with pytest.raises(AuthError, match="BAIDU_API_KEY is not set"):
        baidu(api_server).verify(api_videos[0], "blink")
    assert api_server.counts[VERIFY_PATH] == 0


def test_registry_builds_remote_providers(api_server):
    provider = make_provider("baidu", verify_url=api_server.urls()["verify_url"])
    assert isinstance(provider, BaiduProvider) and provider.http.qps == 5
    with pytest.raises(ValueError, match="threshold must be in"):
        make_provider("tianyan", threshold=2)


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["baidu", "tianyan"])
@pytest.mark.parametrize("fault", ["429", "500", "slow", "qps", "busy"])
def test_transient_faults_are_retried(api_server, api_videos, shas, api, fault):
    api_server.baidu_scores[shas[0]] = 0.7
    api_server.tianyan_results[shas[0]] = {"live": True, "action_passed": True, "score": 0.7}
    if api == "tianyan" and fault == "busy":
        fault = "qps"
    api_server.faults[api] = [fault, fault]
    provider = baidu(api_server) if api == "baidu" else tianyan(api_server)
    verdict = provider.verify(api_videos[0], "blink")
    assert verdict.passed and verdict.score == 0.7
    path = VERIFY_PATH if api == "baidu" else TIANYAN_PATH
    assert api_server.counts[path] == 3 and provider.calls == 3 and provider.retries == 2


def test_attempts_are_capped_and_errors_never_cached(api_server, api_videos, tmp_path):
    api_server.faults["baidu"] = ["500"] * 20
    provider = baidu(api_server, http={"max_attempts": 3})
    with pytest.raises(RetriesExhausted, match="after 3 attempts; last error: baidu: HTTP 500"):
        provider.verify(api_videos[0], "blink")
    assert api_server.counts[VERIFY_PATH] == 3
    fakes = fakes_table(api_videos).head(1)
    with VerdictCache(tmp_path / "cache.sqlite") as cache:
        table = verify_shard(fakes, baidu(api_server, http={"max_attempts": 3}), cache)
        assert table["passed"].to_list() == [None] and cache.count() == 0
        (stats,) = cache.stats()
        assert stats["errors"] == 1 and stats["calls"] == 3 and stats["misses"] == 1


@pytest.mark.parametrize("api", ["baidu", "tianyan"])
@pytest.mark.parametrize("fault", ["unknown", "malformed", "mistyped"])
def test_unknown_or_broken_answers_leave_only_that_video_unjudged(api_server, api_videos, tmp_path,
                                                                    api, fault):
    fakes = fakes_table(api_videos).filter(pl.col("action") != "smile")  # tianyan judges these
    api_server.faults[api] = [fault]
    make = baidu if api == "baidu" else tianyan
    path = VERIFY_PATH if api == "baidu" else TIANYAN_PATH
    with VerdictCache(tmp_path / "cache.sqlite") as cache:
        first = verify_shard(fakes, make(api_server, http={"concurrency": 1}), cache)
        assert first["passed"].null_count() == 1 and api_server.counts[path] == fakes.height
        assert cache.count() == fakes.height - 1  # the unjudged video is not cached
        unjudged = first.filter(pl.col("passed").is_null())
        assert json.loads(unjudged["details"][0])["unjudged"].startswith(api)
        second = verify_shard(fakes, make(api_server), cache)  # asks only about that one
    assert api_server.counts[path] == fakes.height + 1
    assert second["passed"].null_count() == 0
    assert second["cached"].to_list() == [c is not None for c in first["passed"]]


def test_unreachable_provider_stops_fast_with_one_line(api_one_server, api_videos):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"
    provider = BaiduProvider(token_url=dead + TOKEN_PATH, verify_url=dead + VERIFY_PATH,
                             http={"qps": 5, "concurrency": 4})  # default backoff and limits
    start = time.perf_counter()
    with pytest.raises(ProviderUnreachable) as info:
        provider.verify_many([(api_videos[i % len(api_videos)], "blink") for i in range(40)])
    assert time.perf_counter() - start < 15
    message = str(info.value)
    assert message.startswith(f"baidu: cannot reach 127.0.0.1:{port}") and "\n" not in message


def test_expired_and_invalid_tokens_are_refreshed(api_server, api_videos):
    provider = baidu(api_server)
    provider.verify(api_videos[0], "blink")
    api_server.faults["baidu"] = ["expire"]  # the token in use expires: error 111
    provider.verify(api_videos[1], "blink")  # refreshed once, sent again, inside this call
    assert api_server.counts[TOKEN_PATH] == 2 and api_server.counts[VERIFY_PATH] == 3
    api_server.tokens.clear()  # the server forgets every token: error 110
    assert provider.verify(api_videos[2], "blink").provider == "baidu"
    assert api_server.counts[TOKEN_PATH] == 3 and api_server.counts[VERIFY_PATH] == 5
    # a token kept past its lifetime (minus the margin) is renewed before use
    short = baidu(api_server, token_margin=0.0)
    api_server.token_lifetime = 1
    short.verify(api_videos[0], "blink")
    time.sleep(1.1)
    short.verify(api_videos[1], "blink")
    assert api_server.counts[TOKEN_PATH] == 5
    # a token refused again right after renewal leaves the video unjudged; renewals are
    # bounded per job
    api_server.faults["baidu"] = ["expire", "expire"]
    with pytest.raises(Unjudged, match="refused again with a fresh token"):
        baidu(api_server).verify(api_videos[3], "blink")
    bounded = baidu(api_server, http={"max_token_requests": 2})
    api_server.faults["baidu"] = ["expire", "expire"]
    with pytest.raises(Unjudged):
        bounded.verify(api_videos[3], "blink")
    with pytest.raises(AuthError, match="2 token requests and still no token"):
        api_server.faults["baidu"] = ["expire"]
        bounded.verify(api_videos[4], "blink")


@pytest.mark.parametrize(("api", "fault", "message"), [
    ("baidu", "quota", "error 17: daily request quota reached"),
    ("baidu", "total_quota", "error 19: total request quota reached"),
    ("tianyan", "quota", "code 1004: quota used up"),
])
def test_quota_stops_cleanly_and_keeps_what_was_paid_for(api_server, api_videos, tmp_path, api,
                                                          fault, message):
    fakes = fakes_table(api_videos).filter(pl.col("action") != "smile")
    api_server.faults[api] = ["ok", "ok", fault]
    make = baidu if api == "baidu" else tianyan
    path = VERIFY_PATH if api == "baidu" else TIANYAN_PATH
    with VerdictCache(tmp_path / "cache.sqlite") as cache:
        with pytest.raises(QuotaExceeded, match=message):
            verify_shard(fakes, make(api_server, http={"concurrency": 1}), cache)
        assert cache.count() == 2 and api_server.counts[path] == 3
        table = verify_shard(fakes, make(api_server), cache)  # the next day
    assert table["cached"].to_list() == [True, True] + [False] * (fakes.height - 2)
    assert api_server.counts[path] == 3 + fakes.height - 2

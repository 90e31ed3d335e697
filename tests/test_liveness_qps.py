"""Request rates against a real HTTP server on 127.0.0.1 (tests/liveness_server), measured by
the server's arrival times: no sliding 1 s window holds more than `qps` requests, through
token renewals, retries, slow answers, pooled connections, jobs sharing an account and
batches; the limiter itself."""

from __future__ import annotations

import asyncio
import time

import pytest

from dfmnist.liveness.remote import SlidingWindowLimiter

from liveness_clients import baidu
from liveness_server import TOKEN_PATH, VERIFY_PATH


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most arrivals inside any sliding window of `window` seconds."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while t - times[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.parametrize("qps", [5, 12])
def test_no_window_of_one_second_holds_more_than_qps_requests(api_one_server, api_videos, qps):
    """Server-side arrival times of 36 calls, the first ones waiting for the token."""
    api_server = api_one_server
    api_server.delay = 0.02
    provider = baidu(api_server, http={"qps": qps, "concurrency": 8})
    n = 36 if qps > 5 else 30
    start = time.perf_counter()
    verdicts = provider.verify_many([(api_videos[i % len(api_videos)], "blink") for i in range(n)])
    elapsed = time.perf_counter() - start
    assert all(v.provider == "baidu" for v in verdicts)
    arrivals = api_server.arrivals[VERIFY_PATH]
    assert len(arrivals) == n and max_in_window(arrivals) <= qps
    assert elapsed < (n / qps) * 1.2 + 1.0  # and not much slower than the limit


@pytest.mark.parametrize("qps", [5])
def test_qps_holds_through_token_renewals_retries_and_slow_answers(api_one_server, api_videos, qps):
    """Server-side arrival times with every fault that delays a request after it was meant to
    go: a token that expires mid-run and takes 1.3 s to renew, QPS refusals (error 18), 500s,
    slow and cut-short answers. No sliding 1 s window holds more than `qps` arrivals."""
    api_server = api_one_server
    api_server.token_delay, api_server.slow_seconds = 1.3, 0.6
    faults = ["slow", "qps", "500", "expire", "qps", "slow", "malformed", "qps", "500", "slow",
              "qps", "qps"]
    api_server.faults["baidu"] = [f for fault in faults for f in (None, None, fault)]
    provider = baidu(api_server, http={"qps": qps, "concurrency": 4, "max_attempts": 6,
                                   "timeout": 5.0, "backoff_base": 0.05, "backoff_max": 0.2})
    n = 30
    verdicts = provider.verify_many([(api_videos[i % len(api_videos)], "blink") for i in range(n)])
    judged = [v for v in verdicts if not isinstance(v, Exception)]
    assert len(judged) >= n - 1  # the cut-short answer leaves one video unjudged at most
    assert provider.token_calls == api_server.counts[TOKEN_PATH] == 2 and provider.retries == 7
    arrivals = api_server.arrivals[VERIFY_PATH]
    assert len(arrivals) == provider.calls > n
    assert max_in_window(arrivals) <= qps, sorted(arrivals)


def test_a_request_takes_its_slot_when_it_goes_out_not_before(api_one_server, api_videos):
    """Requests that wait for a pooled connection (one connection, a slow first answer) take
    their slots when they are sent: had they taken them while waiting, they would all arrive
    at once when the connection frees."""
    api_server = api_one_server
    api_server.slow_seconds = 1.5
    api_server.faults["baidu"] = ["slow"]
    provider = baidu(api_server, http={"qps": 5, "concurrency": 6, "connections": 1,
                                   "timeout": 5.0})
    provider.verify_many([(api_videos[i % len(api_videos)], "blink") for i in range(12)])
    arrivals = api_server.arrivals[VERIFY_PATH]
    assert len(arrivals) == 12 and max_in_window(arrivals) <= 5, sorted(arrivals)


def test_jobs_share_one_accounts_qps(api_one_server, api_videos):
    """Two jobs on one account at `jobs: 2`: each sends at qps / 2, together within qps."""
    import threading

    api_server = api_one_server
    providers = [baidu(api_server, http={"qps": 6, "jobs": 2}) for _ in range(2)]
    items = [(api_videos[i % len(api_videos)], "blink") for i in range(12)]
    threads = [threading.Thread(target=p.verify_many, args=(items,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    arrivals = api_server.arrivals[VERIFY_PATH]
    assert len(arrivals) == 24 and max_in_window(arrivals) <= 6, sorted(arrivals)


def test_the_window_holds_across_batches(api_one_server, api_videos):
    """One provider, several batches (each its own event loop): the limiter remembers."""
    api_server = api_one_server
    provider = baidu(api_server, http={"qps": 4})
    for _ in range(3):
        provider.verify_many([(api_videos[i], "blink") for i in range(3)])
    assert max_in_window(api_server.arrivals[VERIFY_PATH]) <= 4


def test_sliding_window_limiter_spaces_slots():
    async def take(n: int) -> list[float]:
        limiter, times = SlidingWindowLimiter(qps=20, margin=0.0), []
        for _ in range(n):
            await limiter.acquire()
            times.append(time.monotonic())
        return times

    times = asyncio.run(take(21))
    assert max_in_window(times) <= 20 and 0.95 <= times[-1] - times[0] < 1.5

"""A request-rate limit that holds in every sliding window, as the server sees arrivals."""

from __future__ import annotations

import asyncio
import collections
import math
import time


class SlidingWindowLimiter:
    """At most `qps` sends in any window of `1 + margin` seconds, evenly spaced.

    A slot is taken at the moment of sending (`acquire` returns just before the request
    goes out) and recorded at that time, so the count holds in every sliding window from the
    first request on, not only on average. `margin` absorbs jitter in network latency: the
    server sees arrivals, not sends. Below 1 qps one request per `1/qps` seconds is allowed.
    The record outlives event loops, so one limiter holds across batches (each batch runs
    its own loop).
    """

    def __init__(self, qps: float, margin: float = 0.05) -> None:
        if qps <= 0 or margin < 0:
            raise ValueError(f"qps must be > 0 and margin >= 0, got {qps}, {margin}")
        self.permits = max(1, math.floor(qps))
        self.window = (1.0 if qps >= 1 else 1.0 / qps) + margin
        self.spacing = self.window / self.permits
        self._sent: collections.deque[float] = collections.deque()
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # an asyncio lock serves one loop
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:  # one waiter at a time: slots are handed out in order
            while True:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                wait = 0.0
                if len(self._sent) >= self.permits:
                    wait = self._sent[0] + self.window - now
                if self._sent:
                    wait = max(wait, self._sent[-1] + self.spacing - now)
                if wait <= 0:
                    self._sent.append(now)
                    return
                await asyncio.sleep(wait)

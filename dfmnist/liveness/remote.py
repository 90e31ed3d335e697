"""The HTTP layer shared by the commercial liveness providers (`baidu`, `tianyan`).

One `httpx.AsyncClient` per batch; a token bucket keeps requests within the provider's QPS;
a semaphore bounds the requests in flight; each request has a timeout; timeouts, connection
errors, 5xx, HTTP 429 and the provider's own "too many requests" codes are retried with
exponential backoff and jitter up to `max_attempts` attempts (every attempt, retries included,
takes a token from the bucket). Quota exhaustion and rejected credentials stop the whole batch.

Secrets (keys, secrets, access tokens) are read from environment variables, kept out of
`settings()` and so out of the config version and the cache, and scrubbed from every error
message. httpx's own request log (which would print URLs with the access token) is silenced.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dfmnist.liveness.base import LivenessProvider, Verdict
from dfmnist.store import content_key

log = logging.getLogger(__name__)

# httpx logs every request URL at INFO; Baidu's URLs carry the access token.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class RemoteError(RuntimeError):
    """A provider call failed; the message never contains a secret."""

    #: True when the whole batch must stop (no later request can succeed).
    fatal = False


class RetryableError(RemoteError):
    """A transient failure: timeout, connection error, 5xx, rate limit, malformed answer."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TokenExpired(RetryableError):
    """The access token was refused as invalid or expired: fetch a new one and retry at once."""


class QuotaExceeded(RemoteError):
    """The provider's daily or total quota is used up: stop, keep what was paid for."""

    fatal = True


class AuthError(RemoteError):
    """Credentials or request signature refused: stop, retrying cannot help."""

    fatal = True


class RequestRejected(RemoteError):
    """The provider refused this one request (bad video, unsupported action); not retried."""


class RetriesExhausted(RemoteError):
    """Every attempt failed with a transient error."""


def read_secret(env_var: str, provider: str) -> str:
    """The value of `env_var`, or AuthError naming the variable (never its value)."""
    value = os.environ.get(env_var, "")
    if not value:
        raise AuthError(f"{provider}: environment variable {env_var} is not set")
    return value


class TokenBucket:
    """Asyncio token bucket: `rate` tokens per second, at most `burst` saved up.

    Each `acquire` reserves a slot on a fixed timeline, so waiting callers are released at
    exactly 1/rate intervals without drift.
    """

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()

    async def acquire(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1.0
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self.rate)


@dataclass
class HttpSettings:
    """How requests are made; none of these change a verdict (not in the config version)."""

    qps: float = 5.0
    burst: float = 1.0
    concurrency: int = 4
    timeout: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be >= 1")
        if self.timeout <= 0 or self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("timeout must be > 0, backoff_base and backoff_max >= 0")

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before retry number `attempt` (1-based): exponential, half of it jittered."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)
        return max(delay, min(retry_after or 0.0, self.backoff_max))


#: Called with (index, verdict) as soon as a verdict arrives (e.g. to cache it at once).
OnVerdict = Callable[[int, Verdict], None]


class RemoteProvider(LivenessProvider):
    """A provider behind an HTTP API; subclasses implement one attempt (`_attempt`)."""

    #: Bump when the request or the reading of the answer changes.
    PROTOCOL_VERSION = 1

    def __init__(self, http: HttpSettings | dict[str, Any] | None = None) -> None:
        self.http = http if isinstance(http, HttpSettings) else HttpSettings(**(http or {}))
        self.calls = 0  # requests sent to the verification endpoint, retries included
        self.retries = 0
        self._secrets: set[str] = set()

    # -- what subclasses provide ----------------------------------------------------------

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Every setting that can change a verdict (never a secret)."""

    @abstractmethod
    async def _attempt(self, client: httpx.AsyncClient, video: bytes, action: str) -> Verdict:
        """One request; raises a RemoteError subclass on failure."""

    def supports(self, action: str) -> bool:
        """Whether the provider can judge `action` (all actions unless overridden)."""
        return True

    # -- shared machinery -----------------------------------------------------------------

    def config_version(self) -> str:
        """First 16 hex digits of the sha256 of `settings()` and the protocol version."""
        return content_key({**self.settings(), "protocol": self.PROTOCOL_VERSION})[:16]

    def _secret(self, env_var: str) -> str:
        value = read_secret(env_var, self.name)
        self._secrets.add(value)
        return value

    def redact(self, text: str) -> str:
        """`text` with every secret this provider has seen replaced by ***."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _transport_error(self, exc: httpx.HTTPError) -> RetryableError:
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
        # httpx messages may hold the request URL (and so an access token): scrub them
        return RetryableError(f"{self.name}: {kind}: {self.redact(str(exc))[:200]}")

    def _check_http(self, response: httpx.Response) -> None:
        """Raise RetryableError for 429 and 5xx answers."""
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = response.headers.get("retry-after")
            try:
                wait = float(retry_after) if retry_after else None
            except ValueError:
                wait = None
            raise RetryableError(f"{self.name}: HTTP {response.status_code}", retry_after=wait)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        """The answer as a JSON object; malformed answers are transient (RetryableError)."""
        self._check_http(response)
        try:
            data = response.json()
        except ValueError:
            raise RetryableError(
                f"{self.name}: malformed JSON (HTTP {response.status_code})") from None
        if not isinstance(data, dict):
            raise RetryableError(f"{self.name}: answer is not a JSON object")
        return data

    async def _verify_one(self, client: httpx.AsyncClient, bucket: TokenBucket,
                          path: Path, action: str) -> Verdict:
        self.check_action(action)
        if not self.supports(action):
            raise RequestRejected(f"{self.name}: action {action!r} is not supported")
        video = Path(path).read_bytes()
        last: RetryableError | None = None
        for attempt in range(1, self.http.max_attempts + 1):
            await bucket.acquire()
            self.calls += 1
            try:
                return await self._attempt(client, video, action)
            except TokenExpired as exc:  # a fresh token is fetched on the next attempt
                last = exc
            except RetryableError as exc:
                last = exc
                if attempt < self.http.max_attempts:
                    delay = self.http.backoff(attempt, exc.retry_after)
                    log.warning("%s; retry %d in %.2f s", exc, attempt, delay)
                    await asyncio.sleep(delay)
            if attempt < self.http.max_attempts:
                self.retries += 1
        raise RetriesExhausted(f"{self.name}: {path} ({action}): gave up after "
                               f"{self.http.max_attempts} attempts; last error: {last}")

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.http.concurrency,
                              max_keepalive_connections=self.http.concurrency)
        return httpx.AsyncClient(timeout=self.http.timeout, limits=limits)

    async def averify_many(self, items: Sequence[tuple[Path, str]],
                           on_verdict: OnVerdict | None = None) -> list[Verdict | RemoteError]:
        """Judge every (video, action); per item a Verdict or the RemoteError that stopped it.

        A fatal error (quota, credentials) cancels what is still waiting and is raised once
        the verdicts already received have been handed to `on_verdict`.
        """
        bucket = TokenBucket(self.http.qps, self.http.burst)
        gate = asyncio.Semaphore(self.http.concurrency)
        results: list[Verdict | RemoteError | None] = [None] * len(items)

        async def run(i: int, client: httpx.AsyncClient) -> None:
            async with gate:
                try:
                    verdict = await self._verify_one(client, bucket, *items[i])
                except RemoteError as exc:
                    results[i] = exc
                    if exc.fatal:
                        raise
                    return
                results[i] = verdict
                if on_verdict is not None:
                    on_verdict(i, verdict)

        async with self._client() as client:
            tasks = [asyncio.create_task(run(i, client)) for i in range(len(items))]
            try:
                await asyncio.gather(*tasks)
            except RemoteError:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        return [r if r is not None else RemoteError(f"{self.name}: not attempted")
                for r in results]

    def verify_many(self, items: Sequence[tuple[Path, str]],
                    on_verdict: OnVerdict | None = None) -> list[Verdict | RemoteError]:
        """Synchronous `averify_many` (runs its own event loop)."""
        return asyncio.run(self.averify_many(items, on_verdict))

    def verify(self, video_path: Path, action: str) -> Verdict:
        """Judge one video; raises the RemoteError that stopped it."""
        (result,) = self.verify_many([(Path(video_path), action)])
        if isinstance(result, RemoteError):
            raise result
        return result

    @staticmethod
    def b64(video: bytes) -> str:
        return base64.b64encode(video).decode("ascii")

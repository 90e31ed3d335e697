"""The HTTP layer shared by the commercial liveness providers (`baidu`, `tianyan`).

One `httpx.AsyncClient` per batch. What happens to one video depends on how its answer reads
(each provider sorts its documented codes into these outcomes):

* a verdict: a score, or a definite refusal of this video (no face, unusable video: cached as
  a failed verdict with the provider's code and message);
* transient (timeouts, connection errors, HTTP 429/5xx, the provider's "busy"/QPS codes):
  retried with exponential backoff and jitter, at most `max_attempts` attempts;
* token refused as invalid/expired: a new token is fetched once and the call sent again;
* unjudged (an unknown code, a malformed or mistyped answer, retries used up): only this video
  is left without a verdict (never cached), the batch goes on;
* fatal (credentials refused, quota used up, provider unreachable): the batch stops with one
  line naming the provider; the verdicts already received are kept.

Every request to the verification endpoint takes a slot from a `SlidingWindowLimiter` at the
moment its headers go on the wire (httpcore's trace hook): after its token is ready and after
any wait for a pooled connection, so no delay between taking a slot and sending can bunch
requests. Retries and the resend after a token renewal take slots like any other request.
No 1 s window holds more than `qps` requests, from the first one on, across batches. Several
jobs calling one account at once share its budget: each sends at `qps / jobs` (the workflow
sets `jobs` from `liveness.api_jobs` and lets that many jobs call at once).

Secrets are read from environment variables, kept out of `settings()` (and so out of the
config version and the cache) and scrubbed from every message; httpx's own request log (it
would print URLs holding the access token) is silenced.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import random
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from dfmnist.liveness.base import LivenessProvider, Verdict
from dfmnist.liveness.ratelimit import SlidingWindowLimiter
from dfmnist.storage.store import content_key

log = logging.getLogger(__name__)

# httpx logs every request URL at INFO; Baidu's URLs carry the access token.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class RemoteError(RuntimeError):
    """A provider call failed; the message never contains a secret."""

    #: True when the whole batch must stop (no later request can succeed).
    fatal = False


class RetryableError(RemoteError):
    """A transient failure: timeout, connection error, 5xx, 429, the provider's busy codes."""

    def __init__(self, message: str, retry_after: float | None = None,
                 connect: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.connect = connect  # the server could not be reached at all


class TokenExpired(RemoteError):
    """The access token was refused as invalid or expired: fetch a new one and send again."""


class QuotaExceeded(RemoteError):
    """The provider's daily or total quota is used up: stop, keep what was paid for."""

    fatal = True


class AuthError(RemoteError):
    """Credentials or request signature refused: stop, retrying cannot help."""

    fatal = True


class ProviderUnreachable(RemoteError):
    """Several connection attempts in a row failed: stop instead of retrying for minutes."""

    fatal = True


class Unjudged(RemoteError):
    """This one video got no verdict (unknown code, malformed or mistyped answer, action not
    supported); it is not cached, so the next run asks again."""


#: Kept for callers of the earlier name.
RequestRejected = Unjudged


class RetriesExhausted(Unjudged):
    """Every attempt failed with a transient error."""


def read_secret(env_var: str, provider: str) -> str:
    """The value of `env_var`, or AuthError naming the variable (never its value)."""
    value = os.environ.get(env_var, "")
    if not value:
        raise AuthError(f"{provider}: environment variable {env_var} is not set")
    return value


@dataclass
class HttpSettings:
    """How requests are made; none of these change a verdict (not in the config version).
    The defaults are the schema's `$defs.api_http` ones (tests/test_config_defaults.py checks
    they agree), kept here for providers built outside the workflow."""

    qps: float = 5.0
    window_margin: float = 0.05
    jobs: int = 1  # jobs calling the same account at once: this one sends at qps / jobs
    connections: int = 0  # the connection pool; 0: concurrency + 1 (one for token requests)
    concurrency: int = 4
    timeout: float = 30.0
    connect_timeout: float = 3.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_connect_failures: int = 3
    max_token_requests: int = 5
    token_interval: float = 1.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_attempts < 1 or self.max_connect_failures < 1:
            raise ValueError("concurrency, max_attempts and max_connect_failures must be >= 1")
        if self.jobs < 1 or self.connections < 0:
            raise ValueError("jobs must be >= 1 and connections >= 0")
        if self.max_token_requests < 1:
            raise ValueError("max_token_requests must be >= 1")
        if self.timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError("timeout and connect_timeout must be > 0")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.token_interval < 0:
            raise ValueError("backoff_base, backoff_max and token_interval must be >= 0")

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before retry number `attempt` (1-based): exponential, half of it jittered."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)
        return max(delay, min(retry_after or 0.0, self.backoff_max))


#: Called with (index, verdict) as soon as a verdict arrives (e.g. to cache it at once).
OnVerdict = Callable[[int, Verdict], None]


class RemoteProvider(LivenessProvider):
    """A provider behind an HTTP API; subclasses implement one request (`_attempt`)."""

    #: Bump when the request or the reading of the answer changes.
    PROTOCOL_VERSION = 1

    def __init__(self, http: HttpSettings | dict[str, Any] | None = None) -> None:
        self.http = http if isinstance(http, HttpSettings) else HttpSettings(**(http or {}))
        self.calls = 0  # requests sent to the verification endpoint, retries included
        self.retries = 0
        self.token_calls = 0
        self._secrets: set[str] = set()
        self._connect_failures = 0
        # one limiter for the provider's life: the window holds across batches
        self._limiter = SlidingWindowLimiter(self.http.qps / self.http.jobs,
                                             self.http.window_margin)

    # -- what subclasses provide ----------------------------------------------------------

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Every setting that can change a verdict (never a secret)."""

    @abstractmethod
    async def _attempt(self, client: httpx.AsyncClient, video: bytes, action: str) -> Verdict:
        """One request (after `_prepare`); raises a RemoteError subclass on failure."""

    @abstractmethod
    def host(self) -> str:
        """The host the verification requests go to (named when it cannot be reached)."""

    async def _prepare(self, client: httpx.AsyncClient) -> None:
        """Whatever must be ready before a request takes its slot (e.g. an access token)."""

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

    @staticmethod
    def host_of(url: str) -> str:
        parts = urlsplit(url)
        return parts.netloc or url

    def _transport_error(self, exc: httpx.HTTPError) -> RetryableError:
        connect = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
        # httpx messages may hold the request URL (and so an access token): scrub them
        return RetryableError(f"{self.name}: {kind}: {self.redact(str(exc))[:200]}",
                              connect=connect)

    async def _send(self, client: httpx.AsyncClient, method: str, url: str,
                    counted: bool = False, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange (`counted`: a verification request, counted in `calls`);
        transport failures become RetryableError (connect-flagged)."""
        if counted:
            self.calls += 1
            kwargs["extensions"] = {"trace": self._on_wire}
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        self._connect_failures = 0
        return response

    async def _on_wire(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: a verification request takes its rate slot as its headers
        are about to be sent, on a connection already open (so no pool wait or connect comes
        between the slot and the arrival)."""
        if event.endswith(".send_request_headers.started"):
            await self._limiter.acquire()

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
        """The answer as a JSON object; 429/5xx are transient, anything unreadable leaves
        the video unjudged."""
        self._check_http(response)
        try:
            data = response.json()
        except ValueError:
            raise Unjudged(
                f"{self.name}: malformed answer (HTTP {response.status_code}, not JSON)") from None
        if not isinstance(data, dict):
            raise Unjudged(f"{self.name}: malformed answer (JSON {type(data).__name__}, "
                           "not an object)")
        return data

    def _note_connect_failure(self, exc: RetryableError) -> None:
        if not exc.connect:
            return
        self._connect_failures += 1
        if self._connect_failures >= self.http.max_connect_failures:
            raise ProviderUnreachable(
                f"{self.name}: cannot reach {self.host()} ({self._connect_failures} connection "
                f"failures in a row; last: {exc}); check the network and the endpoint")

    async def _verify_one(self, client: httpx.AsyncClient, path: Path, action: str) -> Verdict:
        self.check_action(action)
        if not self.supports(action):
            raise Unjudged(f"{self.name}: action {action!r} is not supported")
        video = Path(path).read_bytes()
        last: RemoteError | None = None
        token_refreshed = False
        attempt = 0
        while attempt < self.http.max_attempts:
            attempt += 1
            try:
                await self._prepare(client)  # the token is ready before the request is sent
                return await self._attempt(client, video, action)
            except TokenExpired as exc:
                if token_refreshed:  # a fresh token refused at once: not a token problem
                    raise Unjudged(f"{exc}; refused again with a fresh token") from None
                token_refreshed = True
                attempt -= 1  # the renewal and its one resend are not a retry of the video
                last = exc
                continue
            except RetryableError as exc:
                self._note_connect_failure(exc)
                last = exc
            if attempt < self.http.max_attempts:
                self.retries += 1
                delay = self.http.backoff(attempt, getattr(last, "retry_after", None))
                log.info("%s; retry %d in %.2f s", last, attempt, delay)
                await asyncio.sleep(delay)
        raise RetriesExhausted(f"{self.name}: {Path(path).name} ({action}): gave up after "
                               f"{self.http.max_attempts} attempts; last error: {last}")

    def _client(self) -> httpx.AsyncClient:
        pool = self.http.connections or self.http.concurrency + 1
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        timeout = httpx.Timeout(self.http.timeout,
                                connect=min(self.http.connect_timeout, self.http.timeout))
        return httpx.AsyncClient(timeout=timeout, limits=limits)

    async def averify_many(self, items: Sequence[tuple[Path, str]],
                           on_verdict: OnVerdict | None = None) -> list[Verdict | RemoteError]:
        """Judge every (video, action); per item a Verdict or the RemoteError that left it
        unjudged. A fatal error cancels what is still waiting and is raised once the
        verdicts already received have been handed to `on_verdict`."""
        self._connect_failures = 0
        gate = asyncio.Semaphore(self.http.concurrency)
        results: list[Verdict | RemoteError | None] = [None] * len(items)

        async def run(i: int, client: httpx.AsyncClient) -> None:
            async with gate:
                try:
                    verdict = await self._verify_one(client, *items[i])
                except RemoteError as exc:
                    results[i] = exc
                    if exc.fatal:
                        raise
                    log.warning("%s", exc)
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
        return [r if r is not None else Unjudged(f"{self.name}: not attempted")
                for r in results]

    def verify_many(self, items: Sequence[tuple[Path, str]],
                    on_verdict: OnVerdict | None = None) -> list[Verdict | RemoteError]:
        """Synchronous `averify_many` (runs its own event loop)."""
        return asyncio.run(self.averify_many(items, on_verdict))

    def verify(self, video_path: Path, action: str) -> Verdict:
        """Judge one video; raises the RemoteError that left it unjudged."""
        (result,) = self.verify_many([(Path(video_path), action)])
        if isinstance(result, RemoteError):
            raise result
        return result

    def _verdict(self, passed: bool, score: float, action: str,
                 details: dict[str, Any]) -> Verdict:
        details["config_version"] = self.config_version()
        return Verdict(passed=bool(passed), score=round(min(1.0, max(0.0, score)), 6),
                       provider=self.name, action=action, details=details)

    def _refusal(self, code: int, message: str, action: str,
                 details: dict[str, Any]) -> Verdict:
        """A definite refusal of this video (documented code): a failed verdict that keeps
        the provider's code and message."""
        details.update(refused=True, code=code, reason=message)
        return self._verdict(False, 0.0, action, details)

    @staticmethod
    def b64(video: bytes) -> str:
        return base64.b64encode(video).decode("ascii")


def real_number(value: Any) -> float | None:
    """`value` as a float when it is a JSON number (not a bool, not NaN), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def json_int(value: Any) -> int | None:
    """`value` when it is a JSON integer (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value

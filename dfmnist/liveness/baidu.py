"""Baidu AI face video liveness (the H5 "faceliveness/verify" API).

Protocol: an OAuth client-credentials token from `token_url` (API key and secret key from
environment variables), kept until shortly before `expires_in` runs out and fetched again when
the API answers error 110 (invalid token) or 111 (expired token). Each video is POSTed
form-encoded to `verify_url?access_token=...` as `video_base64` (plus `session_id` when
configured). A successful answer has `error_code` 0 and `result.score` with
`result.thresholds` (`frr_1e-4`, `frr_1e-3`, `frr_1e-2`: the scores at those false-accept
rates); the video passes when score >= the configured threshold (a threshold name from the
answer, or a number).

Error codes: 18 (QPS limit) and 4 (cluster limit) are retried with backoff; 17 (daily quota)
and 19 (total quota) stop the batch with QuotaExceeded; codes in `fail_codes` (default 216434,
liveness check failed) are verdicts (not live); any other code rejects that one request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from dfmnist.liveness.base import Verdict
from dfmnist.liveness.remote import (
    AuthError,
    HttpSettings,
    QuotaExceeded,
    RemoteProvider,
    RequestRejected,
    RetryableError,
    TokenExpired,
)

TOKEN_URL = "https://aip.baidubce.com/oauth/2.0/token"
VERIFY_URL = "https://aip.baidubce.com/rest/2.0/face/v1/faceliveness/verify"

TOKEN_ERRORS = {110, 111}
RATE_ERRORS = {4, 18}
QUOTA_ERRORS = {17: "daily request quota reached", 19: "total request quota reached"}


class BaiduProvider(RemoteProvider):
    """Baidu video liveness; judges liveness regardless of the action."""

    name = "baidu"

    def __init__(
        self,
        token_url: str = TOKEN_URL,
        verify_url: str = VERIFY_URL,
        api_key_env: str = "BAIDU_API_KEY",
        secret_key_env: str = "BAIDU_SECRET_KEY",
        threshold: str | float = "frr_1e-4",
        session_id: str | None = None,
        fail_codes: list[int] | tuple[int, ...] = (216434,),
        model_version: str = "",
        token_margin: float = 60.0,
        http: HttpSettings | dict[str, Any] | None = None,
    ) -> None:
        super().__init__(http)
        if isinstance(threshold, (int, float)) and not 0 <= float(threshold) <= 1:
            raise ValueError(f"baidu threshold must be in [0, 1], got {threshold}")
        self.token_url = token_url
        self.verify_url = verify_url
        self.api_key_env = api_key_env
        self.secret_key_env = secret_key_env
        self.threshold = threshold
        self.session_id = session_id or None
        self.fail_codes = tuple(int(c) for c in fail_codes)
        self.model_version = model_version
        self.token_margin = float(token_margin)
        self.token_calls = 0
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def settings(self) -> dict[str, Any]:
        """The threshold, session and verdict codes: what can change a verdict (no secret)."""
        return {"provider": self.name, "threshold": self.threshold,
                "session_id": self.session_id, "fail_codes": list(self.fail_codes),
                "model_version": self.model_version}

    # -- token ----------------------------------------------------------------------------

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._token_lock is None or self._lock_loop is not loop:
            self._token_lock, self._lock_loop = asyncio.Lock(), loop
        return self._token_lock

    async def access_token(self, client: httpx.AsyncClient) -> str:
        """The cached token, or a new one when none is cached or it is about to expire."""
        async with self._lock():
            if self._token and time.monotonic() < self._token_expires:
                return self._token
            params = {"grant_type": "client_credentials",
                      "client_id": self._secret(self.api_key_env),
                      "client_secret": self._secret(self.secret_key_env)}
            self.token_calls += 1
            try:
                response = await client.post(self.token_url, params=params)
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from None
            data = self._json(response)
            token = data.get("access_token")
            if not token:
                reason = self.redact(str(data.get("error_description") or data.get("error")))
                raise AuthError(f"baidu: token request refused: {reason[:200]}")
            self._secrets.add(str(token))
            lifetime = float(data.get("expires_in") or 0)
            self._token = str(token)
            self._token_expires = time.monotonic() + max(0.0, lifetime - self.token_margin)
            return self._token

    def _drop_token(self, token: str) -> None:
        if self._token == token:
            self._token = None

    # -- one verification -----------------------------------------------------------------

    async def _attempt(self, client: httpx.AsyncClient, video: bytes, action: str) -> Verdict:
        token = await self.access_token(client)
        form = {"video_base64": self.b64(video)}
        if self.session_id:
            form["session_id"] = self.session_id
        try:
            response = await client.post(self.verify_url, params={"access_token": token},
                                         data=form)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        data = self._json(response)
        code = int(data.get("error_code") or 0)
        message = self.redact(str(data.get("error_msg") or ""))[:200]
        if code in TOKEN_ERRORS:
            self._drop_token(token)
            raise TokenExpired(f"baidu: error {code} (access token {message or 'refused'})")
        if code in RATE_ERRORS:
            raise RetryableError(f"baidu: error {code} (QPS limit: {message})")
        if code in QUOTA_ERRORS:
            raise QuotaExceeded(f"baidu: error {code}: {QUOTA_ERRORS[code]} ({message}); "
                                "verdicts received so far are cached, run again later")
        details: dict[str, Any] = {"log_id": data.get("log_id")}
        if code in self.fail_codes:
            details.update(error_code=code, reason=message)
            return self._verdict(False, 0.0, action, details)
        if code:
            raise RequestRejected(f"baidu: error {code}: {message}")
        return self._judge(data.get("result"), action, details)

    def _judge(self, result: Any, action: str, details: dict[str, Any]) -> Verdict:
        if not isinstance(result, dict) or "score" not in result:
            raise RetryableError("baidu: answer without result.score")
        score = float(result["score"])
        thresholds = {str(k): float(v) for k, v in (result.get("thresholds") or {}).items()}
        if isinstance(self.threshold, str):
            if self.threshold not in thresholds:
                raise RequestRejected(f"baidu: answer has no threshold {self.threshold!r} "
                                      f"(has {sorted(thresholds)})")
            limit = thresholds[self.threshold]
        else:
            limit = float(self.threshold)
        details.update(score=score, thresholds=thresholds, threshold=self.threshold,
                       threshold_value=limit)
        return self._verdict(score >= limit, score, action, details)

    def _verdict(self, passed: bool, score: float, action: str,
                 details: dict[str, Any]) -> Verdict:
        details["config_version"] = self.config_version()
        return Verdict(passed=bool(passed), score=round(min(1.0, max(0.0, score)), 6),
                       provider=self.name, action=action, details=details)

"""Baidu AI face video liveness (the H5 "faceliveness/verify" API).

What this client relies on, and where Baidu documents it:

* Token (https://ai.baidu.com/ai-doc/REFERENCE/Ck3dwjhhu, "Access Token获取"): POST
  `oauth/2.0/token` with `grant_type=client_credentials`, `client_id` (API key) and
  `client_secret` (secret key) as query parameters. Success: JSON with `access_token` and
  `expires_in` (seconds, 30 days). Failure: JSON ``{"error": "invalid_client",
  "error_description": "unknown client id"}`` (or "Client authentication failed" for a wrong
  secret; other OAuth errors: invalid_request, invalid_grant, unauthorized_client,
  unsupported_grant_type, invalid_scope), with an HTTP 4xx status. Any `error` is fatal here:
  retrying the same credentials cannot help.
* Verification (https://ai.baidu.com/ai-doc/FACE/lk37c1tag, "视频活体检测"): POST
  `rest/2.0/face/v1/faceliveness/verify?access_token=...`, form-encoded `video_base64` (and
  `session_id` when a code session is used). The answer comes with HTTP 200 whether it
  succeeded or not: ``{"err_no": 0, "err_msg": "SUCCESS", "result": {"score": ...,
  "thresholds": {"frr_1e-4": ..., "frr_1e-3": ..., "frr_1e-2": ...}, "pic_list": [...]},
  "timestamp": ..., "cached": 0, "serverlogid": ...}``. The video passes when `result.score`
  >= the configured threshold (a name from `result.thresholds`, or a number).
* Errors (https://ai.baidu.com/ai-doc/FACE/5k37c1ujz, "错误码"): the API gateway answers
  ``{"error_code": 110, "error_msg": "Access token invalid or no longer valid"}``, the
  liveness service ``err_no``/``err_msg``; both spellings are read (err_no first).
  - token refused, fetched again once: 100 (invalid access_token parameter), 110 (invalid or
    no longer valid), 111 (expired);
  - transient, retried with backoff: 1 (unknown error, "please request again"), 2 (service
    temporarily unavailable), 4 (cluster limit), 18 (QPS limit), 216432 (video service call
    failed), 216433 (video service error), 216612 (system busy);
  - fatal, the batch stops: 17 (daily quota), 19 (total quota), 6 (no permission for the
    API), 14 (IAM certification failed);
  - refusals of this video, cached as failed verdicts (`fail_codes`, defaults below): 216434
    (liveness check failed), 216501 (no face found), 216508 (no usable video / several
    faces), 216509 (voice in the video not recognised), 216510 (video too long for action
    liveness), 216908 (face quality too low), 222202 (no face in the frame), 222203 (face
    cannot be parsed), 223113-223116 (face occluded, blurred, badly lit, incomplete), 223129
    (face not frontal), 223131 (synthetic image detected);
  - anything else (e.g. 216100 invalid param, an undocumented code, a malformed or mistyped
    answer): this video is left unjudged.
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
    RetryableError,
    TokenExpired,
    Unjudged,
    json_int,
    real_number,
)

TOKEN_URL = "https://aip.baidubce.com/oauth/2.0/token"
VERIFY_URL = "https://aip.baidubce.com/rest/2.0/face/v1/faceliveness/verify"

TOKEN_ERRORS = frozenset({100, 110, 111})
TRANSIENT_ERRORS = frozenset({1, 2, 4, 18, 216432, 216433, 216612})
QUOTA_ERRORS = {17: "daily request quota reached", 19: "total request quota reached"}
PERMISSION_ERRORS = {6: "no permission for this API", 14: "IAM certification failed"}
REFUSAL_CODES = (216434, 216501, 216508, 216509, 216510, 216908, 222202, 222203, 223113,
                 223114, 223115, 223116, 223129, 223131)


def answer_code(data: dict[str, Any]) -> tuple[int | None, str]:
    """(code, message) from `err_no`/`err_msg` or `error_code`/`error_msg`; code None when
    neither is a JSON integer."""
    for code_key, msg_key in (("err_no", "err_msg"), ("error_code", "error_msg")):
        if code_key in data:
            return json_int(data[code_key]), str(data.get(msg_key) or "")
    return None, ""


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
        fail_codes: list[int] | tuple[int, ...] = REFUSAL_CODES,
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
        self._token: str | None = None
        self._token_expires = 0.0
        self._last_token_request = -float("inf")
        self._token_lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def settings(self) -> dict[str, Any]:
        """The threshold, session and refusal codes: what can change a verdict (no secret)."""
        return {"provider": self.name, "threshold": self.threshold,
                "session_id": self.session_id, "fail_codes": list(self.fail_codes),
                "model_version": self.model_version}

    def host(self) -> str:
        return self.host_of(self.verify_url)

    # -- token ----------------------------------------------------------------------------

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._token_lock is None or self._lock_loop is not loop:
            self._token_lock, self._lock_loop = asyncio.Lock(), loop
        return self._token_lock

    async def _prepare(self, client: httpx.AsyncClient) -> None:
        await self.access_token(client)

    async def access_token(self, client: httpx.AsyncClient) -> str:
        """The cached token, or a new one when none is cached or it is about to expire.
        At most `http.max_token_requests` requests per provider, `http.token_interval` apart."""
        async with self._lock():
            if self._token and time.monotonic() < self._token_expires:
                return self._token
            if self.token_calls >= self.http.max_token_requests:
                raise AuthError(f"baidu: {self.token_calls} token requests and still no token "
                                f"that {self.host()} accepts; stopping")
            wait = self._last_token_request + self.http.token_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            params = {"grant_type": "client_credentials",
                      "client_id": self._secret(self.api_key_env),
                      "client_secret": self._secret(self.secret_key_env)}
            self.token_calls += 1
            self._last_token_request = time.monotonic()
            response = await self._send(client, "POST", self.token_url, params=params)
            if response.status_code == 429 or response.status_code >= 500:
                self._check_http(response)
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise RetryableError(f"baidu: malformed token answer (HTTP "
                                     f"{response.status_code})")
            token = data.get("access_token")
            if "error" in data or not isinstance(token, str) or not token:
                error = self.redact(str(data.get("error") or "no access_token"))[:80]
                reason = self.redact(str(data.get("error_description") or ""))[:160]
                raise AuthError(f"baidu: token request refused ({error}: {reason}); check "
                                f"{self.api_key_env} and {self.secret_key_env}")
            self._secrets.add(token)
            lifetime = real_number(data.get("expires_in"))
            self._token = token
            self._token_expires = (time.monotonic() + max(0.0, lifetime - self.token_margin)
                                   if lifetime is not None else float("inf"))
            return self._token

    def _drop_token(self, token: str) -> None:
        if self._token == token:
            self._token = None

    # -- one verification -----------------------------------------------------------------

    async def _attempt(self, client: httpx.AsyncClient, video: bytes, action: str) -> Verdict:
        token = self._token
        if token is None:  # dropped by a concurrent refusal since _prepare: fetch again
            raise TokenExpired("baidu: access token dropped by a concurrent refusal")
        form = {"video_base64": self.b64(video)}
        if self.session_id:
            form["session_id"] = self.session_id
        response = await self._send(client, "POST", self.verify_url, counted=True,
                                    params={"access_token": token}, data=form)
        data = self._json(response)
        code, message = answer_code(data)
        message = self.redact(message)[:200]
        if code is None:
            raise Unjudged(f"baidu: answer without an integer err_no/error_code "
                           f"(HTTP {response.status_code})")
        if code in TOKEN_ERRORS:
            self._drop_token(token)
            raise TokenExpired(f"baidu: error {code} ({message or 'access token refused'})")
        if code in TRANSIENT_ERRORS:
            raise RetryableError(f"baidu: error {code} ({message})")
        if code in QUOTA_ERRORS:
            raise QuotaExceeded(f"baidu: error {code}: {QUOTA_ERRORS[code]} ({message}); "
                                "verdicts received so far are cached, run again later")
        if code in PERMISSION_ERRORS:
            raise AuthError(f"baidu: error {code}: {PERMISSION_ERRORS[code]} ({message}); "
                            "check the application's API permissions")
        details: dict[str, Any] = {"log_id": data.get("serverlogid", data.get("log_id"))}
        if code in self.fail_codes:
            return self._refusal(code, message, action, details)
        if code:
            raise Unjudged(f"baidu: error {code}: {message} (not a documented refusal)")
        return self._judge(data.get("result"), action, details)

    def _judge(self, result: Any, action: str, details: dict[str, Any]) -> Verdict:
        if not isinstance(result, dict):
            raise Unjudged("baidu: success answer without a result object")
        score = real_number(result.get("score"))
        if score is None or not 0 <= score <= 1:
            raise Unjudged(f"baidu: result.score is not a number in [0, 1] "
                           f"({result.get('score')!r:.40})")
        raw = result.get("thresholds")
        thresholds = ({str(k): real_number(v) for k, v in raw.items()}
                      if isinstance(raw, dict) else {})
        if isinstance(self.threshold, str):
            limit = thresholds.get(self.threshold)
            if limit is None:
                raise Unjudged(f"baidu: answer has no numeric threshold {self.threshold!r} "
                               f"(has {sorted(thresholds)})")
        else:
            limit = float(self.threshold)
        details.update(score=score, thresholds=thresholds, threshold=self.threshold,
                       threshold_value=limit)
        return self._verdict(score >= limit, score, action, details)

"""TianyanData action liveness: the face in the video must be live AND perform the action.

TianyanData's API is sold under contract and its documentation is not public (no public
document, sample answer or SDK of it could be found), so the wire format here is this
project's, kept small and configurable (endpoint, action names, codes); check it against your
contract before paying for calls:

Request: a form-encoded POST to `url` with `appid`, `timestamp` (Unix seconds), `nonce`
(random hex), `action` (the provider's name for the action, see `actions`), `video_base64`
and `sign`: the lowercase hex MD5 of every other field as ``key=value`` joined by ``&`` in key
order, followed by ``&key=<secret>``. The app id and secret come from environment variables.

Answer: JSON ``{"code": 0, "message": ..., "data": {"live": bool, "action_passed": bool,
"score": float}}``. The video passes when live, the action was seen and score >= `threshold`.
Codes: `rate_codes` (default 1003 too many requests, 1005 busy) are retried with backoff,
`quota_codes` (1004) stop the batch, `auth_codes` (1001 bad signature/app id, 1002 timestamp
out of window) stop it too, `fail_codes` (2001 no live face, 3001 video cannot be decoded,
3002 video too short) are refusals (failed verdicts keeping code and message); any other code,
or an answer that is not this shape, leaves that video unjudged.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from typing import Any

import httpx

from dfmnist.liveness.base import Verdict
from dfmnist.liveness.remote import (
    AuthError,
    HttpSettings,
    QuotaExceeded,
    RemoteProvider,
    RetryableError,
    Unjudged,
    json_int,
    real_number,
)

#: The paper's TianyanData actions and the names sent for them.
DEFAULT_ACTIONS = {"blink": "blink", "open_mouth": "mouth", "yaw": "yaw", "nod": "nod"}


def sign(fields: Mapping[str, str], secret: str) -> str:
    """MD5 signature of `fields` (all but `sign`) in key order, with the secret appended."""
    text = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "sign")
    return hashlib.md5(f"{text}&key={secret}".encode()).hexdigest()


class TianyanProvider(RemoteProvider):
    """TianyanData action-specific liveness; only the actions in `actions` can be judged."""

    name = "tianyan"

    def __init__(
        self,
        url: str = "",
        appid_env: str = "TIANYAN_APPID",
        secret_env: str = "TIANYAN_SECRET",
        actions: Mapping[str, str] | None = None,
        threshold: float = 0.5,
        rate_codes: list[int] | tuple[int, ...] = (1003, 1005),
        quota_codes: list[int] | tuple[int, ...] = (1004,),
        auth_codes: list[int] | tuple[int, ...] = (1001, 1002),
        fail_codes: list[int] | tuple[int, ...] = (2001, 3001, 3002),
        model_version: str = "",
        http: HttpSettings | dict[str, Any] | None = None,
    ) -> None:
        super().__init__(http)
        if not 0 <= float(threshold) <= 1:
            raise ValueError(f"tianyan threshold must be in [0, 1], got {threshold}")
        self.url = url
        self.appid_env = appid_env
        self.secret_env = secret_env
        self.actions = dict(DEFAULT_ACTIONS if actions is None else actions)
        for action in self.actions:
            self.check_action(action)
        self.threshold = float(threshold)
        self.rate_codes = tuple(int(c) for c in rate_codes)
        self.quota_codes = tuple(int(c) for c in quota_codes)
        self.auth_codes = tuple(int(c) for c in auth_codes)
        self.fail_codes = tuple(int(c) for c in fail_codes)
        self.model_version = model_version

    def supports(self, action: str) -> bool:
        return action in self.actions

    def host(self) -> str:
        return self.host_of(self.url)

    def settings(self) -> dict[str, Any]:
        """Threshold, action names and verdict codes: what can change a verdict (no secret)."""
        return {"provider": self.name, "threshold": self.threshold,
                "actions": dict(sorted(self.actions.items())),
                "fail_codes": list(self.fail_codes), "model_version": self.model_version}

    def request_fields(self, video: bytes, action: str) -> dict[str, str]:
        """The signed form for one request."""
        if not self.url:
            raise AuthError("tianyan: no endpoint configured (liveness.providers.tianyan.url)")
        fields = {"appid": self._secret(self.appid_env), "timestamp": str(int(time.time())),
                  "nonce": secrets.token_hex(8), "action": self.actions[action],
                  "video_base64": self.b64(video)}
        fields["sign"] = sign(fields, self._secret(self.secret_env))
        return fields

    async def _attempt(self, client: httpx.AsyncClient, video: bytes, action: str) -> Verdict:
        response = await self._send(client, "POST", self.url, counted=True,
                                    data=self.request_fields(video, action))
        data = self._json(response)
        code = json_int(data.get("code"))
        message = self.redact(str(data.get("message") or ""))[:200]
        if code is None:
            raise Unjudged(f"tianyan: answer without an integer code (HTTP "
                           f"{response.status_code})")
        if code in self.rate_codes:
            raise RetryableError(f"tianyan: code {code} (busy: {message})")
        if code in self.quota_codes:
            raise QuotaExceeded(f"tianyan: code {code}: quota used up ({message}); "
                                "verdicts received so far are cached, run again later")
        if code in self.auth_codes:
            raise AuthError(f"tianyan: code {code}: request refused ({message}); "
                            f"check {self.appid_env}, {self.secret_env} and the clock")
        if code in self.fail_codes:
            return self._refusal(code, message, action, {"sent_action": self.actions[action]})
        if code:
            raise Unjudged(f"tianyan: code {code}: {message} (not a known refusal)")
        result = data.get("data")
        if not isinstance(result, dict):
            raise Unjudged("tianyan: success answer without a data object")
        score = real_number(result.get("score"))
        live, seen = result.get("live"), result.get("action_passed")
        if score is None or not 0 <= score <= 1 or not isinstance(live, bool) \
                or not isinstance(seen, bool):
            raise Unjudged("tianyan: data needs live and action_passed (booleans) and score "
                           "(a number in [0, 1])")
        details = {"live": live, "action_passed": seen, "score": score,
                   "threshold": self.threshold, "sent_action": self.actions[action]}
        return self._verdict(live and seen and score >= self.threshold, score, action, details)

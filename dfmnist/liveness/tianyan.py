"""TianyanData action liveness: the face in the video must be live AND perform the action.

TianyanData's API is sold under contract and its documentation is not public, so the wire
format here is this project's, kept small and configurable (endpoint, action names, codes):

Request: a form-encoded POST to `url` with `appid`, `timestamp` (Unix seconds), `nonce`
(random hex), `action` (the provider's name for the action, see `actions`), `video_base64`
and `sign`: the lowercase hex MD5 of every other field as ``key=value`` joined by ``&`` in key
order, followed by ``&key=<secret>``. The app id and secret come from environment variables.

Answer: JSON ``{"code": 0, "message": ..., "data": {"live": bool, "action_passed": bool,
"score": float}}``. The video passes when live, the action was seen and score >= `threshold`.
Codes: `rate_codes` (default 1003) are retried with backoff, `quota_codes` (1004) stop the
batch, `auth_codes` (1001 bad signature/app id, 1002 timestamp out of window) stop it too,
`fail_codes` (2001 no live face) are verdicts (not live); any other code rejects that request.
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
    RequestRejected,
    RetryableError,
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
        rate_codes: list[int] | tuple[int, ...] = (1003,),
        quota_codes: list[int] | tuple[int, ...] = (1004,),
        auth_codes: list[int] | tuple[int, ...] = (1001, 1002),
        fail_codes: list[int] | tuple[int, ...] = (2001,),
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
        try:
            response = await client.post(self.url, data=self.request_fields(video, action))
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        data = self._json(response)
        code = int(data.get("code") or 0)
        message = self.redact(str(data.get("message") or ""))[:200]
        if code in self.rate_codes:
            raise RetryableError(f"tianyan: code {code} (rate limit: {message})")
        if code in self.quota_codes:
            raise QuotaExceeded(f"tianyan: code {code}: quota used up ({message}); "
                                "verdicts received so far are cached, run again later")
        if code in self.auth_codes:
            raise AuthError(f"tianyan: code {code}: request refused ({message}); "
                            f"check {self.appid_env}, {self.secret_env} and the clock")
        if code in self.fail_codes:
            return self._verdict(False, 0.0, action, {"code": code, "reason": message})
        if code:
            raise RequestRejected(f"tianyan: code {code}: {message}")
        result = data.get("data")
        if not isinstance(result, dict) or "score" not in result:
            raise RetryableError("tianyan: answer without data.score")
        score = float(result["score"])
        live = bool(result.get("live"))
        seen = bool(result.get("action_passed"))
        details = {"live": live, "action_passed": seen, "score": score,
                   "threshold": self.threshold, "sent_action": self.actions[action]}
        return self._verdict(live and seen and score >= self.threshold, score, action, details)

    def _verdict(self, passed: bool, score: float, action: str,
                 details: dict[str, Any]) -> Verdict:
        details["config_version"] = self.config_version()
        return Verdict(passed=bool(passed), score=round(min(1.0, max(0.0, score)), 6),
                       provider=self.name, action=action, details=details)

"""A real HTTP server on 127.0.0.1 that speaks the Baidu and TianyanData liveness protocols.

Baidu's answers are shaped as Baidu's documents show them (URLs in dfmnist/liveness/baidu.py):
the token endpoint answers ``access_token``/``expires_in``/``scope``/``session_key``/... or,
for bad credentials, HTTP 401 ``{"error": "invalid_client", "error_description": "unknown
client id"}`` ("Client authentication failed" for a wrong secret); the verification endpoint
answers HTTP 200 in every case, ``{"err_no": 0, "err_msg": "SUCCESS", "result": {"score",
"thresholds", "pic_list"}, "timestamp", "cached", "serverlogid"}`` on success. Error answers
use the gateway's ``error_code``/``error_msg`` (token, QPS, quota: the error-code page's
sample) and the service's ``err_no``/``err_msg`` (video codes); `style="err_no"` answers every
error with ``err_no``. Messages are the documented ones (BAIDU_MESSAGES).

It checks tokens and signatures, decodes the uploaded videos (they must be MP4 files) and
answers with scores set per video sha256 (or derived from the hash). Faults are queued per
endpoint and consumed one per request: "429", "500", "slow" (answer after `slow_seconds`),
"malformed" (broken JSON), "mistyped" (score as a string), "qps" (Baidu error 18 / Tianyan
code 1003), "busy" (Baidu 216612), "quota" (Baidu 17 / Tianyan 1004), "total_quota" (Baidu
19), "expire" (the token in use expires: Baidu 111), "unknown" (an undocumented code),
"refuse:<code>" (that code, e.g. refuse:216501 no face). `refusals` maps a video sha256 to a
code answered for it every time. With `enforce_qps`, more than that many verification requests
arriving within 1 s are answered with error 18. `token_delay` seconds pass before each token
answer (a slow OAuth server). Every request is counted and its arrival time (time.monotonic(),
when its request line and headers are in) recorded per path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from dfmnist.liveness.tianyan import sign
from dfmnist.storage.video import Encoding, write_video

#: Credentials the tests put in the environment (and then look for in every written file).
SECRETS = {"BAIDU_API_KEY": "bk-7f3a9c2e51d04b6e", "BAIDU_SECRET_KEY": "bs-91ac55e0d2f84c17",
           "TIANYAN_APPID": "ty-app-4d2e8b", "TIANYAN_SECRET": "ts-c0ffee9a1b2c3d4e"}

TOKEN_PATH = "/oauth/2.0/token"
VERIFY_PATH = "/rest/2.0/face/v1/faceliveness/verify"
TIANYAN_PATH = "/tianyan/v1/liveness"
THRESHOLDS = {"frr_1e-4": 0.05, "frr_1e-3": 0.3, "frr_1e-2": 0.9}  # the doc's sample answer

#: Baidu's messages for the codes served (https://ai.baidu.com/ai-doc/FACE/5k37c1ujz).
BAIDU_MESSAGES = {
    17: "Open api daily request limit reached", 18: "Open api qps request limit reached",
    19: "Open api total request limit reached", 110: "Access token invalid or no longer valid",
    111: "Access token expired", 216100: "invalid param", 216434: "liveness check fail",
    216501: "not found face", 216508: "not found video info", 216612: "system busy",
    216908: "face quality is not good", 999999: "undocumented error",
}
GATEWAY_CODES = {4, 17, 18, 19, 100, 110, 111}


def face_videos(root: Path, face_image: np.ndarray, n: int) -> list[Path]:
    """`n` different short H.264 clips of a real face drifting across the frame."""
    face = face_image[30:230, 150:350]
    paths = []
    for i in range(n):
        frames = np.stack([np.roll(face[::2, ::2], shift=(i + t) * 2, axis=1)
                           for t in range(6)])
        paths.append(write_video(root / f"fake{i}.mp4", frames, fps=12,
                                 encoding=Encoding(crf=28, preset="ultrafast")))
    return paths


def start_server(monkeypatch) -> LivenessServer:
    """A server with the test credentials, which are also set in the environment."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return LivenessServer(SECRETS["BAIDU_API_KEY"], SECRETS["BAIDU_SECRET_KEY"],
                          SECRETS["TIANYAN_APPID"], SECRETS["TIANYAN_SECRET"], slow_seconds=1.0)


def hash_score(sha: str) -> float:
    return int(sha[:8], 16) / 0xFFFFFFFF


class LivenessServer:
    """The server and its state; use as a context manager (serves in a daemon thread)."""

    def __init__(self, api_key: str, secret_key: str, appid: str, tianyan_secret: str,
                 token_lifetime: int = 2592000, delay: float = 0.0,
                 slow_seconds: float = 1.0, style: str = "documented",
                 enforce_qps: float | None = None, token_delay: float = 0.0) -> None:
        self.api_key, self.secret_key = api_key, secret_key
        self.appid, self.tianyan_secret = appid, tianyan_secret
        self.token_lifetime = token_lifetime
        self.delay = delay
        self.slow_seconds = slow_seconds
        self.token_delay = token_delay
        self.baidu_scores: dict[str, float] = {}
        self.default_score: float | None = None  # for videos not in baidu_scores (else hashed)
        self.tianyan_results: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, list[str]] = {"baidu": [], "tianyan": []}
        self.counts: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = {}
        self.style = style
        self.enforce_qps = enforce_qps
        self.refusals: dict[str, int] = {}  # video sha256 -> Baidu code answered for it
        self.tokens: dict[str, float] = {}  # token -> expiry (time.time())
        self.actions_seen: list[str] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def urls(self) -> dict[str, str]:
        return {"token_url": self.base + TOKEN_PATH, "verify_url": self.base + VERIFY_PATH,
                "tianyan_url": self.base + TIANYAN_PATH}

    def __enter__(self) -> LivenessServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_fault(self, api: str) -> str | None:
        with self.lock:
            return self.faults[api].pop(0) if self.faults[api] else None

    # -- protocol logic (called from handler threads) ---------------------------------------

    def baidu_error(self, code: int) -> dict[str, Any]:
        """An error answer in the documented spelling for `code` (see the module docstring)."""
        message = BAIDU_MESSAGES.get(code, "error")
        if code in GATEWAY_CODES and self.style == "documented":
            return {"error_code": code, "error_msg": message, "log_id": secrets.randbits(40)}
        return {"err_no": code, "err_msg": message, "timestamp": int(time.time()), "cached": 0,
                "serverlogid": str(secrets.randbits(32))}

    def token(self, query: dict[str, str]) -> tuple[int, Any]:
        if query.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "The authorization grant type is not supported"}
        if query.get("client_id") != self.api_key:
            return 401, {"error": "invalid_client", "error_description": "unknown client id"}
        if query.get("client_secret") != self.secret_key:
            return 401, {"error": "invalid_client",
                         "error_description": "Client authentication failed"}
        time.sleep(self.token_delay)
        token = "24." + secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = time.time() + self.token_lifetime
        return 200, {"refresh_token": "25." + secrets.token_hex(16),
                     "expires_in": self.token_lifetime,
                     "session_key": secrets.token_hex(12), "access_token": token,
                     "scope": "public brain_all_scope vis-faceverify_faceverify_h5-face-liveness",
                     "session_secret": secrets.token_hex(16)}

    def baidu(self, query: dict[str, str], form: dict[str, str]) -> tuple[int, Any]:
        token = query.get("access_token", "")
        if self.enforce_qps is not None:
            with self.lock:
                now = self.arrivals[VERIFY_PATH][-1]
                recent = [t for t in self.arrivals[VERIFY_PATH] if now - t < 1.0]
            if len(recent) > self.enforce_qps:
                return 200, self.baidu_error(18)
        fault = self.next_fault("baidu")
        if fault == "expire":
            with self.lock:
                self.tokens[token] = 0.0
        status = self._http_fault(fault)
        if status is not None:
            return status
        codes = {"qps": 18, "busy": 216612, "quota": 17, "total_quota": 19, "unknown": 999999}
        if fault in codes:
            return 200, self.baidu_error(codes[fault])
        if fault and fault.startswith("refuse:"):
            return 200, self.baidu_error(int(fault.split(":")[1]))
        with self.lock:
            expiry = self.tokens.get(token)
        if expiry is None:
            return 200, self.baidu_error(110)
        if expiry < time.time():
            return 200, self.baidu_error(111)
        video = _video(form.get("video_base64", ""))
        if video is None:
            return 200, self.baidu_error(216508)
        sha = hashlib.sha256(video).hexdigest()
        if sha in self.refusals:
            return 200, self.baidu_error(self.refusals[sha])
        score = self.baidu_scores.get(sha, self.default_score)
        score = hash_score(sha) if score is None else score
        result = {"score": score, "thresholds": THRESHOLDS,
                  "pic_list": [{"face_id": secrets.token_hex(8), "pic": "/9j/4AAQSkZJRg=="}]}
        if fault == "mistyped":
            result["score"] = str(score)
        return 200, {"err_no": 0, "err_msg": "SUCCESS", "result": result,
                     "timestamp": int(time.time()), "cached": 0,
                     "serverlogid": str(secrets.randbits(32))}

    def tianyan(self, form: dict[str, str]) -> tuple[int, Any]:
        fault = self.next_fault("tianyan")
        status = self._http_fault(fault)
        if status is not None:
            return status
        if fault == "qps":
            return 200, {"code": 1003, "message": "too many requests"}
        if fault == "quota":
            return 200, {"code": 1004, "message": "quota used up"}
        if fault == "unknown":
            return 200, {"code": 9999, "message": "undocumented"}
        if fault and fault.startswith("refuse:"):
            return 200, {"code": int(fault.split(":")[1]), "message": "refused"}
        if form.get("appid") != self.appid or form.get("sign") != sign(form,
                                                                        self.tianyan_secret):
            return 200, {"code": 1001, "message": "bad signature"}
        if abs(time.time() - float(form.get("timestamp", 0))) > 300:
            return 200, {"code": 1002, "message": "timestamp out of window"}
        video = _video(form.get("video_base64", ""))
        if video is None:
            return 200, {"code": 3001, "message": "video cannot be decoded"}
        with self.lock:
            self.actions_seen.append(form.get("action", ""))
        sha = hashlib.sha256(video).hexdigest()
        result = self.tianyan_results.get(sha)
        if result is None:
            score = hash_score(sha)
            result = {"live": score > 0.3, "action_passed": score > 0.2, "score": score}
        if fault == "mistyped":
            result = {**result, "live": "yes"}
        return 200, {"code": 0, "message": "ok", "data": result}

    def _http_fault(self, fault: str | None) -> tuple[int, Any] | None:
        if fault == "429":
            return 429, {"error": "rate limited"}
        if fault == "500":
            return 500, {"error": "internal"}
        if fault == "malformed":
            return 200, "{\"err_no\": 0, \"result\": {\"score\""  # cut short
        if fault == "slow":
            time.sleep(self.slow_seconds)
        return None


def _video(b64: str) -> bytes | None:
    try:
        data = base64.b64decode(b64, validate=True)
    except ValueError:
        return None
    return data if data[4:8] == b"ftyp" else None  # an MP4 container


def _handler(server: LivenessServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_POST(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            with server.lock:
                server.arrivals.setdefault(url.path, []).append(time.monotonic())
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = {k: v[0] for k, v in parse_qs(body).items()}
            with server.lock:
                server.counts[url.path] += 1
            if server.delay:
                time.sleep(server.delay)
            if url.path == TOKEN_PATH:
                status, payload = server.token({**query, **form})
            elif url.path == VERIFY_PATH:
                status, payload = server.baidu(query, form)
            elif url.path == TIANYAN_PATH:
                status, payload = server.tianyan(form)
            else:
                status, payload = 404, {"error": "not found"}
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    return Handler

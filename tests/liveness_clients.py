"""Baidu and TianyanData clients of tests/liveness_server's server with fast test settings,
and the candidates table verify_shard reads (tests/test_liveness_verdicts.py,
test_liveness_qps.py, test_liveness_cache.py)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from dfmnist.liveness import BaiduProvider, TianyanProvider
from dfmnist.storage.files import sha256_file

from liveness_server import LivenessServer

FAST = {"qps": 200, "concurrency": 4, "timeout": 0.5, "max_attempts": 4,
        "backoff_base": 0.01, "backoff_max": 0.05, "token_interval": 0.05}
ACTIONS = ["blink", "open_mouth", "yaw", "nod", "smile", "blink"]


def baidu(server: LivenessServer, **kw) -> BaiduProvider:
    urls = server.urls()
    return BaiduProvider(token_url=urls["token_url"], verify_url=urls["verify_url"],
                         http={**FAST, **kw.pop("http", {})}, **kw)


def tianyan(server: LivenessServer, **kw) -> TianyanProvider:
    return TianyanProvider(url=server.urls()["tianyan_url"], http={**FAST, **kw.pop("http", {})},
                           **kw)


def fakes_table(videos: list[Path]) -> pl.DataFrame:
    return pl.DataFrame({
        "candidate_id": [f"c{i}" for i in range(len(videos))], "action": ACTIONS,
        "video_path": [str(p) for p in videos], "sha256": [sha256_file(p) for p in videos],
        "rank": list(range(len(videos)))})

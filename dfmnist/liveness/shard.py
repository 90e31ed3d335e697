"""Liveness verdicts for one shard of fakes: the cache first, the provider for the rest."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from dfmnist.liveness.base import LivenessProvider, Verdict

log = logging.getLogger(__name__)

#: One row per fake and provider; `passed` and `score` are null when the fake is unjudged
#: (its `details` then hold {"unjudged": reason}).
VERDICT_SCHEMA = {"candidate_id": pl.String, "action": pl.String, "provider": pl.String,
                  "sha256": pl.String, "passed": pl.Boolean, "score": pl.Float64,
                  "cached": pl.Boolean, "details": pl.String}

#: Parquet key-value metadata of a shard's verdict table: a fresh random value whenever the
#: table has unjudged rows (so the workflow reruns the job), else the value the job ran with.
RETRY_KEY = "dfmnist.liveness.retry"


class Cache(Protocol):
    def get(self, provider: str, config_version: str, action: str, sha256: str
            ) -> Verdict | None: ...

    def put(self, config_version: str, sha256: str, verdict: Verdict) -> None: ...

    def record(self, provider: str, **counts: int) -> None: ...


def verify_shard(fakes: pl.DataFrame, provider: LivenessProvider, cache: Cache,
                 actions: Sequence[str] | None = None) -> pl.DataFrame:
    """One row per fake (only fakes whose action is in `actions`, when given).

    The provider is asked only about videos the cache has not seen, all at once (remote
    providers send them concurrently within their QPS), and each verdict is cached the moment
    it arrives, so a run stopped by a quota or an error never pays twice for what it got.
    A fake the provider could not judge gets a row with null `passed` (never cached: the
    next run asks again); a fatal error (credentials, quota, unreachable) is raised.
    """
    if actions is not None:
        fakes = fakes.filter(pl.col("action").is_in(list(actions)))
    version = provider.config_version()
    rows = list(fakes.iter_rows(named=True))
    got: dict[int, tuple[Verdict, bool]] = {}
    todo: list[int] = []
    for i, fake in enumerate(rows):
        verdict = cache.get(provider.name, version, fake["action"], fake["sha256"])
        if verdict is None:
            todo.append(i)
        else:
            got[i] = (verdict, True)
    cache.record(provider.name, hits=len(got), misses=len(todo))
    log.info("%s: %d fakes, %d verdicts cached, %d to ask", provider.name, len(rows), len(got),
             len(todo))

    def keep(j: int, verdict: Verdict) -> None:
        i = todo[j]
        cache.put(version, rows[i]["sha256"], verdict)
        got[i] = (verdict, False)
        log.info("[%d/%d] %s %s: %s (score %.2f)", len(got), len(rows), provider.name,
                 rows[i]["candidate_id"], "pass" if verdict.passed else "fail", verdict.score)

    before = {k: int(getattr(provider, k, 0)) for k in ("calls", "retries", "token_calls")}
    try:
        results = provider.verify_many([(rows[i]["video_path"], rows[i]["action"])
                                        for i in todo], keep)
    finally:  # counted even when a quota or a credential error stopped the batch
        used = {k: int(getattr(provider, k, 0)) - v for k, v in before.items()}
        if not hasattr(provider, "calls"):  # a local provider: one check per video asked
            used["calls"] = len(todo)
        cache.record(provider.name, errors=len(rows) - len(got), **used)
    reasons = {todo[j]: str(r) for j, r in enumerate(results) if isinstance(r, Exception)}
    if reasons:
        log.warning("%s: %d of %d fakes unjudged (not cached; the next run asks again); "
                    "first: %s", provider.name, len(reasons), len(todo),
                    next(iter(reasons.values())))
    out = []
    for i, fake in enumerate(rows):
        row: dict[str, Any] = {"candidate_id": fake["candidate_id"], "action": fake["action"],
                               "provider": provider.name, "sha256": fake["sha256"]}
        if i in got:
            verdict, cached = got[i]
            row.update(passed=verdict.passed, score=verdict.score, cached=cached,
                       details=json.dumps(verdict.details, sort_keys=True, default=float))
        else:
            row.update(passed=None, score=None, cached=False,
                       details=json.dumps({"unjudged": reasons.get(i, "no answer")}))
        out.append(row)
    return pl.DataFrame(out, schema=VERDICT_SCHEMA)


def write_verdicts(table: pl.DataFrame, path: str | Path, ran_with: str) -> None:
    """Write a shard's verdict table with its retry key (see RETRY_KEY): unchanged when
    every fake was judged, so the workflow leaves the job alone next time."""
    key = secrets.token_hex(8) if table["passed"].null_count() else ran_with
    table.write_parquet(path, metadata={RETRY_KEY: key})


def retry_key(path: str | Path) -> str:
    """The retry key of the verdict table at `path` ("" when there is none yet)."""
    try:
        return pl.read_parquet_metadata(path).get(RETRY_KEY, "")
    except (OSError, pl.exceptions.ComputeError):
        return ""

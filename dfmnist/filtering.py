"""Liveness verification of generated fakes through the cache, and the acceptance policy."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from dfmnist.liveness.cache import VerdictCache

log = logging.getLogger(__name__)

VERDICT_SCHEMA = {"candidate_id": pl.String, "action": pl.String, "provider": pl.String,
                  "sha256": pl.String, "passed": pl.Boolean, "score": pl.Float64,
                  "cached": pl.Boolean, "details": pl.String}


def verify_shard(fakes: pl.DataFrame, provider, cache: VerdictCache) -> pl.DataFrame:
    """One verdict per fake; the provider is asked only about videos the cache has not seen."""
    version = provider.config_version()
    rows = []
    for i, fake in enumerate(fakes.iter_rows(named=True), start=1):
        verdict = cache.get(provider.name, version, fake["action"], fake["sha256"])
        cached = verdict is not None
        if verdict is None:
            verdict = provider.verify(fake["video_path"], fake["action"])
            cache.put(version, fake["sha256"], verdict)
        log.info("[%d/%d] %s %s: %s (score %.2f%s)", i, fakes.height, provider.name,
                 fake["candidate_id"], "pass" if verdict.passed else "fail", verdict.score,
                 ", cached" if cached else "")
        rows.append({"candidate_id": fake["candidate_id"], "action": fake["action"],
                     "provider": provider.name, "sha256": fake["sha256"],
                     "passed": verdict.passed, "score": verdict.score, "cached": cached,
                     "details": json.dumps(verdict.details, sort_keys=True, default=float)})
    return pl.DataFrame(rows, schema=VERDICT_SCHEMA)


def accept(fakes: pl.DataFrame, verdicts: pl.DataFrame, policy: dict[str, list[str]],
           per_action: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep, per action, the first `per_action` fakes (plan rank order) that pass every provider
    the policy names for that action. Returns (accepted fakes, per-action summary)."""
    wide = verdicts.pivot(on="provider", index="candidate_id", values="passed")
    candidates = fakes.join(wide, on="candidate_id", how="left")
    passed = []
    summary = []
    for action, group in candidates.group_by("action", maintain_order=True):
        action = action[0]
        providers = policy[action]
        missing = [p for p in providers if p not in group.columns]
        if missing:
            raise ValueError(f"no verdicts from {missing} for action {action}")
        ok = group.filter(pl.all_horizontal([pl.col(p).fill_null(False) for p in providers]))
        chosen = ok.sort("rank").head(per_action)
        passed.append(chosen)
        summary.append({"action": action, "providers": "+".join(providers),
                        "candidates": group.height, "passed": ok.height,
                        "spoof_rate": ok.height / group.height if group.height else 0.0,
                        "accepted": chosen.height, "wanted": per_action,
                        "shortfall": max(0, per_action - chosen.height)})
    accepted = pl.concat(passed, how="diagonal_relaxed") if passed else fakes.clear()
    accepted = accepted.select(fakes.columns).sort(["action", "rank"])
    return accepted, pl.DataFrame(summary).sort("action")

"""Liveness verification of generated fakes through the cache, and the acceptance policy."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from dfmnist.liveness.base import LivenessProvider, Verdict

if TYPE_CHECKING:
    from dfmnist.liveness.cache import VerdictCache

log = logging.getLogger(__name__)

VERDICT_SCHEMA = {"candidate_id": pl.String, "action": pl.String, "provider": pl.String,
                  "sha256": pl.String, "passed": pl.Boolean, "score": pl.Float64,
                  "cached": pl.Boolean, "details": pl.String}


class LivenessError(RuntimeError):
    """Some fakes could not be judged; the verdicts that did arrive are cached."""


def verify_shard(fakes: pl.DataFrame, provider: LivenessProvider, cache: VerdictCache,
                 actions: Sequence[str] | None = None) -> pl.DataFrame:
    """One verdict per fake (only fakes whose action is in `actions`, when given).

    The provider is asked only about videos the cache has not seen, all at once (remote
    providers send them concurrently within their QPS), and each verdict is cached the moment
    it arrives, so a run stopped by a quota or an error never pays twice for what it got.
    Raises LivenessError when some fakes could not be judged (errors are never cached).
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
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        raise LivenessError(f"{provider.name}: {len(errors)} of {len(todo)} fakes could not be "
                            f"judged ({len(got)} verdicts kept); first error: {errors[0]}")
    out = []
    for i, fake in enumerate(rows):
        verdict, cached = got[i]
        out.append({"candidate_id": fake["candidate_id"], "action": fake["action"],
                    "provider": provider.name, "sha256": fake["sha256"],
                    "passed": verdict.passed, "score": verdict.score, "cached": cached,
                    "details": json.dumps(verdict.details, sort_keys=True, default=float)})
    return pl.DataFrame(out, schema=VERDICT_SCHEMA)


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
    # an action without a single fake (every candidate failed to generate) is short by all
    seen = {row["action"] for row in summary}
    summary += [{"action": a, "providers": "+".join(policy[a]), "candidates": 0, "passed": 0,
                 "spoof_rate": 0.0, "accepted": 0, "wanted": per_action,
                 "shortfall": per_action} for a in policy if a not in seen]
    accepted = pl.concat(passed, how="diagonal_relaxed") if passed else fakes.clear()
    accepted = accepted.select(fakes.columns).sort(["action", "rank"])
    return accepted, pl.DataFrame(summary).sort("action")

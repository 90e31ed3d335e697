"""The acceptance policy over liveness verdicts (verdicts themselves: dfmnist.liveness.shard)."""

from __future__ import annotations

import polars as pl

from dfmnist.liveness.shard import VERDICT_SCHEMA

__all__ = ["VERDICT_SCHEMA", "accept"]


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


def with_face_swaps(accepted: pl.DataFrame, generators: list[dict],
                    swaps: list[pl.DataFrame]) -> pl.DataFrame:
    """The dataset's fakes: the accepted animations, each labelled with the generator that
    made it (the `generator` and `model` columns hold its name, `weights_sha256` its weights),
    then every face-swap fake, which no liveness check filters (DFDM did not; its `generator`
    is face_swap, its `model` the autoencoder, its `donor` the identity whose face it shows).
    `generators`: the identities of the animation generators; fakes tables without a
    generator column (written before it existed) take the first."""
    from dfmnist.faceswap.stage import SWAP_SCHEMA

    first = generators[0] if generators else {}
    if "generator" not in accepted.columns:
        accepted = accepted.with_columns(
            generator=pl.lit(first.get("name"), pl.String),
            weights_sha256=pl.lit(first.get("weights_sha256"), pl.String))
    animations = accepted.with_columns(model=pl.col("generator"),
                                       donor=pl.lit(None, pl.String))
    typed = {c: t for c, t in SWAP_SCHEMA.items() if c in animations.columns}
    return pl.concat([animations.cast(typed), *(s.cast(SWAP_SCHEMA) for s in swaps)],
                     how="diagonal_relaxed")

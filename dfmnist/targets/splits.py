"""Identity-disjoint train/val/test splits, balanced per action."""

from __future__ import annotations

import numpy as np
import polars as pl


def assign_splits(videos: pl.DataFrame, fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Map each identity to a split so that every video of an identity shares it.

    `videos` has columns identity and action (reals use action 'real'). Identities are
    visited largest first (ties in seeded order); each goes to the split whose per-action
    counts are furthest below their targets. With at least as many identities as splits,
    every split with a positive fraction gets one.
    """
    splits = [s for s, f in sorted(fractions.items(), key=lambda kv: -kv[1]) if f > 0]
    counts = videos.group_by(["identity", "action"]).len()
    identities = sorted(counts["identity"].unique().to_list())
    rng = np.random.default_rng(seed)
    rng.shuffle(identities)
    size = dict(counts.group_by("identity").agg(pl.col("len").sum()).iter_rows())
    identities.sort(key=lambda i: -size[i])  # stable: the seeded order breaks ties
    actions = sorted(counts["action"].unique().to_list())
    # one pivot: identity x action video counts (0 where an identity has none of an action)
    table = counts.pivot(on="action", index="identity", values="len").fill_null(0)
    per_identity = {row[0]: np.array(row[1:], dtype=float)
                    for row in table.select("identity", *actions).iter_rows()}
    totals = sum(per_identity.values(), np.zeros(len(actions)))
    current = {s: np.zeros(len(actions)) for s in splits}
    assignment: dict[str, str] = {}
    for n, identity in enumerate(identities):
        if n < len(splits) and len(identities) >= len(splits):
            choice = splits[n]
        else:
            weight = per_identity[identity]
            deficit = {s: float(((fractions[s] * totals - current[s]) * weight).sum())
                       for s in splits}
            choice = max(splits, key=lambda s: deficit[s])
        assignment[identity] = choice
        current[choice] += per_identity[identity]
    return assignment


def assign_group_splits(videos: pl.DataFrame, fractions: dict[str, float], seed: int,
                        groups: dict[str, str]) -> dict[str, str]:
    """`assign_splits` with the identities of one group in one split: `groups` maps an
    identity to its group (a face-swap couple, whose fakes show both faces); identities not
    in it are groups of their own."""
    if not groups:
        return assign_splits(videos, fractions, seed)
    grouped = videos.with_columns(pl.col("identity").replace(groups))
    by_group = assign_splits(grouped, fractions, seed)
    return {i: by_group[groups.get(i, i)] for i in videos["identity"].unique().to_list()}

"""Spoof rates per action and provider, and their bar chart (DeepFake MNIST+ Figure 2)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from dfmnist import ACTIONS


def spoof_rates(verdicts: pl.DataFrame, policy: dict[str, list[str]]) -> pl.DataFrame:
    """Per (action, provider): videos judged, passed, spoof rate (passed / judged) and
    `unjudged` (videos the provider could not judge: null `passed`); plus one row per action
    for the whole policy (provider "policy": every provider the policy names passed; a fake
    is unjudged there when no provider failed it and one could not judge it)."""
    pairs = pl.DataFrame([(a, p) for a, ps in policy.items() for p in ps],
                         schema={"action": pl.String, "provider": pl.String}, orient="row")
    rows = verdicts.join(pairs, on=["action", "provider"], how="semi")
    per_provider = rows.group_by("action", "provider").agg(
        videos=pl.col("passed").is_not_null().sum(), passed=pl.col("passed").sum(),
        unjudged=pl.col("passed").is_null().sum())
    wide = rows.group_by("action", "candidate_id").agg(
        failed=(pl.col("passed") == False).any(),  # noqa: E712 (null stays out)
        judged=pl.col("passed").is_not_null().sum(),
        all_passed=pl.col("passed").fill_null(False).all())
    need = pl.DataFrame({"action": list(policy), "needed": [len(v) for v in policy.values()]})
    combined = (wide.join(need, on="action")
                .with_columns(done=pl.col("failed") | (pl.col("judged") == pl.col("needed")))
                .with_columns(ok=pl.col("done") & pl.col("all_passed")
                              & (pl.col("judged") == pl.col("needed")))
                .group_by("action").agg(videos=pl.col("done").sum(), passed=pl.col("ok").sum(),
                                        unjudged=(~pl.col("done")).sum())
                .with_columns(provider=pl.lit("policy")))
    table = pl.concat([per_provider, combined.select(per_provider.columns)])
    order = {a: i for i, a in enumerate(ACTIONS)}
    return (table.with_columns(pl.col("passed", "videos", "unjudged").cast(pl.Int64))
            .with_columns(spoof_rate=pl.when(pl.col("videos") > 0)
                          .then(pl.col("passed") / pl.col("videos")).otherwise(None),
                          _order=pl.col("action").replace_strict(order, default=len(order)))
            .select("action", "provider", "videos", "passed", "spoof_rate", "unjudged",
                    "_order")
            .sort("_order", "provider").drop("_order"))


def plot_spoof_rates(rates: pl.DataFrame, path: str | Path, title: str = "") -> Path:
    """Grouped bars: one group per action, one bar per provider (and the combined policy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    actions = list(dict.fromkeys(rates["action"].to_list()))
    providers = sorted(set(rates["provider"]) - {"policy"}) + ["policy"]
    providers = [p for p in providers if p in set(rates["provider"])]
    width = 0.8 / max(1, len(providers))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(actions)), 3.6))
    for k, provider in enumerate(providers):
        xs, ys = [], []
        for i, action in enumerate(actions):
            row = rates.filter((pl.col("action") == action) & (pl.col("provider") == provider))
            if row.height:
                xs.append(i + (k - (len(providers) - 1) / 2) * width)
                ys.append(100 * float(row["spoof_rate"][0] or 0.0))
        bars = ax.bar(xs, ys, width, label="all required" if provider == "policy" else provider)
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(range(len(actions)), [a.replace("_", " ") for a in actions], rotation=30,
                  ha="right")
    ax.set_ylabel("spoof rate (%)")
    ax.set_ylim(0, 110)
    ax.legend(fontsize=8, ncols=len(providers), loc="upper left")
    ax.set_title(title or "Spoof rate per action and liveness provider")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
    return path

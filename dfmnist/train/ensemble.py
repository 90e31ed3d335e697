"""Bonettini et al.'s network fusion: each model's test scores and their fusion, per variant.

The fusion is Bonettini et al.'s (polimi-ispl/icpr2020dfdc): the sigmoid of the mean of the
networks' logits. dfmnist's detectors store P(real), the sigmoid of a logit of REAL, so a
frame's fused score is expit(mean(logit(P(real)))): the original's fused P(fake) is one minus
it, the same ranking (AUC) and the same decisions at 0.5. Probabilities that float rounding
made exactly 0 or 1 are held EPS inside (0, 1) before the logit. A video's score then follows as
for any model (`train.video_score`, the mean of its frame scores as DeepfakeBench counts video
AUC).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from dfmnist.train.metrics import sigmoid, summarize

FUSION = "fusion"
#: How far inside (0, 1) a stored probability is held before its logit is taken.
EPS = 1e-12
_FRAME = ["variant", "video_id", "frame"]


def fuse(preds: pl.DataFrame, models: list[str]) -> pl.DataFrame:
    """Frames scored by every one of `models`, each with the sigmoid of the mean of their
    logits."""
    chosen = preds.filter(pl.col("model").is_in(models))
    p = pl.col("score").clip(EPS, 1 - EPS)
    fused = chosen.group_by(_FRAME, maintain_order=True).agg(
        (p / (1 - p)).log().mean().alias("logit"), pl.col("model").n_unique().alias("n_models"),
        *[pl.col(c).first() for c in ("label", "action", "identity", "target")])
    missing = fused.filter(pl.col("n_models") < len(models))
    if missing.height:
        raise ValueError(f"{missing.height} test frames lack the scores of some of "
                         f"{', '.join(models)}")
    return fused.with_columns(sigmoid(pl.col("logit")).alias("score")).drop("n_models", "logit")


def ensemble_table(preds: pl.DataFrame, models: list[str], variants: list[str],
                   video_score: str = "mean") -> pl.DataFrame:
    """Per variant (trained and tested on it): each model's row and the fusion's."""
    rows = []
    for v in variants:
        own = preds.filter((pl.col("trainset") == v) & (pl.col("variant") == v))
        for name in [*models, FUSION]:
            frames = fuse(own, models) if name == FUSION else own.filter(pl.col("model") == name)
            if frames.height == 0:
                raise ValueError(f"no predictions for {name} trained on {v}")
            stats = summarize(frames, video_score)
            rows.append({"variant": v, "model": name,
                         "frame_acc": 100 * stats["frame_acc"], "frame_auc": stats["frame_auc"],
                         "video_acc": 100 * stats["video_acc"], "video_auc": stats["video_auc"],
                         "test_videos": stats["n_videos"], "test_frames": stats["n_frames"]})
    return pl.DataFrame(rows, infer_schema_length=None)


def ensemble_plot(table: pl.DataFrame, path: str | Path, title: str = "Network fusion") -> None:
    """Grouped bars per variant: video AUC (left) and video accuracy (right) of each model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(table["variant"].to_list()))
    models = list(dict.fromkeys(table["model"].to_list()))
    width = 0.8 / len(models)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.6 * len(variants), 3.6),
                             constrained_layout=True)
    for ax, value, top, label in ((axes[0], "video_auc", 1.05, "video AUC"),
                                  (axes[1], "video_acc", 105, "video accuracy (%)")):
        for j, model in enumerate(models):
            sub = {r["variant"]: r[value] for r in
                   table.filter(pl.col("model") == model).iter_rows(named=True)}
            xs = [i + (j - (len(models) - 1) / 2) * width for i in range(len(variants))]
            ys = [sub.get(v) for v in variants]
            ys = [0.0 if y is None or y != y else y for y in ys]  # NaN: no bar
            ax.bar(xs, ys, width, label=model, hatch="//" if model == FUSION else None)
        ax.set_xticks(range(len(variants)), variants)
        ax.set_ylim(0, top)
        ax.set_ylabel(label)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)

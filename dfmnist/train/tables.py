"""The paper's tables and figures rebuilt from test predictions: CSV rows, markdown, plots.

Every function takes the per-frame test predictions of the training jobs it needs (columns
model, trainset, variant, video_id, label, action, target, score) and returns one row per cell
with frame- and video-level accuracy (%) and AUC beside the paper's accuracy where it has one.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from dfmnist.train import paper
from dfmnist.train.metrics import summarize

ORIGINAL = "original"  # the paper's name for the real videos in Figure 6


def _cell(frames: pl.DataFrame, video_score: str, **keys) -> dict:
    stats = summarize(frames, video_score)
    return {**keys,
            "frame_acc": 100 * stats["frame_acc"], "frame_auc": stats["frame_auc"],
            "video_acc": 100 * stats["video_acc"], "video_auc": stats["video_auc"],
            "test_videos": stats["n_videos"], "test_frames": stats["n_frames"]}


def _pick(preds: pl.DataFrame, model: str, trainset: str, variant: str | None = None):
    out = preds.filter((pl.col("model") == model) & (pl.col("trainset") == trainset))
    if variant is not None:
        out = out.filter(pl.col("variant") == variant)
    if out.height == 0:
        raise ValueError(f"no predictions for {model} trained on {trainset} ({variant})")
    return out


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("paper_acc").cast(pl.Float64))


def table3(preds: pl.DataFrame, models: list[str], variants: list[str],
           video_score: str = "mean") -> pl.DataFrame:
    """Model x compression: trained and tested on the same variant."""
    return _frame([
        {**_cell(_pick(preds, m, v, v), video_score, model=m, variant=v),
         "paper_acc": paper.paper_value(paper.TABLE3, m, v)}
        for m in models for v in variants])


def table4(preds: pl.DataFrame, models: list[str], variants: list[str],
           video_score: str = "mean") -> pl.DataFrame:
    """Trained on one variant, tested on each other one."""
    return _frame([
        {**_cell(_pick(preds, m, a, b), video_score, model=m, train=a, test=b),
         "paper_acc": paper.paper_value(paper.TABLE4, m, (a, b))}
        for m in models for a in variants for b in variants if a != b])


def table5(preds: pl.DataFrame, models: list[str], variants: list[str],
           video_score: str = "mean") -> pl.DataFrame:
    """Trained on mixed quality, tested per variant."""
    return _frame([
        {**_cell(_pick(preds, m, "mixed", v), video_score, model=m, variant=v),
         "paper_acc": paper.paper_value(paper.TABLE5, m, v)}
        for m in models for v in variants])


def per_action(preds: pl.DataFrame, model: str, variants: list[str],
               video_score: str = "mean") -> pl.DataFrame:
    """Accuracy per action (reals as `original`) and variant, trained on the full set."""
    rows = []
    for v in variants:
        frames = _pick(preds, model, v, v).with_columns(
            pl.col("action").fill_null(ORIGINAL))
        for (action,), group in sorted(frames.group_by("action"), key=lambda g: g[0]):
            rows.append({**_cell(group, video_score, model=model, action=action, variant=v),
                         "paper_acc": paper.PER_ACTION.get((action, v))})
    return _frame(rows)


def single_action(preds: pl.DataFrame, model: str, variant: str,
                  actions: list[str], video_score: str = "mean") -> pl.DataFrame:
    """Trained on one action (and as many reals), tested on the whole test set."""
    rows = []
    for a in actions:
        frames = preds.filter((pl.col("model") == model)
                              & (pl.col("trainset") == f"{variant}-action-{a}")
                              & (pl.col("variant") == variant))
        # an action without training fakes has no model: its row stays empty
        cell = (_cell(frames, video_score, model=model, train_action=a, variant=variant)
                if frames.height
                else {"model": model, "train_action": a, "variant": variant,
                      "frame_acc": math.nan, "frame_auc": math.nan, "video_acc": math.nan,
                      "video_auc": math.nan, "test_videos": 0, "test_frames": 0})
        rows.append({**cell,
                     "paper_acc": paper.SINGLE_ACTION.get(a) if variant == "raw" else None})
    rows.append({**_cell(_pick(preds, model, variant, variant), video_score, model=model,
                         train_action="all", variant=variant),
                 "paper_acc": paper.SINGLE_ACTION_ALL if variant == "raw" else None})
    return _frame(rows)


def corpus_size(preds: pl.DataFrame, model: str, variants: list[str],
                sizes: list[int], video_score: str = "mean") -> pl.DataFrame:
    """Accuracy against the number of training fakes (and as many reals) per variant."""
    return _frame([
        {**_cell(_pick(preds, model, f"{v}-n{n}", v), video_score, model=model, fakes=n,
                 variant=v),
         "paper_acc": None}
        for v in variants for n in sizes])


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def markdown(table: pl.DataFrame, title: str, notes: list[str]) -> str:
    """A titled pipe table (accuracy in %, AUC in [0, 1]; – where undefined) with notes."""
    lines = [f"# {title}", "", *[f"- {n}" for n in notes], ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.iter_rows():
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def bar_plot(table: pl.DataFrame, group: str, series: str, path: str | Path, title: str,
             value: str = "frame_acc", label=str) -> None:
    """Grouped bars of `value` (ours) with the paper's accuracy as black ticks where known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(table[group].to_list()))
    names = list(dict.fromkeys(table[series].to_list()))
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.9 * len(groups) * max(1, len(names)) * 0.5),
                                    3.6), constrained_layout=True)
    for j, name in enumerate(names):
        sub = table.filter(pl.col(series) == name)
        lookup = {r[group]: r for r in sub.iter_rows(named=True)}
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(groups))]
        ys = [lookup.get(g, {}).get(value) for g in groups]
        bars = ax.bar(xs, [0 if y is None or math.isnan(y) else y for y in ys], width,
                      label=f"{label(name)} (ours)")
        ax.bar_label(bars, labels=[_fmt(y) for y in ys], fontsize=6, padding=1)
        paper_ys = [lookup.get(g, {}).get("paper_acc") for g in groups]
        pts = [(x, y) for x, y in zip(xs, paper_ys, strict=True) if y is not None]
        if pts:
            ax.scatter(*zip(*pts, strict=True), marker="_", s=300, color="black", zorder=3,
                       label="paper" if j == 0 else None)
    ax.set_xticks(range(len(groups)), [label(g) for g in groups], rotation=30, ha="right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def line_plot(table: pl.DataFrame, x: str, series: str, path: str | Path, title: str,
              value: str = "frame_acc") -> None:
    """Accuracy against `x` (log scale), one line per `series`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    for (name,), sub in sorted(table.group_by(series), key=lambda g: str(g[0])):
        sub = sub.sort(x)
        ax.plot(sub[x].to_list(), sub[value].to_list(), marker="o", label=str(name))
    ax.set_xscale("log")
    ticks = sorted(set(table[x].to_list()))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_ylim(0, 105)
    ax.set_xlabel(x)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)

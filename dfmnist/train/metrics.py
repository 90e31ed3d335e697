"""Frame- and video-level accuracy and ROC AUC, with real (target 1) as the positive class."""

from __future__ import annotations

import math

import numpy as np
import polars as pl


def accuracy(scores: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> float:
    """Share of items whose thresholded score (P(real)) matches the target; NaN when empty."""
    scores, targets = np.asarray(scores, float), np.asarray(targets, int)
    if scores.size == 0:
        return math.nan
    return float(np.mean((scores >= threshold).astype(int) == targets))


def roc_auc(scores: np.ndarray, targets: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties count half); NaN with one class only."""
    scores, targets = np.asarray(scores, float), np.asarray(targets, int)
    n_pos, n_neg = int((targets == 1).sum()), int((targets == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), float)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over runs of equal scores
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[targets == 1].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def video_scores(frames: pl.DataFrame,
                 by: tuple[str, ...] = ("variant", "video_id")) -> pl.DataFrame:
    """One row per video: the mean of its frame scores (the paper's video-level decision)."""
    keep = [c for c in ("label", "action", "target", "identity") if c in frames.columns]
    return frames.group_by(list(by), maintain_order=True).agg(
        pl.col("score").mean(), *[pl.col(c).first() for c in keep], pl.len().alias("n_frames"))


def summarize(frames: pl.DataFrame) -> dict:
    """Frame and video accuracy and AUC of a prediction table (score, target, video_id, ...)."""
    by = ("variant", "video_id") if "variant" in frames.columns else ("video_id",)
    videos = video_scores(frames, by)
    s, t = frames["score"].to_numpy(), frames["target"].to_numpy()
    vs, vt = videos["score"].to_numpy(), videos["target"].to_numpy()
    return {"frame_acc": accuracy(s, t), "frame_auc": roc_auc(s, t),
            "video_acc": accuracy(vs, vt), "video_auc": roc_auc(vs, vt),
            "n_frames": frames.height, "n_videos": videos.height}

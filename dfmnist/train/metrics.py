"""Frame- and video-level accuracy and ROC AUC, with real (target 1) as the positive class.

AUC is scikit-learn's `roc_auc_score` (the library DeepfakeBench computes its AUC with); a
video's score is an aggregate of its frame scores, the mean by default (the paper's decision).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

#: How a video's score is made from its frame scores.
VIDEO_SCORES = {"mean": pl.col("score").mean(), "median": pl.col("score").median(),
                "max": pl.col("score").max()}


def sigmoid(logit: pl.Expr) -> pl.Expr:
    """The probability of a logit column. exp(-x) overflows to inf for very negative logits,
    which gives exactly 0, so no logit is out of range."""
    return 1 / (1 + (-logit).exp())


def accuracy(scores: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> float:
    """Share of items whose thresholded score (P(real)) matches the target; NaN when empty."""
    scores, targets = np.asarray(scores, float), np.asarray(targets, int)
    if scores.size == 0:
        return math.nan
    return float(np.mean((scores >= threshold).astype(int) == targets))


def roc_auc(scores: np.ndarray, targets: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN unless both classes are present."""
    scores, targets = np.asarray(scores, float), np.asarray(targets, int)
    if len(np.unique(targets)) < 2:
        return math.nan  # undefined; scikit-learn would raise
    return float(roc_auc_score(targets, scores))


def video_scores(frames: pl.DataFrame, by: tuple[str, ...] = ("variant", "video_id"),
                 how: str = "mean") -> pl.DataFrame:
    """One row per video: the aggregate (`how`, see VIDEO_SCORES) of its frame scores."""
    if how not in VIDEO_SCORES:
        raise ValueError(f"unknown video score {how!r} (known: {', '.join(VIDEO_SCORES)})")
    keep = [c for c in ("label", "action", "target", "identity") if c in frames.columns]
    return frames.group_by(list(by), maintain_order=True).agg(
        VIDEO_SCORES[how], *[pl.col(c).first() for c in keep], pl.len().alias("n_frames"))


def summarize(frames: pl.DataFrame, how: str = "mean") -> dict:
    """Frame and video accuracy and AUC of a prediction table (score, target, video_id, ...)."""
    by = ("variant", "video_id") if "variant" in frames.columns else ("video_id",)
    videos = video_scores(frames, by, how)
    s, t = frames["score"].to_numpy(), frames["target"].to_numpy()
    vs, vt = videos["score"].to_numpy(), videos["target"].to_numpy()
    return {"frame_acc": accuracy(s, t), "frame_auc": roc_auc(s, t),
            "video_acc": accuracy(vs, vt), "video_auc": roc_auc(vs, vt),
            "n_frames": frames.height, "n_videos": videos.height}

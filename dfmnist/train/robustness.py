"""Trained detectors scored on test videos under graded perturbations (the `robustness` target).

Each test video's sampled frames are read at the stored frame size, perturbed there (as a
viewer would receive them), resized to the detector's input and scored. Level 0, the clean
frames, is scored once and reported under every perturbation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch.nn import functional as F

from dfmnist.targets.frames import read_frames as frames_of_video
from dfmnist.train.loop import Detector
from dfmnist.train.metrics import summarize
from dfmnist.train.perturb import LEVELS, perturb_video


def read_frames(row: dict, size: int, root: str | Path = ".") -> np.ndarray:
    """The sampled frames (T, S, S, 3) RGB uint8 of one manifest row."""
    return frames_of_video(Path(root) / row["frames_tar"], row["frames_prefix"],
                           row["frame_indices"], size)


def detector_input(frames: np.ndarray, side: int) -> torch.Tensor:
    """RGB uint8 frames (T, H, W, 3) as a dfmnist detector takes them: (T, 3, side, side) in
    [0, 1], resized (bilinear, antialiased) where the stored size differs."""
    x = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).float() / 255.0
    if x.shape[-1] != side:
        x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True,
                          align_corners=False)
    return x


@torch.no_grad()
def _score(model: Detector, frames: np.ndarray, batch: int) -> np.ndarray:
    x = detector_input(frames, model.input_size)
    out = [torch.sigmoid(model(x[i:i + batch])) for i in range(0, len(x), batch)]
    return torch.cat(out).numpy().astype(float)


def score_perturbed(model: Detector, videos: pl.DataFrame, size: int, perturbations: list[str],
                    levels: list[int], root: str | Path = ".", seed: int = 0,
                    batch: int = 32) -> pl.DataFrame:
    """P(real) of every frame of `videos` (manifest rows) per perturbation and level."""
    model.eval()
    rows = []
    for index, row in enumerate(videos.sort("video_id").iter_rows(named=True)):
        clean = read_frames(row, size, root)
        base = {"video_id": row["video_id"], "variant": row["variant"], "label": row["label"],
                "action": row["action"], "target": int(row["target"])}
        clean_scores = _score(model, clean, batch) if 0 in levels else None
        for name in perturbations:
            for level in levels:
                if level == 0:
                    scores = clean_scores
                else:
                    scores = _score(model, perturb_video(clean, name, level, seed + index),
                                    batch)
                rows += [{**base, "frame": int(f), "perturbation": name, "level": level,
                          "score": float(s)}
                         for f, s in zip(row["frame_indices"], scores, strict=True)]
    return pl.DataFrame(rows, schema={
        "video_id": pl.String, "variant": pl.String, "label": pl.String, "action": pl.String,
        "target": pl.Int32, "frame": pl.Int64, "perturbation": pl.String, "level": pl.Int64,
        "score": pl.Float64})


def robustness_table(scores: pl.DataFrame, video_score: str = "mean") -> pl.DataFrame:
    """One row per model, perturbation and level: its parameter, frame/video accuracy and AUC."""
    rows = []
    keys = ["model", "perturbation", "level"]
    for (model, name, level), group in sorted(scores.group_by(keys), key=lambda g: g[0]):
        stats = summarize(group.drop("perturbation", "level"), video_score)
        rows.append({"model": model, "perturbation": name, "level": level,
                     "parameter": None if level == 0 else str(LEVELS[name][level - 1]),
                     "frame_acc": 100 * stats["frame_acc"], "frame_auc": stats["frame_auc"],
                     "video_acc": 100 * stats["video_acc"], "video_auc": stats["video_auc"],
                     "test_videos": stats["n_videos"], "test_frames": stats["n_frames"]})
    return pl.DataFrame(rows, infer_schema_length=None)


def auc_plot(table: pl.DataFrame, path: str | Path, value: str = "frame_auc",
             title: str = "AUC against perturbation level") -> None:
    """One panel per perturbation: `value` against level, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(table["perturbation"].to_list()))
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows + 0.6), squeeze=False,
                             sharey=True, constrained_layout=True)
    for ax, name in zip(axes.flat, names, strict=False):
        sub = table.filter(pl.col("perturbation") == name)
        for (model,), line in sorted(sub.group_by("model"), key=lambda g: g[0]):
            line = line.sort("level")
            ax.plot(line["level"].to_list(), line[value].fill_nan(None).to_list(), marker="o",
                    label=model)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("level")
        ax.set_ylim(0, 1.02)
        ax.axhline(0.5, color="grey", lw=0.6, ls=":")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes[0][0].set_ylabel(value.replace("_", " "))
    axes[0][-1].legend(fontsize=6, loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""The seed report's detection experiment on a built dataset (the `published_scores` target).

Every test video of one variant is scored by each configured network, clean and under each
alteration of dfmnist.train.published.alterations, and by their fusion. Scores follow the original's
conventions (polimi-ispl/icpr2020dfdc) whatever the network: a frame's logit is that of FAKE,
a video's logit is the mean of its frames' logits, the fusion's is the mean of the networks'
video logits, and a score is the sigmoid of a logit (0 real, 1 fake).

* Published networks (`load_published`) see the original's face crops
  (dfmnist.train.published.crops): faces found by MTCNN in each altered frame, widened by 20 %,
  squared, 224x224, up to 32 frames.
* Without published files, dfmnist's own trained ensemble scores instead: each sees the stored
  frames at its input size, as it was trained, and its logit of REAL is negated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn

from dfmnist.targets.annotations import face_geometry
from dfmnist.targets.frames import read_frames
from dfmnist.train.metrics import roc_auc, sigmoid
from dfmnist.train.published.alterations import ALTERATIONS, alter_video, moved_boxes
from dfmnist.train.published.crops import MARGIN, published_batch, spread_indices
from dfmnist.train.published.detector import video_logit
from dfmnist.train.robustness import detector_input
from dfmnist.vision.faces import FaceDetector, track_from_detections

FUSION = "fusion"
CLEAN = "none"
SCHEMA = {"video_id": pl.String, "label": pl.String, "action": pl.String, "model": pl.String,
          "network": pl.String, "alteration": pl.String, "parameter": pl.Float64,
          "frames": pl.Int64, "detected": pl.Int64, "logit": pl.Float64}


@dataclass
class Scorer:
    """One network of the experiment: `published` ones take the original's crops and give the
    logit of FAKE; dfmnist's own take stored frames and give the logit of REAL."""

    name: str
    model: nn.Module
    published: bool

    @torch.no_grad()
    def fake_logits(self, frames: np.ndarray, boxes: np.ndarray, margin: float = MARGIN,
                    batch: int = 16) -> np.ndarray:
        """Per-frame logits of FAKE for frames (T, H, W, 3) RGB uint8 and their face boxes."""
        if self.published:
            x = published_batch(frames, boxes, margin)
        else:
            x = detector_input(frames, self.model.input_size)
        out = torch.cat([self.model(x[i:i + batch]).reshape(-1) for i in range(0, len(x), batch)])
        logits = out.double().numpy()
        return logits if self.published else -logits


def faces_of(frames: np.ndarray, detector: FaceDetector, min_prob: float
             ) -> tuple[np.ndarray, np.ndarray, int]:
    """Boxes (T, 4), landmarks (T, 5, 2) of the dominant face, and the number of frames where
    it was found (the others take their neighbours' geometry, or the face template when there
    is none; an altered video without any face takes the clean frames' boxes, moved)."""
    track = track_from_detections(detector.detect(frames), min_prob=min_prob)
    boxes, landmarks, how = face_geometry(track, frames.shape[1])
    return boxes, landmarks, sum(h == "detected" for h in how)


def score_videos(scorers: list[Scorer], videos: pl.DataFrame, size: int,
                 alterations: dict[str, list[float]], detector: FaceDetector,
                 min_prob: float = 0.9, margin: float = MARGIN, most_frames: int = 32,
                 seed: int = 0, root: str | Path = ".", progress=None) -> pl.DataFrame:
    """One row per (video, network, alteration, parameter): its video logit of FAKE; the clean
    frames are alteration `none`, parameter 0."""
    if videos.height == 0:
        raise ValueError("no test videos to score")
    rows = []
    for index, row in enumerate(videos.sort("video_id").iter_rows(named=True)):
        indices = [row["frame_indices"][i] for i in spread_indices(len(row["frame_indices"]),
                                                                   most_frames)]
        clean = read_frames(Path(root) / row["frames_tar"], row["frames_prefix"], indices, size)
        boxes, landmarks, detected = faces_of(clean, detector, min_prob)
        base = {"video_id": row["video_id"], "label": row["label"], "action": row["action"],
                "model": row.get("model"), "frames": len(indices)}
        cases = [(CLEAN, 0.0, clean, boxes, detected)]
        for name, parameters in alterations.items():
            for parameter in parameters:
                altered = alter_video(clean, name, parameter, seed + index, landmarks)
                found_boxes, _, found = faces_of(altered, detector, min_prob)
                if not found:  # no face in any frame (covered eyes and mouth can do that)
                    h, w = clean.shape[1:3]
                    found_boxes = moved_boxes(boxes, name, parameter, h, w)
                cases.append((name, float(parameter), altered, found_boxes, found))
        for name, parameter, frames, frame_boxes, found in cases:
            for scorer in scorers:
                logits = scorer.fake_logits(frames, frame_boxes, margin)
                rows.append({**base, "network": scorer.name, "alteration": name,
                             "parameter": parameter, "detected": found,
                             "logit": video_logit(logits)})
        if progress:
            progress(index + 1, videos.height)
    return pl.DataFrame(rows, schema=SCHEMA)


def with_fusion(scores: pl.DataFrame) -> pl.DataFrame:
    """The scores and, per video and case, the fusion: the mean of the networks' logits."""
    keys = ["video_id", "alteration", "parameter"]
    fused = scores.group_by(keys, maintain_order=True).agg(
        pl.col("label", "action", "model", "frames", "detected").first(),
        pl.col("logit").mean()).with_columns(pl.lit(FUSION).alias("network"))
    return pl.concat([scores, fused.select(scores.columns)])


def published_table(scores: pl.DataFrame) -> pl.DataFrame:
    """Per network (and fusion), alteration and parameter: mean score of fakes and of reals,
    the reals' range, ROC AUC with FAKE the positive class, videos counted."""
    rows = []
    scored = with_fusion(scores).with_columns(sigmoid(pl.col("logit")).alias("score"))
    networks = [*dict.fromkeys(scores["network"].to_list()), FUSION]
    order = {n: i for i, n in enumerate(networks)}
    groups = scored.group_by(["network", "alteration", "parameter"])
    rank = {n: i for i, n in enumerate((CLEAN, *ALTERATIONS))}
    for (network, name, parameter), group in sorted(
            groups, key=lambda g: (order[g[0][0]], rank.get(g[0][1], len(rank)), g[0][1],
                                   g[0][2])):
        fakes = group.filter(pl.col("label") == "fake")["score"]
        reals = group.filter(pl.col("label") == "real")["score"]
        target = (group["label"] == "fake").cast(pl.Int8).to_numpy()
        rows.append({"network": network, "alteration": name, "parameter": parameter,
                     "fake_mean": fakes.mean(), "real_mean": reals.mean(),
                     "real_min": reals.min(), "real_max": reals.max(),
                     "auc": roc_auc(group["score"].to_numpy(), target),
                     "fake_videos": fakes.len(), "real_videos": reals.len(),
                     "faces_found": float(group["detected"].sum() / group["frames"].sum())})
    return pl.DataFrame(rows, infer_schema_length=None)


def published_plot(table: pl.DataFrame, path: str | Path, title: str) -> None:
    """The report's kind of figure: per alteration, the mean score of fakes and of reals against
    strength (the clean score at 0), the fusion bold with the reals' range shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in dict.fromkeys(table["alteration"].to_list()) if n != CLEAN] or [CLEAN]
    clean = table.filter(pl.col("alteration") == CLEAN)
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 3.0), squeeze=False,
                             sharey=True, constrained_layout=True)
    # the fusion in red and blue; the networks in colours that are neither
    palette = iter(["tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:olive",
                    "tab:cyan", "tab:pink", "tab:gray"] * 4)
    colours = {n: "tab:red" if n == FUSION else next(palette)
               for n in table["network"].unique(maintain_order=True)}
    for ax, name in zip(axes[0], names, strict=True):
        for (network,), line in table.group_by("network", maintain_order=True):
            line = pl.concat([clean.filter(pl.col("network") == network),
                              line.filter((pl.col("alteration") == name)
                                          & (pl.col("alteration") != CLEAN))]).sort("parameter")
            x = line["parameter"].to_list()
            bold = network == FUSION
            ax.plot(x, line["fake_mean"].to_list(), marker="o", lw=2.2 if bold else 0.9,
                    color=colours[network], alpha=1.0 if bold else 0.7,
                    label=f"{network} fakes")
            if bold:
                ax.plot(x, line["real_mean"].to_list(), marker="s", lw=2.2, ls="--",
                        color="tab:blue", label="fusion reals")
                ax.fill_between(x, line["real_min"].to_list(), line["real_max"].to_list(),
                                color="tab:blue", alpha=0.15)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xlabel("strength (0: clean)")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("score (0 real, 1 fake)")
    axes[0][-1].legend(fontsize=6, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)

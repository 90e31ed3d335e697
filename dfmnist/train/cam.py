"""Class activation maps (the paper's Figure 7): where a detector looks to call a frame fake.

For detectors ending in global average pooling and one linear layer (ResNet, Xception) the
gradient-weighted map computed here equals the classic CAM (the head's weights times the last
feature maps) up to a constant; MesoInception-4 has no pooling head, so the same gradient
weighting (Grad-CAM) stands in for it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import polars as pl
import torch
from torch.nn import functional as F

from dfmnist.train.loop import Detector


def activation_maps(model: Detector, images: torch.Tensor, fake: bool = True) -> np.ndarray:
    """(N, H, W) maps in [0, 1] at the input size for the fake class (or the real one)."""
    model.eval()
    captured: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["a"] = output

    handle = model.net.cam_layer().register_forward_hook(keep)
    try:
        logits = model(images)
        score = -logits if fake else logits  # the logit is the evidence for real
        model.zero_grad(set_to_none=True)
        score.sum().backward()
    finally:
        handle.remove()
    acts, grads = captured["a"], captured["a"].grad
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * acts).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    flat = cam.flatten(1)
    low, high = flat.min(1).values[:, None, None], flat.max(1).values[:, None, None]
    return ((cam - low) / (high - low).clamp_min(1e-12)).detach().cpu().numpy()


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """An RGB uint8 frame with its map blended in (red: important, blue: ignored)."""
    heat = cv2.applyColorMap(np.uint8(255 * cam), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(image, 1 - alpha, heat, alpha, 0)


def pick_frames(manifest: pl.DataFrame, variant: str, count: int) -> pl.DataFrame:
    """Test videos of one variant: one fake per action (as many as `count` allows), then reals;
    the middle sampled frame of each."""
    test = manifest.filter((pl.col("split") == "test") & (pl.col("variant") == variant))
    fakes = (test.filter(pl.col("label") == "fake").sort("video_id")
             .unique("action", keep="first", maintain_order=True))
    reals = test.filter(pl.col("label") == "real").sort("video_id")
    chosen = pl.concat([fakes.head(max(count - 1, 1)), reals.head(1)]).head(count)
    return chosen.with_columns(
        pl.col("frame_indices").map_elements(lambda f: f[len(f) // 2], return_dtype=pl.Int64)
        .alias("frame"))


def cam_grid(model: Detector, chosen: pl.DataFrame, size: int, root: str | Path = ".",
             tile: int = 192, maps=activation_maps) -> tuple[np.ndarray, pl.DataFrame]:
    """Frames (top row) over their maps (bottom row), labelled; and each frame's P(real).

    `maps(model, images)` gives the (N, H, W) maps in [0, 1]: the CAM by default.
    """
    from dfmnist.targets.frames import FrameTar
    from dfmnist.train.experiments import _resize_to

    resize = _resize_to(model.input_size)
    images, originals = [], []
    for row in chosen.iter_rows(named=True):
        frames = FrameTar(Path(root) / row["frames_tar"], row["frames_prefix"])
        rgb = frames.rgb(row["frame"], size)
        originals.append(rgb)
        images.append(resize(torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float() / 255.0))
    batch = torch.stack(images)
    heat = maps(model, batch)
    with torch.no_grad():
        scores = torch.sigmoid(model(batch)).numpy()
    top, bottom = [], []
    for rgb, cam, row, score in zip(originals, heat, chosen.iter_rows(named=True), scores,
                                    strict=True):
        cam = cv2.resize(cam, (rgb.shape[1], rgb.shape[0]))
        name = row["action"] or "real"
        for out, image in ((top, rgb), (bottom, overlay(rgb, cam))):
            image = cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA)
            cv2.rectangle(image, (0, 0), (tile, 16), (0, 0, 0), -1)
            cv2.putText(image, f"{name} P(real) {score:.2f}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX,
                        0.38, (255, 255, 255), 1, cv2.LINE_AA)
            out.append(image)
    grid = np.concatenate([np.concatenate(top, 1), np.concatenate(bottom, 1)], 0)
    table = chosen.select("video_id", "variant", "label", "action", "frame").with_columns(
        pl.Series("p_real", scores.astype(float)))
    return grid, table


def save_grid(grid: np.ndarray, table: pl.DataFrame, png: str | Path, csv: str | Path) -> None:
    """Write a map grid (RGB) and its per-frame table, each atomically."""
    from dfmnist.storage.files import atomic_path

    with atomic_path(png) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write {png}")
    with atomic_path(csv) as tmp:
        table.write_csv(tmp)

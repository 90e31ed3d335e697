"""Graded perturbations of test frames for the `robustness` target, levels 1 (mild) to 5.

Where DeeperForensics-1.0 (Jiang et al., CVPR 2020, its perturbation/ code) defines a
distortion, its five parameters are used as it gives them:

* `gaussian_blur`: kernel 7, 9, 13, 17, 21 pixels, sigma = kernel / 6 (its GB);
* `gaussian_noise`: white noise of variance 0.001, 0.002, 0.005, 0.01, 0.05 added to the
  colour components in YCbCr on a [0, 1] scale (its GNC; full-range YCbCr here);
* `resize`: down by 2, 3, 4, 5, 6 and back up, bilinear (what its "JPEG" level does);
* `reencode`: the video's frames re-encoded with libx264 at crf 30, 32, 35, 38, 40 (its VC);
* `contrast`: pixel values times 0.85, 0.725, 0.6, 0.475, 0.35 (its CC);
* `saturation`: chroma times 0.4, 0.3, 0.2, 0.1, 0.0 around grey (its CS).

Two it does not define, with levels of our choosing:

* `jpeg`: real JPEG encoding at quality 90, 70, 50, 30, 10;
* `brightness`: 16, 32, 48, 64, 80 grey levels (of 255) added, clipped.

The parameters were set for full video frames; on 224-256 pixel face crops the same blur or
resize is stronger relative to the face. Level 0 is the clean frame.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

LEVELS: dict[str, tuple] = {
    "gaussian_blur": (7, 9, 13, 17, 21),
    "gaussian_noise": (0.001, 0.002, 0.005, 0.01, 0.05),
    "resize": (2, 3, 4, 5, 6),
    "jpeg": (90, 70, 50, 30, 10),
    "reencode": (30, 32, 35, 38, 40),
    "brightness": (16, 32, 48, 64, 80),
    "contrast": (0.85, 0.725, 0.6, 0.475, 0.35),
    "saturation": (0.4, 0.3, 0.2, 0.1, 0.0),
}
#: Perturbations applied to a whole video at once (the others go frame by frame).
PER_VIDEO = {"reencode"}


def parameter(name: str, level: int):
    """The parameter of `name` at `level` (1-5); ValueError on an unknown name or level."""
    if name not in LEVELS:
        raise ValueError(f"unknown perturbation {name!r} (known: {', '.join(LEVELS)})")
    if not 1 <= level <= 5:
        raise ValueError(f"perturbation level must be 0 to 5, got {level}")
    return LEVELS[name][level - 1]


def _ycrcb(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2YCrCb)


def _rgb(ycrcb: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(ycrcb.astype(np.float32), cv2.COLOR_YCrCb2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def perturb_frame(image: np.ndarray, name: str, level: int,
                  rng: np.random.Generator) -> np.ndarray:
    """An RGB uint8 frame (H, W, 3) with one perturbation at `level` (0: unchanged)."""
    if level == 0:
        return image
    p = parameter(name, level)
    if name == "gaussian_blur":
        return cv2.GaussianBlur(image, (p, p), p / 6.0)
    if name == "gaussian_noise":
        noisy = _ycrcb(image) + np.sqrt(p) * rng.standard_normal(image.shape).astype(np.float32)
        return _rgb(noisy)
    if name == "resize":
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, w // p), max(1, h // p)), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if name == "jpeg":
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, p])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if name == "brightness":
        return np.clip(image.astype(np.int16) + p, 0, 255).astype(np.uint8)
    if name == "contrast":
        return (image.astype(np.float32) * p).astype(np.uint8)  # truncates, as DF-1.0 does
    if name == "saturation":
        ycrcb = _ycrcb(image)
        ycrcb[..., 1:] = 0.5 + (ycrcb[..., 1:] - 0.5) * p
        return _rgb(ycrcb)
    if name == "reencode":
        return reencode(image[None], level)[0]
    raise AssertionError(name)


def reencode(frames: np.ndarray, level: int, fps: float = 25.0) -> np.ndarray:
    """RGB frames (T, H, W, 3) through libx264 at the level's crf and back (0: unchanged)."""
    from dfmnist.storage.video import Encoding, read_video, write_video

    if level == 0:
        return frames
    crf = parameter("reencode", level)
    with tempfile.TemporaryDirectory(prefix="dfmnist-reencode-") as tmp:
        path = Path(tmp) / "clip.mp4"
        write_video(path, frames, fps, Encoding(crf=crf, preset="medium"))
        decoded = read_video(path).frames
    if decoded.shape != frames.shape:
        raise RuntimeError(f"re-encoding changed the frames' shape: {frames.shape} -> "
                           f"{decoded.shape}")
    return decoded


def perturb_video(frames: np.ndarray, name: str, level: int, seed: int) -> np.ndarray:
    """All sampled frames of one video (T, H, W, 3) perturbed; noise seeded per video."""
    if name in PER_VIDEO:
        return reencode(frames, level)
    rng = np.random.default_rng(seed)
    return np.stack([perturb_frame(f, name, level, rng) for f in frames])

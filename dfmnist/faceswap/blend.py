"""Blending a swapped face into its crop: the feathered mask and the colour matching.

Everything here works in aligned-crop pixels (one face at a time); `convert.py` warps the
results back into the frame. Defaults follow what faceswap's convert step does unless told
otherwise: its default mask type, "extended" (`dfmnist.faceswap.extended_mask`), no erosion, a
light feather, and average-colour matching (its default colour adjustment).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfmnist.faceswap.extended_mask import extended_mask
from dfmnist.vision.face_geometry import LEFT_EYE, MOUTH_LEFT, MOUTH_RIGHT, NOSE, RIGHT_EYE

MASK_SOURCES = ("extended", "landmarks", "model")
COLOUR_METHODS = ("none", "avg_color", "rgb_mean_std", "lab_mean_std", "match_hist")

#: The landmark mask: an ellipse in the face frame, horizontal unit = the inter-ocular
#: distance (IOD), vertical unit = the eye-line-to-mouth drop (about 1 IOD on a frontal face,
#: and it keeps the face's height when a turned head shortens the IOD). Centred 0.55 drops
#: below the eyes, 1.25 drops tall each way (from above the brows to the chin, about 1.8
#: below the eyes) and 0.95 IOD wide each way (cheek to cheek, inside the ears and the hair line).
ELLIPSE_CENTRE_DROP = 0.55
ELLIPSE_HALF_HEIGHT = 1.25
ELLIPSE_HALF_WIDTH = 0.95


@dataclass(frozen=True)
class BlendSettings:
    """How a swapped face is blended into the target frame.

    mask: "extended" is faceswap's default hull (the face from the jaw to the lower forehead,
    placed from the five landmarks); "landmarks" a face ellipse from the five landmarks;
    "model" the swap model's own learned mask (a model without one falls back to "extended").
    erode: move the mask's edge inward (positive) or outward (negative) by this fraction of
    the crop side (faceswap's default is 0).
    blur: Gaussian feather of the mask edge, sigma as a fraction of the crop side; 0.02 is
    2.6 px on a 128 crop, a little wider than faceswap's default (four 3-px box passes on a
    128 mask, sigma about 1.6 px) because a five-point ellipse follows the face less closely
    than its 68-point hull.
    colour: "avg_color" shifts the swap's mean colour inside the mask onto the target's;
    "rgb_mean_std" matches mean and spread per RGB channel; "lab_mean_std" does that in
    CIE L*a*b* (Reinhard et al. 2001, "Color transfer between images"); "match_hist" maps each
    channel's histogram onto the target's; "none" keeps the model's colours.
    """

    mask: str = "extended"
    erode: float = 0.0
    blur: float = 0.02
    colour: str = "avg_color"

    def __post_init__(self) -> None:
        if self.mask not in MASK_SOURCES:
            raise ValueError(f"mask must be one of {', '.join(MASK_SOURCES)}; got {self.mask!r}")
        if self.colour not in COLOUR_METHODS:
            raise ValueError(
                f"colour must be one of {', '.join(COLOUR_METHODS)}; got {self.colour!r}"
            )
        if not -0.25 <= float(self.erode) <= 0.25:
            raise ValueError(f"erode must be a fraction of the crop side in [-0.25, 0.25], got "
                             f"{self.erode!r}")
        if not 0.0 <= float(self.blur) < 0.5:
            raise ValueError(f"blur must be a fraction of the crop side in [0, 0.5), got "
                             f"{self.blur!r}")


def landmark_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32 in {0, 1} (anti-aliased edge): the face ellipse of one landmark set
    (5, 2) in crop pixels (see `ELLIPSE_*`)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eyes = (lm[LEFT_EYE] + lm[RIGHT_EYE]) / 2
    d = lm[RIGHT_EYE] - lm[LEFT_EYE]
    iod = max(float(np.hypot(*d)), 1e-6)
    ux = d / iod
    uy = np.array([-ux[1], ux[0]])
    mouth = (lm[MOUTH_LEFT] + lm[MOUTH_RIGHT]) / 2
    drop = max(float((mouth - eyes) @ uy), 0.5 * iod)
    # follow a turned head: the face's middle sits half way from the eye midpoint to the nose
    shift = 0.5 * float((lm[NOSE] - eyes) @ ux)
    centre = eyes + ux * shift + uy * ELLIPSE_CENTRE_DROP * drop
    angles = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    outline = (centre + np.outer(np.cos(angles), ux) * ELLIPSE_HALF_WIDTH * iod
               + np.outer(np.sin(angles), uy) * ELLIPSE_HALF_HEIGHT * drop)
    shift_bits = 4  # sub-pixel vertices
    canvas = np.zeros((size, size), dtype=np.uint8)
    cv2.fillPoly(canvas, [np.round(outline * (1 << shift_bits)).astype(np.int32)], 255,
                 lineType=cv2.LINE_AA, shift=shift_bits)
    return canvas.astype(np.float32) / 255.0


def _edge_box(size: int) -> np.ndarray:
    """1 inside, falling smoothly to exactly 0 at the crop's border, so a mask never ends in a
    hard edge where the crop ends."""
    edge = size // 32 + 1
    box = np.zeros((size, size), dtype=np.float32)
    box[edge:-edge, edge:-edge] = 1.0
    box = cv2.GaussianBlur(box, (0, 0), sigmaX=edge / 2)
    box[:1], box[-1:], box[:, :1], box[:, -1:] = 0, 0, 0, 0
    return box


def feather(mask: np.ndarray, settings: BlendSettings) -> np.ndarray:
    """Erode (or dilate), blur and fade at the crop border one (S, S) mask in [0, 1]."""
    size = mask.shape[0]
    out = mask.astype(np.float32)
    radius = int(round(abs(settings.erode) * size))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = (cv2.erode if settings.erode > 0 else cv2.dilate)(out, kernel)
    if settings.blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=settings.blur * size)
    return np.clip(out * _edge_box(size), 0.0, 1.0)


def face_mask(settings: BlendSettings, crop_landmarks: np.ndarray, model_mask: np.ndarray | None,
              size: int) -> tuple[np.ndarray, np.ndarray]:
    """The feathered blend mask (S, S) float32 and the raw face region (S, S) bool that colour
    statistics are taken over (the mask before erosion and feathering)."""
    if settings.mask == "model" and model_mask is not None:
        raw = np.clip(np.asarray(model_mask, dtype=np.float32), 0.0, 1.0)
    elif settings.mask == "landmarks":
        raw = landmark_mask(crop_landmarks, size)
    else:  # faceswap's default; the fallback of a model without a mask
        raw = extended_mask(crop_landmarks, size, finish=False)
    return feather(raw, settings), raw > 0.5


def _stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return values.mean(axis=0), values.std(axis=0)


def _mean_std_transfer(new: np.ndarray, old: np.ndarray, region: np.ndarray) -> np.ndarray:
    mu_new, sd_new = _stats(new[region])
    mu_old, sd_old = _stats(old[region])
    # a flat swap (spread under one level) is shifted, not stretched into noise
    return (new - mu_new) * (sd_old / np.maximum(sd_new, 1.0)) + mu_old


def _match_histograms(new: np.ndarray, old: np.ndarray, region: np.ndarray) -> np.ndarray:
    out = new.copy()
    for c in range(new.shape[-1]):
        src = new[..., c][region]
        ref = np.sort(old[..., c][region])
        # each swapped value goes to the target value at the same quantile inside the region
        values, counts = np.unique(src, return_counts=True)
        quantiles = (np.cumsum(counts) - 0.5 * counts) / len(src)
        ref_q = (np.arange(len(ref)) + 0.5) / len(ref)
        # pixels outside the region follow the same monotone map
        out[..., c] = np.interp(new[..., c], values, np.interp(quantiles, ref_q, ref))
    return out


def match_colour(swapped: np.ndarray, target: np.ndarray, region: np.ndarray,
                 method: str) -> np.ndarray:
    """The swapped crop (S, S, 3) uint8 with its colours inside `region` matched to the target
    crop's by `method` (see `BlendSettings.colour`); unchanged when the region is empty."""
    if method not in COLOUR_METHODS:
        raise ValueError(f"colour must be one of {', '.join(COLOUR_METHODS)}; got {method!r}")
    if method == "none" or not region.any():
        return swapped
    new = swapped.astype(np.float32)
    old = target.astype(np.float32)
    if method == "avg_color":
        out = new + (old[region].mean(axis=0) - new[region].mean(axis=0))
    elif method == "rgb_mean_std":
        out = _mean_std_transfer(new, old, region)
    elif method == "lab_mean_std":
        to_lab = cv2.COLOR_RGB2LAB
        lab = _mean_std_transfer(cv2.cvtColor(new / 255.0, to_lab),
                                 cv2.cvtColor(old / 255.0, to_lab), region)
        out = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB) * 255.0
    else:
        out = _match_histograms(new, old, region)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)

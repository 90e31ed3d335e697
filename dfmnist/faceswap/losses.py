"""faceswap's default training loss, re-implemented in torch: the SSIM face loss with its L2
term, restricted to the face mask and weighted up on the eyes and the mouth.

Everything here was read from the faceswap project at commit `FACESWAP_COMMIT` (2021-12-05);
"losses_tf.py" is its ``lib/model/losses_tf.py`` (the TensorFlow backend's losses, which
``lib/model/__init__.py`` selects for every backend but AMD), "_base.py" is
``plugins/train/model/_base.py`` and "_config.py" is ``plugins/train/_config.py``.

How faceswap builds the face loss with its defaults (``_Loss._set_loss_functions``, _base.py
1255-1288, and ``LossWrapper``, losses_tf.py 502-596): a sum of separate terms, each the base
loss of *both* images multiplied by one mask (y * m for the prediction and the target alike;
``_apply_mask``, losses_tf.py 588-594, with mask_prop 1 the mask is used as it is):

    ssim(face) + mse(face) + 3 ssim(eyes) + mse(eyes) + 2 ssim(mouth) + mse(mouth)

The mse terms are the "L2 regularisation" faceswap adds to a structural loss, weight
l2_reg_term / 100 = 1 (_base.py 1290-1306), once per mask and *not* scaled by the multiplier.
A multiplier of 1 or less drops its two terms (_base.py 1279), and without penalized_mask_loss
the multipliers are switched off and the face terms are unmasked (_base.py 1319-1324).
Masked terms are means over the whole image (zeros outside the mask included), not over the
mask's area. Our tensors: (B, C, H, W) in [0, 1] as `dfmnist.faceswap.training` feeds its loss;
faceswap's are (B, H, W, C) BGR, which changes nothing here (see `ssim_loss_map`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dfmnist.faceswap.align import TEMPLATE_IOD
from dfmnist.vision.face_geometry import (
    LEFT_EYE,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    RIGHT_EYE,
    face_axes,
)

FACESWAP_COMMIT = "09c7d8aca3c608d1afad941ea78e9fd9b64d9219"

#: DSSIMObjective's defaults (losses_tf.py 63-70): a 3x3 window, SSIM's k1 and k2, and 1.0 as
#: the data range (faceswap's images are float in [0, 1], as ours).
SSIM_KERNEL = 3
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_MAX_VALUE = 1.0


@dataclass(frozen=True)
class FaceswapRecipe:
    """faceswap's default training recipe; `FACESWAP_SOURCES` says where each value is set."""

    optimizer: str = "adam"
    adam_beta_1: float = 0.5
    adam_beta_2: float = 0.99
    epsilon: float = 1e-7
    learning_rate: float = 5e-5
    loss_function: str = "ssim"
    l2_reg_term: int = 100  # percent: the mse term's weight is 1.0
    mask_loss_function: str = "mse"  # of a learned mask against the target mask
    penalized_mask_loss: bool = True
    mask_type: str = "extended"
    mask_blur_kernel: int = 3
    mask_threshold: int = 4
    eye_multiplier: int = 3
    mouth_multiplier: int = 2
    learn_mask: bool = False
    coverage: float = 87.5  # percent of the face-centred extract
    centering: str = "face"
    color_lightness: int = 30  # percent
    color_ab: int = 8  # percent
    color_clahe_chance: int = 50  # percent
    color_clahe_max_size: int = 4


FACESWAP_DEFAULTS = FaceswapRecipe()

FACESWAP_SOURCES: dict[str, str] = {
    "optimizer": "plugins/train/_config.py:110",
    "adam_beta_1": "plugins/train/model/_base.py:1105 (_Optimizer)",
    "adam_beta_2": "plugins/train/model/_base.py:1105 (_Optimizer)",
    "epsilon": "plugins/train/_config.py:143 (epsilon_exponent -7), _base.py:421 (10 ** it)",
    "learning_rate": "plugins/train/_config.py:129",
    "loss_function": "plugins/train/_config.py:250; _base.py:1170 (ssim=DSSIMObjective())",
    "l2_reg_term": "plugins/train/_config.py:302; _base.py:1173, 1302-1306 (weight / 100)",
    "mask_loss_function": "plugins/train/_config.py:286",
    "penalized_mask_loss": "plugins/train/_config.py:350",
    "mask_type": "plugins/train/_config.py:360",
    "mask_blur_kernel": "plugins/train/_config.py:401",
    "mask_threshold": "plugins/train/_config.py:412",
    "eye_multiplier": "plugins/train/_config.py:323",
    "mouth_multiplier": "plugins/train/_config.py:338",
    "learn_mask": "plugins/train/_config.py:422",
    "coverage": "plugins/train/_config.py:59",
    "centering": "plugins/train/_config.py:37",
    "color_lightness": "plugins/train/trainer/original_defaults.py:89",
    "color_ab": "plugins/train/trainer/original_defaults.py:97",
    "color_clahe_chance": "plugins/train/trainer/original_defaults.py:106",
    "color_clahe_max_size": "plugins/train/trainer/original_defaults.py:116",
}

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# SSIM


def _check_images(pred: torch.Tensor, target: torch.Tensor, kernel: int) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target differ in shape: {tuple(pred.shape)} vs "
                         f"{tuple(target.shape)}")
    if pred.ndim != 4 or min(pred.shape[2:]) < kernel:
        raise ValueError(f"images must be (B, C, H, W) with H, W >= {kernel}, got "
                         f"{tuple(pred.shape)}")
    if pred.dtype != target.dtype or not pred.dtype.is_floating_point:
        raise ValueError(f"pred and target must share one float dtype, got {pred.dtype} and "
                         f"{target.dtype}")


def _patches(images: torch.Tensor, kernel: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, H // k, W // k, k * k * C): tf.image.extract_patches with ksizes =
    strides = k and VALID padding (losses_tf.py 113-122, 191-196), i.e. non-overlapping k x k
    blocks from the top-left corner; the last H % k rows and W % k columns are never seen."""
    b, c, h, w = images.shape
    rows, cols = h // kernel, w // kernel
    blocks = images[:, :, :rows * kernel, :cols * kernel].reshape(b, c, rows, kernel, cols,
                                                                  kernel)
    # TF orders each patch's values (row, column, channel); the statistics ignore the order.
    return blocks.permute(0, 2, 4, 3, 5, 1).reshape(b, rows, cols, kernel * kernel * c)


def ssim_loss_map(pred: torch.Tensor, target: torch.Tensor, kernel: int = SSIM_KERNEL,
                  k_1: float = SSIM_K1, k_2: float = SSIM_K2,
                  max_value: float = SSIM_MAX_VALUE) -> torch.Tensor:
    """faceswap's DSSIM per patch, (B, H // k, W // k): (1 - SSIM) / 2 of each k x k block.

    As ``DSSIMObjective.call`` (losses_tf.py 89-139) computes it: every statistic is taken
    over all k * k * C values of a block at once (the channels are pooled, not averaged per
    channel, so an RGB/BGR swap of both images changes nothing), with a flat window (no
    Gaussian weights), population variances (``K.var``) and the covariance as
    E[xy] - E[x] E[y]:

        SSIM = (2 mu_x mu_y + c1) (2 cov + c2) / ((mu_x^2 + mu_y^2 + c1) (var_x + var_y + c2))

    with c1 = (k1 max_value)^2, c2 = (k2 max_value)^2; no clipping (1 - SSIM lies in [0, 2])."""
    _check_images(pred, target, kernel)
    c_1 = (k_1 * max_value) ** 2
    c_2 = (k_2 * max_value) ** 2
    patches_true = _patches(target, kernel)
    patches_pred = _patches(pred, kernel)
    u_true = patches_true.mean(dim=-1)
    u_pred = patches_pred.mean(dim=-1)
    # K.var: the mean squared deviation from the mean (divides by n, not n - 1)
    var_true = ((patches_true - u_true[..., None]) ** 2).mean(dim=-1)
    var_pred = ((patches_pred - u_pred[..., None]) ** 2).mean(dim=-1)
    covar = (patches_true * patches_pred).mean(dim=-1) - u_true * u_pred
    ssim = (2 * u_true * u_pred + c_1) * (2 * covar + c_2)
    ssim = ssim / ((u_true ** 2 + u_pred ** 2 + c_1) * (var_pred + var_true + c_2))
    return (1.0 - ssim) / 2.0


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """faceswap's ``ssim`` loss_function: the mean of `ssim_loss_map` over the batch and every
    patch (Keras' SUM_OVER_BATCH_SIZE reduction of a (B, h, w) loss), a scalar."""
    return ssim_loss_map(pred, target).mean()


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras' mean_squared_error reduced as faceswap's L2 term is: the mean over everything."""
    return F.mse_loss(pred, target)


# ---------------------------------------------------------------------------------------------
# Eye and mouth areas from MTCNN's five landmarks

# Sizes in IOD (the eye-centre distance), measured on faceswap's 68-point mean face
# (``_MEAN_FACE``, lib/align/aligned_face.py 13-30; eye centre = mean of its six contour points)
# plus the dilation faceswap applies to these areas (lib/training/generator.py 419-426:
# kernel size // 32 on its face-centred crop, which is about 3.8 IOD wide: 2 mean-face units,
# _EXTRACT_RATIOS["face"] = 0.5 in aligned_face.py 58 -> about 0.06 IOD on each side).
#: Eye hull 0.40 x 0.125 IOD (points 36-41, 42-47); half axes plus the dilation.
EYE_HALF_WIDTH = 0.20 + 0.06
EYE_HALF_HEIGHT = 0.063 + 0.06
#: Outer lip hull (points 48-59): as wide as the corners, 0.34 IOD tall, its middle 0.072 IOD
#: below the corners' midpoint.
MOUTH_MARGIN = 0.06
MOUTH_HALF_HEIGHT = 0.172 + 0.06
MOUTH_CENTRE_DROP = 0.072
#: faceswap blurs the areas with a Gaussian of ksize size // 16 (made odd) and sigma 0, which
#: OpenCV turns into 0.3 ((k - 1) / 2 - 1) + 0.8: 2.9 px on a 256 crop of about 68 px IOD.
REGION_BLUR_SIGMA = 0.04
#: Eye-to-mouth drop of our five-point mean face (`align.TEMPLATE_IOD`), in IOD.
_TEMPLATE_DROP = float((TEMPLATE_IOD[MOUTH_LEFT, 1] + TEMPLATE_IOD[MOUTH_RIGHT, 1]) / 2)


def _ellipse(canvas: np.ndarray, centre: np.ndarray, half_axes: tuple[float, float],
             direction: np.ndarray) -> None:
    """Add an ellipse's area coverage of each pixel (4 x 4 samples a pixel; pixel (i, j) spans
    x j +- 0.5, y i +- 0.5) to a float canvas: the anti-aliased fill, exact in area (OpenCV's
    LINE_AA fill reaches about half a pixel further out, a fifth of an eye's height on a
    64 px crop)."""
    a, b = max(half_axes[0], 1e-3), max(half_axes[1], 1e-3)
    reach = max(a, b) + 1
    height, width = canvas.shape
    x0, x1 = max(int(np.floor(centre[0] - reach)), 0), min(int(np.ceil(centre[0] + reach)), width)
    y0, y1 = max(int(np.floor(centre[1] - reach)), 0), min(int(np.ceil(centre[1] + reach)),
                                                          height)
    if x0 >= x1 or y0 >= y1:
        return
    offsets = (np.arange(4) + 0.5) / 4 - 0.5
    xs = (np.arange(x0, x1)[:, None] + offsets).ravel() - centre[0]
    ys = (np.arange(y0, y1)[:, None] + offsets).ravel() - centre[1]
    dx, dy = xs[None, :], ys[:, None]
    along = dx * direction[0] + dy * direction[1]
    across = -dx * direction[1] + dy * direction[0]
    inside = (along / a) ** 2 + (across / b) ** 2 <= 1.0
    cover = inside.reshape(y1 - y0, 4, x1 - x0, 4).mean(axis=(1, 3))
    canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], cover)


def landmark_regions(landmarks: np.ndarray, shape: int | tuple[int, int]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The eye area and the mouth area of one face, two float32 (H, W) masks in [0, 1], from
    MTCNN's five landmarks (5, 2) in pixels of an image of `shape` ((H, W) or a square side).

    faceswap fills the convex hull of the 68-point eye contours (36-41, 42-47; both eyes in
    one mask) and of the outer lip (48-59), dilates it by an ellipse of size // 32 and blurs it
    with a Gaussian of size // 16 (lib/align/detected_face.py 190, 418-430; generator.py
    419-426). Five points have no contours, so each area is an ellipse of the mean face's
    size, then blurred alike (sigma `REGION_BLUR_SIGMA` IOD):

    * each eye: centred on its landmark, long axis along the eye line, half axes
      `EYE_HALF_WIDTH` x `EYE_HALF_HEIGHT`;
    * the mouth: long axis along the corner-to-corner line, half width = half the corner
      distance + `MOUTH_MARGIN`, half height `MOUTH_HALF_HEIGHT`, centred `MOUTH_CENTRE_DROP`
      below the corners' midpoint (toward the chin).

    Widths are in IOD; heights in a unit that is the IOD on a frontal face and grows with the
    eye-to-mouth drop when a turned head shortens the IOD (heights do not foreshorten).
    Difference from faceswap: its hulls follow the actual lids and lips, so its eye area
    narrows on a blink and its mouth area grows when the mouth opens; ours keep the mean shape
    and only follow position, size, roll and the corners' spread (a smile or a pout).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.isfinite(lm).all():
        raise ValueError(f"landmarks must be five finite (x, y) points, got {lm.shape}")
    height, width = (shape, shape) if isinstance(shape, int) else shape
    ux, uy, iod = face_axes(lm)  # uy: image-down on an upright face
    iod = max(iod, 1e-6)
    corners = (lm[MOUTH_LEFT] + lm[MOUTH_RIGHT]) / 2
    drop = float((corners - (lm[LEFT_EYE] + lm[RIGHT_EYE]) / 2) @ uy)
    unit_y = max(iod, drop / _TEMPLATE_DROP)

    eyes = np.zeros((height, width), np.float64)
    for point in (lm[LEFT_EYE], lm[RIGHT_EYE]):
        _ellipse(eyes, point, (EYE_HALF_WIDTH * iod, EYE_HALF_HEIGHT * unit_y), ux)
    mouth_line = lm[MOUTH_RIGHT] - lm[MOUTH_LEFT]
    spread = float(np.hypot(*mouth_line))
    mx = mouth_line / spread if spread > 1e-6 else ux
    my = np.array([-mx[1], mx[0]])
    mouth = np.zeros((height, width), np.float64)
    _ellipse(mouth, corners + MOUTH_CENTRE_DROP * unit_y * my,
             (spread / 2 + MOUTH_MARGIN * iod, MOUTH_HALF_HEIGHT * unit_y), mx)

    sigma = REGION_BLUR_SIGMA * iod
    masks = []
    for canvas in (eyes, mouth):
        mask = canvas.astype(np.float32)
        if sigma >= 0.3:  # below that a Gaussian kernel is a single tap
            mask = cv2.GaussianBlur(mask, (0, 0), sigma)
        masks.append(np.clip(mask, 0.0, 1.0))
    return masks[0], masks[1]


def region_masks(landmarks: np.ndarray, shape: int | tuple[int, int]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """`landmark_regions` of a batch (B, 5, 2): eye and mouth masks, (B, 1, H, W) float32."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (5, 2):
        raise ValueError(f"landmarks must be (B, 5, 2), got {lm.shape}")
    pairs = [landmark_regions(points, shape) for points in lm]
    eyes = np.stack([p[0] for p in pairs])[:, None]
    mouths = np.stack([p[1] for p in pairs])[:, None]
    return torch.from_numpy(eyes), torch.from_numpy(mouths)


# ---------------------------------------------------------------------------------------------
# The penalized mask loss


def _masked(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    if mask is None:
        return pred, target
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[2:] != pred.shape[2:] \
            or mask.shape[0] not in (1, pred.shape[0]):
        raise ValueError(f"a mask must be (B, 1, H, W) for images {tuple(pred.shape)}, got "
                         f"{tuple(mask.shape)}")
    mask = mask.to(device=pred.device, dtype=pred.dtype)
    return pred * mask, target * mask


def penalized_mask_loss(pred: torch.Tensor, target: torch.Tensor,
                        face_mask: torch.Tensor | None,
                        eye_mask: torch.Tensor | None = None,
                        mouth_mask: torch.Tensor | None = None, *,
                        loss: Loss = ssim_loss,
                        eye_multiplier: float = FACESWAP_DEFAULTS.eye_multiplier,
                        mouth_multiplier: float = FACESWAP_DEFAULTS.mouth_multiplier,
                        l2_weight: float = FACESWAP_DEFAULTS.l2_reg_term / 100.0
                        ) -> torch.Tensor:
    """faceswap's face loss (see the module docstring): for each mask m with its weight w,
    w * loss(pred * m, target * m) + l2_weight * mse(pred * m, target * m), summed.

    `face_mask`, `eye_mask`, `mouth_mask`: (B or 1, 1, H, W) in [0, 1] (e.g. `region_masks`);
    the face term has weight 1, the eye and mouth terms their multipliers, and a multiplier
    <= 1 or a missing mask drops that area's terms. `face_mask` None is faceswap with
    penalized_mask_loss off: the whole crop, and the areas ignored. Where every mask is 0 the
    loss does not see the images at all. faceswap adds the mse terms only to its structural
    losses (ssim, gmsd): pass ``l2_weight=0`` with another `loss`.
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must be one (B, C, H, W) shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    terms: list[tuple[torch.Tensor | None, float]] = [(face_mask, 1.0)]
    if face_mask is not None:
        for mask, weight in ((eye_mask, eye_multiplier), (mouth_mask, mouth_multiplier)):
            if mask is not None and weight > 1:
                terms.append((mask, float(weight)))
    total = pred.new_zeros(())
    for mask, weight in terms:
        masked_pred, masked_target = _masked(pred, target, mask)
        total = total + weight * loss(masked_pred, masked_target)
        if l2_weight:
            total = total + l2_weight * mse_loss(masked_pred, masked_target)
    return total

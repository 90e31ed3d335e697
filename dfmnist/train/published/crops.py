"""The face crops Bonettini et al.'s published detectors expect, made from dfmnist's MTCNN boxes.

The original (polimi-ispl/icpr2020dfdc) finds faces with BlazeFace and widens each box by a
margin of 20 % of the box's height: twice that above (BlazeFace's box stops at the brows, the
forehead matters) and once on the other three sides, clamped to the frame. Its training loader
then squares the widened box around its centre (`face_policy='scale'`) and resizes it to
224x224; its video scoring takes up to 32 frames of each video.

Here the box is MTCNN's (dfmnist.vision.faces), which already reaches from the brows to the
chin: the same margin on it gives a crop a little taller than BlazeFace's, with more forehead.
Frames without a detection take their neighbours' boxes (dfmnist.targets.annotations'
face_geometry), and a video without any face the frame's face template.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from dfmnist.train.published.detector import INPUT_SIZE, MEAN, STD

#: The original's FaceExtractor margin, a share of the box's height.
MARGIN = 0.2
#: The most frames of a video the original scores.
MAX_FRAMES = 32


def margin_box(box: np.ndarray, height: int, width: int, margin: float = MARGIN) -> np.ndarray:
    """(x0, y0, x1, y1) widened as the original widens BlazeFace's: offset = round(margin x box
    height), 2 x offset above, offset left, right and below, clamped to the frame."""
    x0, y0, x1, y1 = (float(v) for v in box)
    offset = float(np.round(margin * (y1 - y0)))
    return np.array([max(x0 - offset, 0.0), max(y0 - 2 * offset, 0.0),
                     min(x1 + offset, float(width)), min(y1 + offset, float(height))])


def square_box(box: np.ndarray, height: int, width: int) -> np.ndarray:
    """The square of side max(w, h) around the box's centre, shifted (not shrunk) to stay in the
    frame where it fits; integer pixel bounds (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = int(round(max(x1 - x0, y1 - y0)))
    side = max(1, min(side, height, width))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    left = int(round(cx - side / 2.0))
    top = int(round(cy - side / 2.0))
    left = min(max(left, 0), width - side)
    top = min(max(top, 0), height - side)
    return np.array([left, top, left + side, top + side])


def published_crop(frame: np.ndarray, box: np.ndarray, margin: float = MARGIN,
                   size: int = INPUT_SIZE) -> np.ndarray:
    """One face (size, size, 3) RGB uint8: the box widened by `margin`, squared, resized."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = square_box(margin_box(box, height, width, margin), height, width)
    face = frame[y0:y1, x0:x1]
    shrink = face.shape[0] > size
    return cv2.resize(face, (size, size),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def published_batch(frames: np.ndarray, boxes: np.ndarray, margin: float = MARGIN
                    ) -> torch.Tensor:
    """Frames (T, H, W, 3) and their boxes (T, 4) as the published networks' input: (T, 3, 224,
    224) float32, (pixel / 255 - mean) / std with ImageNet's mean and std."""
    crops = np.stack([published_crop(f, b, margin) for f, b in zip(frames, boxes, strict=True)])
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def spread_indices(count: int, most: int = MAX_FRAMES) -> np.ndarray:
    """Up to `most` of `count` frames, evenly spread (all of them when there are fewer)."""
    if count <= most:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, most).round().astype(int))

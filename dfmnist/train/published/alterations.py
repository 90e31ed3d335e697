"""The alterations of the seed report's detection experiment (its Figures 2-4), as parameters.

The report scored FOMM fakes with Bonettini et al.'s published networks after downscaling,
rotating, blurring and noising the videos, and on a fake posed with eyes and mouth closed. It
gives no strengths; each alteration here takes a list of parameters (the `published_scores`
target's strengths):

* `downscale`: the frame shrunk by this factor (area interpolation) and left small, as a
  smaller video would arrive; the face crop is then upsampled to the network's input;
* `rotation`: degrees, counter-clockwise about the frame's centre, black corners;
* `gaussian_blur`: sigma in pixels of the stored frame (kernel from OpenCV's rule);
* `random_noise`: the standard deviation, in grey levels of 255, of white Gaussian noise added
  to each RGB value, clipped;
* `eyes_mouth_covered`: eyes and mouth hidden under patches of the face's own skin tone,
  placed from the five MTCNN landmarks; the parameter scales the patches (1.0: a band 1.6 eye
  distances wide and 0.5 high over both eyes, a bar 1.4 mouth widths wide and 0.45 eye distances
  high over the mouth). It stands in for the report's fake driven with eyes and mouth closed.

Alterations apply to the stored frames before any face detection, as the report altered its
videos before the original pipeline found the faces.
"""

from __future__ import annotations

import cv2
import numpy as np

#: The alterations, in the table's order (their default strengths are the config schema's,
#: train.published_scores.alterations).
ALTERATIONS = ("downscale", "rotation", "gaussian_blur", "random_noise", "eyes_mouth_covered")


def _skin_tone(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The median colour of a small square around the nose tip (the face's own skin)."""
    nose = landmarks[2]
    reach = max(2, int(0.15 * np.linalg.norm(landmarks[1] - landmarks[0])))
    x, y = int(round(nose[0])), int(round(nose[1]))
    h, w = frame.shape[:2]
    patch = frame[max(0, y - reach):min(h, y + reach + 1), max(0, x - reach):min(w, x + reach + 1)]
    if not patch.size:
        return np.median(frame.reshape(-1, 3), axis=0)
    return np.median(patch.reshape(-1, 3), axis=0)


def _rotated_rect(centre: np.ndarray, axis: np.ndarray, length: float, height: float
                  ) -> np.ndarray:
    """The four corners of a rectangle centred on `centre`, long side along `axis`."""
    along = axis / max(np.linalg.norm(axis), 1e-6)
    across = np.array([-along[1], along[0]])
    half_l, half_h = along * length / 2, across * height / 2
    return np.array([centre - half_l - half_h, centre + half_l - half_h,
                     centre + half_l + half_h, centre - half_l + half_h])


def cover_eyes_mouth(frame: np.ndarray, landmarks: np.ndarray, scale: float = 1.0
                     ) -> np.ndarray:
    """The frame with skin-tone patches over both eyes and the mouth (landmarks: MTCNN's five
    points, left eye, right eye, nose, mouth left, mouth right)."""
    eyes = landmarks[1] - landmarks[0]
    eye_distance = float(np.linalg.norm(eyes))
    mouth = landmarks[4] - landmarks[3]
    tone = tuple(float(c) for c in _skin_tone(frame, landmarks))
    out = frame.copy()
    patches = [
        _rotated_rect((landmarks[0] + landmarks[1]) / 2, eyes, 1.6 * eye_distance * scale,
                      0.5 * eye_distance * scale),
        _rotated_rect((landmarks[3] + landmarks[4]) / 2, mouth,
                      1.4 * float(np.linalg.norm(mouth)) * scale, 0.45 * eye_distance * scale),
    ]
    for corners in patches:
        cv2.fillConvexPoly(out, np.round(corners).astype(np.int32), tone, lineType=cv2.LINE_AA)
    return out


def downscaled_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """(width, height) of a frame shrunk by `factor`, at least one pixel each."""
    return max(1, round(width / factor)), max(1, round(height / factor))


def alter_frame(frame: np.ndarray, name: str, parameter: float, rng: np.random.Generator,
                landmarks: np.ndarray | None = None) -> np.ndarray:
    """One RGB uint8 frame with one alteration (landmarks: the clean frame's five points,
    needed by `eyes_mouth_covered`)."""
    if name == "downscale":
        size = downscaled_size(*frame.shape[:2], parameter)
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    if name == "rotation":
        h, w = frame.shape[:2]
        matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), float(parameter), 1.0)
        return cv2.warpAffine(frame, matrix, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    if name == "gaussian_blur":
        return cv2.GaussianBlur(frame, (0, 0), float(parameter))
    if name == "random_noise":
        noise = rng.normal(0.0, float(parameter), frame.shape)
        return np.clip(np.rint(frame + noise), 0, 255).astype(np.uint8)
    if name == "eyes_mouth_covered":
        if landmarks is None:
            raise ValueError("eyes_mouth_covered needs the frame's landmarks")
        return cover_eyes_mouth(frame, landmarks, float(parameter))
    raise ValueError(f"unknown alteration {name!r} (known: {', '.join(ALTERATIONS)})")


def moved_boxes(boxes: np.ndarray, name: str, parameter: float, height: int, width: int
                ) -> np.ndarray:
    """Face boxes (T, 4) of the clean frames where the alteration puts them: shrunk with the
    frame, or the bounding box of the rotated box; unmoved by the others."""
    if name == "downscale":
        new_w, new_h = downscaled_size(height, width, parameter)
        return boxes * np.array([new_w / width, new_h / height, new_w / width, new_h / height])
    if name == "rotation":
        matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0),
                                         float(parameter), 1.0)
        x0, y0, x1, y1 = (boxes[:, i] for i in range(4))
        corners = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1),
                            np.stack([x1, y1], 1), np.stack([x0, y1], 1)], 1)  # (T, 4, 2)
        moved = corners @ matrix[:, :2].T + matrix[:, 2]
        return np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)
    return boxes.copy()


def alter_video(frames: np.ndarray, name: str, parameter: float, seed: int,
                landmarks: np.ndarray | None = None) -> np.ndarray:
    """Every frame of one video altered; the noise is seeded per video."""
    rng = np.random.default_rng(seed)
    points = [None] * len(frames) if landmarks is None else list(landmarks)
    return np.stack([alter_frame(f, name, parameter, rng, p)
                     for f, p in zip(frames, points, strict=True)])

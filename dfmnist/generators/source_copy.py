"""A stand-in generator for measuring the pipeline around generation: the source, moved.

Every output frame is the source image shifted by a whole number of pixels: the driving face's
displacement since the first driving frame (the mean of its five landmarks), scaled to the
source's face size. No model and no float kernels run, so generation costs almost nothing
and each fake is still a distinct video that depends on its source and its driving take,
as a real generator's would: compression, frames, annotations and exports do their real
work per fake. `bench/fake_scale.py` runs the workflow with it at thousands of fakes.

Its fakes are not deepfakes (the face does not move relative to the frame): never a dataset.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from dfmnist.generators.base import Generator, check_inputs


def face_span(landmarks: np.ndarray) -> float:
    """The distance between the eyes and the mouth's centre, a face-size measure (pixels)."""
    eyes = landmarks[..., :2, :].mean(axis=-2)
    mouth = landmarks[..., 3:5, :].mean(axis=-2)
    return float(np.linalg.norm(eyes - mouth, axis=-1).mean())


class SourceCopyGenerator(Generator):
    """The source image, shifted by the driving face's motion; no animation."""

    name = "source_copy"

    def params(self) -> dict[str, Any]:
        return {"version": 1}

    def animate(self, source: np.ndarray, source_landmarks: np.ndarray, driving: np.ndarray,
                driving_landmarks: np.ndarray) -> np.ndarray:
        source, src_lms, driving, drv_lms = check_inputs(
            source, source_landmarks, driving, driving_landmarks)
        scale = face_span(src_lms) / max(face_span(drv_lms), 1e-6)
        centres = drv_lms.mean(axis=1)
        shifts = np.rint((centres - centres[0]) * scale).astype(int)
        height, width = source.shape[:2]
        frames = np.empty((len(driving), height, width, 3), np.uint8)
        for t, (dx, dy) in enumerate(shifts):
            moved = np.float32([[1, 0, dx], [0, 1, dy]])  # whole pixels: an exact copy
            frames[t] = cv2.warpAffine(source, moved, (width, height),
                                       flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        return frames

"""The generator interface: animate one source face with one driving video."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Generator(ABC):
    """A face-animation model.

    Inputs are VoxCeleb-style square face crops (256x256 in the pipeline): `source` is one RGB
    image (H, W, 3) uint8 with its MTCNN landmarks (5, 2); `driving` is a clip (T, H', W', 3)
    uint8 with per-frame landmarks (T, 5, 2) (interpolated: no NaN). `animate` returns the
    source animated by the driving motion, (T, H, W, 3) uint8.
    """

    #: Registry name; also recorded in manifests and content keys.
    name: str = ""
    #: sha256 of the model weights, or None for weight-free generators.
    weights_sha256: str | None = None
    #: True when float32 kernels decide the output's bytes (a network): its items' keys then
    #: carry the machine's float platform (dfmnist.numerics). False for exact generators.
    float_kernels: bool = False

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Everything (besides name and weights) that changes the output; JSON-serialisable."""

    @abstractmethod
    def animate(
        self,
        source: np.ndarray,
        source_landmarks: np.ndarray,
        driving: np.ndarray,
        driving_landmarks: np.ndarray,
    ) -> np.ndarray:
        """Animate `source` with the motion of `driving`: (T, H, W, 3) uint8."""

    def spec(self) -> dict[str, Any]:
        """Name, weights hash and params: the generator's part of a content key."""
        return {"name": self.name, "weights_sha256": self.weights_sha256, "params": self.params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def check_inputs(
    source: np.ndarray,
    source_landmarks: np.ndarray,
    driving: np.ndarray,
    driving_landmarks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate `Generator.animate` inputs; return them as arrays (landmarks as float64).

    Raises ValueError with a message naming the offending argument and its shape.
    """
    source = np.asarray(source)
    driving = np.asarray(driving)
    src_lms = np.asarray(source_landmarks, dtype=np.float64)
    drv_lms = np.asarray(driving_landmarks, dtype=np.float64)
    if source.ndim != 3 or source.shape[2] != 3 or min(source.shape[:2]) < 8:
        raise ValueError(f"source must be an RGB image (H, W, 3), got shape {source.shape}")
    if driving.ndim != 4 or driving.shape[3] != 3 or driving.shape[0] == 0:
        raise ValueError(f"driving must be RGB frames (T, H, W, 3) with T >= 1, "
                         f"got shape {driving.shape}")
    for label, arr in (("source", source), ("driving", driving)):
        if arr.dtype != np.uint8:
            raise ValueError(f"{label} must be uint8, got {arr.dtype}")
    if src_lms.shape != (5, 2):
        raise ValueError(f"source_landmarks must have shape (5, 2), got {src_lms.shape}")
    if drv_lms.shape != (len(driving), 5, 2):
        raise ValueError(f"driving_landmarks must have shape (T, 5, 2) = ({len(driving)}, 5, 2) "
                         f"for {len(driving)} driving frames, got {drv_lms.shape}")
    if not np.isfinite(src_lms).all():
        raise ValueError("source_landmarks contain NaN or inf")
    if not np.isfinite(drv_lms).all():
        raise ValueError("driving_landmarks contain NaN or inf (interpolate the FaceTrack first)")
    return source, src_lms, driving, drv_lms

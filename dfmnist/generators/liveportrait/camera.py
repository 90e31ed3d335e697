"""Head pose and keypoint arithmetic: pose bins to degrees, Euler angles to rotation
matrices, the implicit keypoints' transform and LivePortrait's relative motion.

Facts from KwaiVGI/LivePortrait ``src/utils/camera.py``, ``src/live_portrait_wrapper.py``
(``get_kp_info``, ``transform_keypoint``) and ``src/live_portrait_pipeline.py`` (the
animation loop). Conventions (all reproduced, in the original's order of operations):

* Pose: each angle is predicted as logits over 66 bins of 3 degrees; the angle is the
  softmax expectation of the bin index, ``3 * sum(p_i * i) - 97.5`` (bin centres from
  -97.5 to +97.5 degrees).
* Rotation: degrees are turned into radians as ``deg / 180 * pi``; with Rx(pitch),
  Ry(yaw), Rz(roll) the usual right-handed rotations, the matrix returned is
  ``(Rz @ Ry @ Rx)^T``, to be applied to row vectors: ``x @ R``.
* Keypoints (Eqn. 2 of the paper): ``x = s * (x_c @ R + exp) + t`` with only t's x and y
  added (t_z dropped); the source's keypoints are computed as ``(x_c @ R + exp) * s`` then
  ``+ t_xy`` (the wrapper's ``transform_keypoint``).
* Relative motion (driving frame i, first driving frame 0, source s):
  ``R = (R_i @ R_0^T) @ R_s``, ``exp = exp_s + (exp_i - exp_0)``,
  ``scale = s_s * (s_i / s_0)``, ``t = t_s + (t_i - t_0)`` with t_z set to 0, then
  ``x = scale * (x_c,s @ R + exp) + t``.
* 'expression-friendly' driving (the command line's default): the frames' keypoints are
  taken relative to frame 0's: ``x_s + m * (x_i - x_0)`` with
  ``m = sqrt(V_s) / sqrt(V_0)``, V the volume of the convex hull of the 3D keypoints
  (scipy's Qhull, as the original) of the source and of frame 0's result; frame 0 thus
  reproduces x_s exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "KeypointInfo",
    "bins_to_degrees",
    "hull_volume",
    "keypoint_info",
    "relative_keypoints",
    "rotation_matrix",
    "source_keypoints",
]


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """(B, 66) pose-bin logits -> (B,) degrees: ``3 * E[bin index] - 97.5``."""
    index = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return torch.sum(F.softmax(logits, dim=1) * index, dim=1) * 3 - 97.5


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Angles in degrees, (B, 1) or (B,) each -> (B, 3, 3) ``(Rz Ry Rx)^T`` for row vectors."""
    x, y, z = ((a if a.ndim == 2 else a[:, None]) / 180 * math.pi for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    b = x.shape[0]

    def matrix(*entries: torch.Tensor) -> torch.Tensor:
        return torch.cat(entries, dim=1).reshape(b, 3, 3)

    rot_x = matrix(one, zero, zero, zero, torch.cos(x), -torch.sin(x),
                   zero, torch.sin(x), torch.cos(x))
    rot_y = matrix(torch.cos(y), zero, torch.sin(y), zero, one, zero,
                   -torch.sin(y), zero, torch.cos(y))
    rot_z = matrix(torch.cos(z), -torch.sin(z), zero, torch.sin(z), torch.cos(z), zero,
                   zero, zero, one)
    return (rot_z @ rot_y @ rot_x).permute(0, 2, 1)


@dataclass
class KeypointInfo:
    """The motion extractor's output made usable: canonical keypoints `kp` (B, K, 3),
    expression `exp` (B, K, 3), translation `t` (B, 3), `scale` (B, 1), and the pose as
    degrees (B, 1) and as the rotation `rotation` (B, 3, 3)."""

    kp: torch.Tensor
    exp: torch.Tensor
    t: torch.Tensor
    scale: torch.Tensor
    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor
    rotation: torch.Tensor

    def __getitem__(self, index: slice | int) -> KeypointInfo:
        """The frames `index` (a slice, or one frame kept as a batch of 1)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return KeypointInfo(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})

    def __len__(self) -> int:
        return self.kp.shape[0]


def keypoint_info(raw: dict[str, torch.Tensor]) -> KeypointInfo:
    """The motion extractor's raw heads -> `KeypointInfo` (the wrapper's ``get_kp_info``
    with ``flag_refine_info``, plus the rotation)."""
    b = raw["kp"].shape[0]
    pitch, yaw, roll = (bins_to_degrees(raw[k])[:, None] for k in ("pitch", "yaw", "roll"))
    return KeypointInfo(kp=raw["kp"].reshape(b, -1, 3), exp=raw["exp"].reshape(b, -1, 3),
                        t=raw["t"], scale=raw["scale"], pitch=pitch, yaw=yaw, roll=roll,
                        rotation=rotation_matrix(pitch, yaw, roll))


def source_keypoints(info: KeypointInfo) -> torch.Tensor:
    """The implicit keypoints of an image: ``(kp @ R + exp) * scale``, then ``+ t`` in x, y."""
    kp = info.kp @ info.rotation + info.exp
    kp = kp * info.scale[..., None]
    xy = kp[..., :2] + info.t[:, None, :2]
    return torch.cat([xy, kp[..., 2:]], dim=-1)


def relative_keypoints(source: KeypointInfo, driving: KeypointInfo,
                       initial: KeypointInfo) -> torch.Tensor:
    """Driving frames' keypoints moved relative to the first driving frame and applied to
    the source (see the module docstring): (B, K, 3) for the B frames of `driving`."""
    rotation = (driving.rotation @ initial.rotation.permute(0, 2, 1)) @ source.rotation
    exp = source.exp + (driving.exp - initial.exp)
    scale = source.scale * (driving.scale / initial.scale)
    t = source.t + (driving.t - initial.t)
    t = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=1)  # t_z is not used
    return scale[:, :, None] * (source.kp @ rotation + exp) + t[:, None, :]


def hull_volume(points: np.ndarray) -> float:
    """Volume of the convex hull of (N, 3) points (scipy's Qhull, in float64)."""
    from scipy.spatial import ConvexHull  # a dependency of scikit-learn, imported on use

    return float(ConvexHull(np.asarray(points)).volume)

"""Training batches as faceswap makes them: a random similarity transform and flip of each
aligned face (the target), and a random grid warp of it (the input), so the autoencoder learns
to rebuild a face from a distorted view.

Ranges are faceswap's defaults: rotation +-10 degrees, zoom +-5 %, shift +-5 % of the size,
horizontal flip half the time; the warp moves the nodes of a 5x5 grid by a normal offset of
sd 5/256 of the size, interpolated to a dense map over 1.25x the size and cut to the centre.
All randomness comes from the caller's numpy Generator, so a batch is a function of its state.
"""

from __future__ import annotations

import cv2
import numpy as np

from dfmnist.faceswap.align import DEFAULT_COVERAGE, template_points
from dfmnist.faceswap.blend import landmark_mask
from dfmnist.targets.frames import resize_square

ROTATION_DEG = 10.0
ZOOM = 0.05
SHIFT = 0.05
FLIP_CHANCE = 0.5
WARP_GRID = 5
WARP_SD = 5 / 256

def face_ellipse(size: int, coverage: float = DEFAULT_COVERAGE) -> np.ndarray:
    """The target of a learned mask: the face ellipse that conversion blends with
    (`dfmnist.faceswap.blend.landmark_mask`) on the template's landmarks, where
    `align_faces` puts every face of a `size` crop at `coverage`."""
    return landmark_mask(template_points(size, coverage), size)


def resize_faces(faces: np.ndarray, size: int) -> np.ndarray:
    """Square uint8 faces (N, S, S, 3) resized to (N, size, size, 3), each as
    `targets.frames.resize_square` resizes a frame (area when shrinking, cubic when growing)."""
    if faces.shape[1] == size:
        return np.ascontiguousarray(faces)
    return np.stack([resize_square(face, size) for face in faces])


def _random_similarity(size: int, rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(-ROTATION_DEG, ROTATION_DEG)
    scale = rng.uniform(1 - ZOOM, 1 + ZOOM)
    shift = rng.uniform(-SHIFT, SHIFT, size=2) * size
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += shift
    if rng.random() < FLIP_CHANCE:
        matrix = np.array([[-1.0, 0.0, size], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0, 0, 1]])
    return matrix


def _random_warp(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    nodes = np.linspace(0, size, WARP_GRID, dtype=np.float32)
    grid_x = np.broadcast_to(nodes, (WARP_GRID, WARP_GRID))
    grid_y = grid_x.T
    noise = rng.normal(scale=WARP_SD * size, size=(2, WARP_GRID, WARP_GRID)).astype(np.float32)
    span = int(1.25 * size)
    cut = slice(span // 10, span // 10 + size)
    map_x = cv2.resize(grid_x + noise[0], (span, span))[cut, cut]
    map_y = cv2.resize(grid_y + noise[1], (span, span))[cut, cut]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _to_tensor_layout(images: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [0, 1]."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def training_batch(
    faces: np.ndarray,
    indices: np.ndarray,
    input_size: int,
    output_size: int,
    rng: np.random.Generator,
    with_mask: bool,
    coverage: float = DEFAULT_COVERAGE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Augmented inputs (B, 3, in, in), targets (B, 3, out, out) in [0, 1], and target masks
    (B, 1, out, out) when `with_mask`, from `faces` (N, P, P, 3) uint8 at processing size P
    (= output_size: the target is never resampled twice), aligned at `coverage`."""
    size = faces.shape[1]
    ellipse = face_ellipse(size, coverage) if with_mask else None
    inputs, targets, masks = [], [], []
    for index in indices:
        matrix = _random_similarity(size, rng)
        target = cv2.warpAffine(faces[index], matrix, (size, size), borderMode=cv2.BORDER_REPLICATE)
        warped = _random_warp(target, rng)
        if input_size != size:
            warped = cv2.resize(warped, (input_size, input_size), interpolation=cv2.INTER_AREA)
        if output_size != size:
            target = cv2.resize(target, (output_size, output_size), interpolation=cv2.INTER_AREA)
        inputs.append(warped)
        targets.append(target)
        if ellipse is not None:
            mask = cv2.warpAffine(ellipse, matrix, (size, size), borderValue=0)
            if output_size != size:
                mask = cv2.resize(mask, (output_size, output_size), interpolation=cv2.INTER_AREA)
            masks.append(mask)
    mask_batch = np.stack(masks)[:, None] if masks else None
    return _to_tensor_layout(np.stack(inputs)), _to_tensor_layout(np.stack(targets)), mask_batch

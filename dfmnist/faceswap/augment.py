"""Training batches as faceswap makes them: a random similarity transform and flip of each
aligned face (the target), and a random grid warp of it (the input), so the autoencoder learns
to rebuild a face from a distorted view.

Ranges are faceswap's defaults: rotation +-10 degrees, zoom +-5 %, shift +-5 % of the size,
horizontal flip half the time; the warp moves the nodes of a 5x5 grid by a normal offset of
sd 5/256 of the size, interpolated to a dense map over 1.25x the size and cut to the centre.
With the faceswap recipe, the face is first colour-augmented as faceswap's
``ImageAugmentation.color_adjust`` does (lib/training/augmentation.py at
`losses.FACESWAP_COMMIT`, 205-272), target and input alike: in 8-bit CIE L*a*b*, half the faces
get CLAHE on L (clip limit 2, a tile grid of base + k * (base // 2) tiles, k drawn in 0..4,
base = the stored crop's size // 128), then each channel moves by a uniform draw in +-30 % (L)
or +-8 % (a, b): toward 255 by that share of the distance to it, or toward 0. The training
masks follow each face's own landmarks through the same transform: the extended face mask
and the eye and mouth areas (`extended_mask`, `losses.landmark_regions`).
All randomness comes from the caller's numpy Generator, so a batch is a function of its state.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfmnist.faceswap.align import DEFAULT_COVERAGE, template_points, transform_points
from dfmnist.faceswap.blend import landmark_mask
from dfmnist.faceswap.extended_mask import extended_mask
from dfmnist.faceswap.losses import FACESWAP_DEFAULTS, landmark_regions
from dfmnist.targets.frames import resize_square

ROTATION_DEG = 10.0
ZOOM = 0.05
SHIFT = 0.05
FLIP_CHANCE = 0.5
WARP_GRID = 5
WARP_SD = 5 / 256
#: MTCNN's order mirrored: a flipped face's left eye is the right one's image, and so on.
FLIPPED_ORDER = [1, 0, 2, 4, 3]
#: CLAHE's clip limit in faceswap's colour augmentation (augmentation.py 247).
CLAHE_CLIP = 2.0


@dataclass(frozen=True)
class BatchRecipe:
    """What a batch holds besides the faces. `face_mask`: "extended" (each face's own, from
    its landmarks), "ellipse" (the template's landmark ellipse moved with the face) or None;
    `regions`: eye and mouth areas; `colour`: faceswap's colour augmentation, whose CLAHE
    grid counts from `source_size`, the stored crops' side before resizing."""

    face_mask: str | None = None
    regions: bool = False
    colour: bool = False
    source_size: int = 256


@dataclass
class TrainingBatch:
    """Inputs (B, 3, in, in) and targets (B, 3, out, out) in [0, 1]; masks (B, 1, out, out)
    float32 in [0, 1] where the recipe asks for them."""

    inputs: np.ndarray
    targets: np.ndarray
    face_masks: np.ndarray | None = None
    eye_masks: np.ndarray | None = None
    mouth_masks: np.ndarray | None = None

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


def _random_similarity(size: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    angle = rng.uniform(-ROTATION_DEG, ROTATION_DEG)
    scale = rng.uniform(1 - ZOOM, 1 + ZOOM)
    shift = rng.uniform(-SHIFT, SHIFT, size=2) * size
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += shift
    flip = bool(rng.random() < FLIP_CHANCE)
    if flip:
        matrix = np.array([[-1.0, 0.0, size], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0, 0, 1]])
    return matrix, flip


def colour_augment(faces: np.ndarray, rng: np.random.Generator, source_size: int
                   ) -> np.ndarray:
    """A batch of uint8 RGB faces (B, S, S, 3) colour-augmented as faceswap's
    ``color_adjust`` does a batch (see the module docstring), with its draws in its order: the
    CLAHE chances of the batch, the grid sizes of the faces picked, then every face's three
    shifts. As there, CLAHE is skipped when the first face is the only one picked (its
    ``np.any`` of the picked indices is false for [0]). Sizes below 128 would give faceswap a
    zero CLAHE grid; ours keeps one tile at least."""
    recipe = FACESWAP_DEFAULTS
    labs = np.stack([cv2.cvtColor(face, cv2.COLOR_RGB2LAB) for face in faces])
    picked = np.flatnonzero(rng.random(len(faces)) < recipe.color_clahe_chance / 100)
    if np.any(picked):
        base = source_size // 128
        bases = np.rint(rng.uniform(0, recipe.color_clahe_max_size, size=len(picked)))
        for index, grid_base in zip(picked, bases.astype(np.uint8), strict=True):
            grid = max(int(grid_base) * (base // 2) + base, 1)
            clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(grid, grid))
            labs[index, :, :, 0] = clahe.apply(np.ascontiguousarray(labs[index, :, :, 0]))
    amounts = np.array([recipe.color_lightness, recipe.color_ab, recipe.color_ab],
                       np.float32) / 100
    shifts = rng.random((len(faces), 3)).astype(np.float32) * (amounts * 2) - amounts
    for lab, face_shifts in zip(labs, shifts, strict=True):
        for channel, shift in enumerate(face_shifts):
            values = lab[..., channel].astype(np.float32)
            moved = (255 - values) * shift + values if shift >= 0 else values * (1 + shift)
            lab[..., channel] = moved.astype(np.uint8)  # truncated, as numpy's uint8 store does
    return np.stack([cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) for lab in labs])


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


def _moved_landmarks(landmarks: np.ndarray, matrix: np.ndarray, flip: bool) -> np.ndarray:
    moved = transform_points(matrix, landmarks)
    return moved[FLIPPED_ORDER] if flip else moved


def training_batch(
    faces: np.ndarray,
    indices: np.ndarray,
    input_size: int,
    output_size: int,
    rng: np.random.Generator,
    recipe: BatchRecipe,
    landmarks: np.ndarray | None = None,
    coverage: float = DEFAULT_COVERAGE,
) -> TrainingBatch:
    """A batch of `faces` (N, P, P, 3) uint8 at processing size P (= output_size: the target is
    never resampled twice), aligned at `coverage`, drawn at `indices`. `landmarks` (N, 5, 2):
    each face's five points in its P-pixel crop (not given: the template's), for the
    extended mask and the eye and mouth areas."""
    size = faces.shape[1]
    if landmarks is None:
        landmarks = np.broadcast_to(template_points(size, coverage), (len(faces), 5, 2))
    ellipse = face_ellipse(size, coverage) if recipe.face_mask == "ellipse" else None
    scale = output_size / size
    inputs, targets, face_masks, eyes, mouths = [], [], [], [], []
    chosen = faces[indices]
    if recipe.colour:
        chosen = colour_augment(chosen, rng, recipe.source_size)
    for index, face in zip(indices, chosen, strict=True):
        matrix, flip = _random_similarity(size, rng)
        target = cv2.warpAffine(face, matrix, (size, size), borderMode=cv2.BORDER_REPLICATE)
        warped = _random_warp(target, rng)
        if input_size != size:
            warped = cv2.resize(warped, (input_size, input_size), interpolation=cv2.INTER_AREA)
        if output_size != size:
            target = cv2.resize(target, (output_size, output_size), interpolation=cv2.INTER_AREA)
        inputs.append(warped)
        targets.append(target)
        if recipe.face_mask == "extended" or recipe.regions:
            points = (_moved_landmarks(landmarks[index], matrix, flip) + 0.5) * scale - 0.5
            if recipe.face_mask == "extended":
                face_masks.append(extended_mask(points, output_size))
            if recipe.regions:
                eye, mouth = landmark_regions(points, output_size)
                eyes.append(eye)
                mouths.append(mouth)
        if ellipse is not None:
            mask = cv2.warpAffine(ellipse, matrix, (size, size), borderValue=0)
            if output_size != size:
                mask = cv2.resize(mask, (output_size, output_size), interpolation=cv2.INTER_AREA)
            face_masks.append(mask)

    def stacked(masks: list[np.ndarray]) -> np.ndarray | None:
        return np.stack(masks)[:, None].astype(np.float32) if masks else None

    return TrainingBatch(_to_tensor_layout(np.stack(inputs)), _to_tensor_layout(np.stack(targets)),
                         stacked(face_masks), stacked(eyes), stacked(mouths))

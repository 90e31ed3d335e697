"""Converting a target video: align each face, swap it, match its colour, warp it back through
the inverse alignment and alpha-blend it with a feathered mask (faceswap's convert step)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import cv2
import numpy as np

from dfmnist.faceswap.align import align_faces, invert_affine, transform_points, usable_landmarks
from dfmnist.faceswap.blend import BlendSettings, face_mask, match_colour

#: crops (N, S, S, 3) uint8 -> (swapped faces (N, S, S, 3) uint8, masks (N, S, S) in [0, 1]
#: or None)
SwapFn = Callable[[np.ndarray], tuple[np.ndarray, "np.ndarray | None"]]

#: Frames aligned, swapped and blended together: bounds memory to a few crops per frame and
#: gives the model a batch.
DEFAULT_BATCH = 32

#: Mask values below this change no 8-bit pixel (alpha * 255 < 0.5); they are set to 0 so
#: that outside the mask the frame stays exactly as it was.
_ALPHA_FLOOR = 1.0 / 512


def _paste_in_place(frame: np.ndarray, face: np.ndarray, mask: np.ndarray,
                    matrix: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray]:
    """Blend one crop into `frame` itself; returns the frame box touched and its alpha."""
    h, w = frame.shape[:2]
    size = face.shape[0]
    inverse = invert_affine(matrix)
    corners = transform_points(inverse, np.array([[0, 0], [size, 0], [0, size], [size, size]]))
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    box = (slice(y0, max(y1, y0)), slice(x0, max(x1, x0)))
    if x1 <= x0 or y1 <= y0:
        return box, np.zeros((0, 0), dtype=np.float32)
    roi = inverse.copy()
    roi[:, 2] -= (x0, y0)  # crop -> the frame box only: the rest of the frame is not touched
    scale = float(np.sqrt(abs(np.linalg.det(inverse[:, :2]))))
    flags = cv2.INTER_CUBIC if scale > 1.0 else cv2.INTER_LINEAR
    dsize = (x1 - x0, y1 - y0)
    warped_face = cv2.warpAffine(face, roi, dsize, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask.astype(np.float32), roi, dsize, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    alpha = np.clip(alpha, 0.0, 1.0)
    alpha[alpha < _ALPHA_FLOOR] = 0.0
    touched = alpha > 0
    region = frame[box]
    a = alpha[touched][:, None]
    blended = region[touched].astype(np.float32) * (1.0 - a) + warped_face[touched] * a
    region[touched] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return box, alpha


def _check_swapped(faces: np.ndarray, masks: np.ndarray | None, n: int, size: int
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    faces = np.asarray(faces)
    if faces.shape != (n, size, size, 3) or faces.dtype != np.uint8:
        raise ValueError(f"swapper returned faces {faces.shape} {faces.dtype}, expected "
                         f"({n}, {size}, {size}, 3) uint8")
    if masks is not None:
        masks = np.asarray(masks, dtype=np.float32)
        if masks.shape != (n, size, size):
            raise ValueError(f"swapper returned masks {masks.shape}, expected ({n}, {size}, "
                             f"{size})")
    return faces, masks


def _swap_chunk(frames: np.ndarray, landmarks: np.ndarray, swapper: SwapFn, crop_size: int,
                coverage: float, blend: BlendSettings) -> np.ndarray:
    out = frames.copy()
    usable = np.flatnonzero(usable_landmarks(landmarks))
    if not len(usable):
        return out
    aligned = align_faces(frames[usable], landmarks[usable], crop_size, coverage)
    faces, masks = swapper(aligned.crops)
    faces, masks = _check_swapped(faces, masks, len(usable), crop_size)
    crop_lms = aligned.crop_landmarks(landmarks[usable])
    for k, t in enumerate(usable):
        mask, region = face_mask(blend, crop_lms[k], None if masks is None else masks[k],
                                 crop_size)
        face = match_colour(faces[k], aligned.crops[k], region, blend.colour)
        _paste_in_place(out[t], face, mask, aligned.matrices[k])
    return out


def swap_chunks(chunks: Iterable[tuple[np.ndarray, np.ndarray]], swapper: SwapFn,
                crop_size: int, coverage: float, blend: BlendSettings
                ) -> Iterator[np.ndarray]:
    """Stream version of `swap_frames`: one converted chunk per (frames, landmarks) chunk."""
    for frames, landmarks in chunks:
        frames, landmarks = _check_inputs(frames, landmarks)
        yield _swap_chunk(frames, landmarks, swapper, int(crop_size), coverage, blend)


def _check_inputs(frames: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (len(frames), 5, 2):
        raise ValueError(f"landmarks must be ({len(frames)}, 5, 2) for {len(frames)} frames, "
                         f"got shape {lm.shape}")
    return frames, lm


def swap_frames(frames: np.ndarray, landmarks: np.ndarray, swapper: SwapFn, crop_size: int,
                coverage: float, blend: BlendSettings, batch_size: int = DEFAULT_BATCH
                ) -> np.ndarray:
    """Swap the face of every frame (T, H, W, 3) uint8; same frame count and size out.

    `landmarks` (T, 5, 2) are MTCNN's five points per frame, interpolated over frames where
    the detector missed (`FaceTrack.interpolate`). A frame whose landmarks are still unusable
    (NaN, or eyes under `align.MIN_IOD_PX` apart) is passed through unchanged. `swapper` gets
    aligned crops `batch_size` frames at a time (`align_faces` at `crop_size`, `coverage`).
    """
    frames, lm = _check_inputs(frames, landmarks)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    step = int(batch_size)
    chunks = ((frames[i:i + step], lm[i:i + step]) for i in range(0, len(frames), step))
    out = np.empty_like(frames)
    start = 0
    for converted in swap_chunks(chunks, swapper, crop_size, coverage, blend):
        out[start:start + len(converted)] = converted
        start += len(converted)
    return out

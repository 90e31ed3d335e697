"""What the training recipe changes, in one picture: the same target frame converted by each
model trained on the same couple with each recipe (`dfmnist.faceswap.training`), side by side.

Rows are recipes, columns models; a first column shows the target frame as it was. Each tile
is the face's square (the aligned crop's footprint in the frame, upright), so the swapped
face, its blend edge and its colour are what one compares.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import polars as pl

from dfmnist.faceswap.align import alignment_matrices, invert_affine, usable_landmarks
from dfmnist.faceswap.blend import BlendSettings
from dfmnist.faceswap.convert import swap_frames
from dfmnist.faceswap.pairs import couple_members, target_clips
from dfmnist.faceswap.stage import clip_track, identity_tracks
from dfmnist.faceswap.training import load_swapper
from dfmnist.storage.store import Store
from dfmnist.storage.video import read_video

TILE = 160
LABEL = 22  # pixels of caption above each tile and left of each row


def face_tile(frame: np.ndarray, landmarks: np.ndarray, crop_size: int, coverage: float,
              size: int = TILE) -> np.ndarray:
    """The aligned crop's square of `frame` (H, W, 3) around the face of `landmarks` (5, 2),
    cut upright (the crop's centre and side, no roll) and resized to `size`."""
    matrix = alignment_matrices(landmarks[None], crop_size, coverage)[0]
    inverse = invert_affine(matrix[None])[0]
    centre = inverse @ np.array([crop_size / 2, crop_size / 2, 1.0])
    side = crop_size * float(np.sqrt(abs(np.linalg.det(inverse[:, :2]))))
    scale = size / side
    upright = np.array([[scale, 0.0, size / 2 - scale * centre[0]],
                        [0.0, scale, size / 2 - scale * centre[1]]])
    return cv2.warpAffine(frame, upright, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


def _captioned(tile: np.ndarray, text: str) -> np.ndarray:
    out = np.full((tile.shape[0] + LABEL, tile.shape[1], 3), 255, np.uint8)
    out[LABEL:] = tile
    cv2.putText(out, text, (4, LABEL - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    return out


def _row_label(row: np.ndarray, text: str) -> np.ndarray:
    side = np.full((row.shape[0], LABEL, 3), 255, np.uint8)
    label = np.full((LABEL, row.shape[0], 3), 255, np.uint8)
    cv2.putText(label, text, (LABEL, LABEL - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                cv2.LINE_AA)
    side[:] = np.rot90(label)  # read bottom to top
    return np.concatenate([side, row], axis=1)


def recipe_grid(couple: str, trained: list[dict], faces: dict[str, dict],
                sources: pl.DataFrame, convert: dict, store: Store) -> np.ndarray:
    """The figure (H, W, 3) uint8 RGB. `trained`: checkpoint summaries of the couple
    (`stage.train_couple`'s, or ``{"error": ...}``), each with its "recipe" and "model";
    `faces`: identity -> faces summary; `convert`: crop_size, coverage and blend settings.
    The frame is the middle one of the first identity's first target clip, swapped into the
    second identity's face."""
    target, _ = couple_members(couple)
    clips = target_clips(sources, target, 1)
    if clips.is_empty():
        raise ValueError(f"identity {target} has no selected clip to convert")
    clip = clips.row(0, named=True)
    video = read_video(clip["path"])
    track = clip_track(identity_tracks(store, faces[target]["key"]), clip["clip_id"])
    landmarks = track.interpolate().landmarks
    usable = np.flatnonzero(usable_landmarks(landmarks))
    if not usable.size:
        raise ValueError(f"no face in {clip['clip_id']} to convert")
    index = int(usable[len(usable) // 2])
    frame, points = video.frames[index:index + 1], landmarks[index:index + 1]
    crop_size, coverage = int(convert["crop_size"]), float(convert["coverage"])
    blend = BlendSettings(**convert["blend"])
    tile_of = {}
    for item in trained:
        if "error" in item:
            tile = np.full((TILE, TILE, 3), 200, np.uint8)
        else:
            swapper = load_swapper(Path(item["checkpoint"]), side="b")
            swapped = swap_frames(frame, points, swapper, crop_size, coverage, blend)[0]
            tile = face_tile(swapped, points[0], crop_size, coverage)
        tile_of[(item["recipe"], item["model"])] = tile
    recipes = list(dict.fromkeys(item["recipe"] for item in trained))
    models = list(dict.fromkeys(item["model"] for item in trained))
    original = _captioned(face_tile(frame[0], points[0], crop_size, coverage), "target")
    rows = []
    for recipe in recipes:
        tiles = [original] + [_captioned(tile_of[(recipe, m)], m) for m in models]
        rows.append(_row_label(np.concatenate(tiles, axis=1), recipe))
    return np.concatenate(rows, axis=0)


def write_png(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")

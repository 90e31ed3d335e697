"""Per-frame face annotations for detectors that read them: landmarks and a face-region mask.

For every extracted frame at one size, MTCNN's five landmarks (left eye, right eye, nose,
mouth left, mouth right; (5, 2) float32 pixel coordinates of that frame) go to
`{frame:04d}.landmarks.npy`, and a binary mask of the animated face region to
`{frame:04d}.mask.png`, all members of one tar per shard (`annotations.tar`, WebDataset
layout, each video's members under its annotations key, dfmnist.storage.tars): the DeepfakeBench
export writes them out as the files its loader reads.

The mask is the filled ellipse inscribed in MTCNN's face box of that frame (brows to chin,
cheek to cheek), joined with the convex hull of the five landmarks: the face that an
animation model moves. It is an outline of the manipulated region, not a per-pixel difference
(a generator such as FOMM re-renders the whole frame, background included). Only fakes use
it; reals get an all-zero mask (`blank_mask`), nothing having been changed.

Frames where MTCNN finds no face take the geometry of their neighbours in the same video
(linear, as the driving tracks do); a video without any detected face falls back to the
standard five-point face template (ArcFace's 112x112 layout) scaled to the frame, and the
item's metadata says which frames were detected, filled or templated.
"""

from __future__ import annotations

import io
import logging

import cv2
import numpy as np
import polars as pl

from dfmnist.storage.store import Store, content_key
from dfmnist.storage.tars import Compute, ensure_shard, shard_samples
from dfmnist.targets.frames import read_frames
from dfmnist.vision.faces import FaceDetector, FaceTrack, track_from_detections

log = logging.getLogger(__name__)

ANNOTATIONS = "face_annotations"
BLANK = "blank_mask"
#: The file of an annotations item (one per shard).
ANNOTATIONS_TAR = "annotations.tar"
#: Bump when the item's layout changes, so stored annotations are rebuilt.
LAYOUT = "webdataset-shard-1"


def mask_member(index: int) -> str:
    return f"{int(index):04d}.mask.png"


def landmarks_member(index: int) -> str:
    return f"{int(index):04d}.landmarks.npy"

#: ArcFace's five-point template in a 112x112 aligned face (eyes, nose, mouth corners).
TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]])
#: The face box around that template (the same 112x112 frame), for the template's mask.
TEMPLATE_BOX_112 = np.array([18.0, 22.0, 94.0, 110.0])


def face_mask(box: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """uint8 (size, size) mask, 255 inside the face: box-inscribed ellipse + landmark hull."""
    mask = np.zeros((size, size), np.uint8)
    x0, y0, x1, y1 = (float(v) for v in box)
    centre = (round((x0 + x1) / 2), round((y0 + y1) / 2))
    axes = (max(1, round((x1 - x0) / 2)), max(1, round((y1 - y0) / 2)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, thickness=-1)
    hull = cv2.convexHull(np.round(landmarks).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    return mask


def face_geometry(track: FaceTrack, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Boxes (T, 4) and landmarks (T, 5, 2) for every frame, and how each was obtained."""
    n = len(track)
    if track.found.any():
        filled = track.interpolate()
        how = ["detected" if f else "filled" for f in track.found]
        return filled.boxes, filled.landmarks, how
    scale = size / 112.0
    boxes = np.repeat((TEMPLATE_BOX_112 * scale)[None], n, axis=0)
    landmarks = np.repeat((TEMPLATE_112 * scale)[None], n, axis=0)
    return boxes, landmarks, ["template"] * n


def annotate_shard(frames: pl.DataFrame, size: int, detector: FaceDetector,
                   settings: dict, store: Store) -> pl.DataFrame:
    """Annotations for each row of a frames table (video_id, variant, key, frames_tar,
    frames_prefix, frame_indices) at `size`, one store item for the shard; `settings` are the
    detector's (they enter each video's key, which is also its sample key in the tar)."""
    rows = list(frames.iter_rows(named=True))
    identity = detector.identity()  # the detections' grid and float platform
    keys = [content_key(ANNOTATIONS, video["key"], size, settings, LAYOUT, identity)
            for video in rows]

    def annotate(video: dict) -> Compute:
        def compute() -> tuple[list[tuple[str, bytes]], dict]:
            indices = list(video["frame_indices"])
            images = read_frames(video["frames_tar"], video["frames_prefix"], indices, size)
            track = track_from_detections(detector.detect(images),
                                          min_prob=float(settings["min_prob"]))
            boxes, landmarks, how = face_geometry(track, size)
            if "template" in how:
                log.warning("%s/%s: no face found in any frame; template landmarks",
                            video["variant"], video["video_id"])
            log.info("%s/%s: %d frames annotated", video["variant"], video["video_id"],
                     len(indices))
            members = []
            for j, box, points in zip(indices, boxes, landmarks, strict=True):
                npy = io.BytesIO()
                np.save(npy, points.astype(np.float32))
                members.append((landmarks_member(j), npy.getvalue()))
                members.append((mask_member(j),
                                cv2.imencode(".png", face_mask(box, points, size))[1].tobytes()))
            return members, {"video_id": video["video_id"], "size": size, "indices": indices,
                             "landmarks": "mtcnn-5", "how": how}
        return compute

    shard, tar = ensure_shard(store, ANNOTATIONS, LAYOUT, ANNOTATIONS_TAR,
                              {key: annotate(video) for key, video in zip(keys, rows,
                                                                          strict=True)})
    samples = shard_samples(store, ANNOTATIONS, shard)
    log.info("%d videos annotated in %s", len(rows), tar)
    return pl.DataFrame(
        [{"video_id": video["video_id"], "variant": video["variant"], "key": key,
          "annotations_tar": str(tar), "annotations_prefix": key,
          "detected": sum(h == "detected" for h in samples[key]["how"])}
         for key, video in zip(keys, rows, strict=True)],
        schema={"video_id": pl.String, "variant": pl.String, "key": pl.String,
                "annotations_tar": pl.String, "annotations_prefix": pl.String,
                "detected": pl.Int64})


def blank_mask(size: int, store: Store) -> str:
    """The path of one all-zero mask at `size` in the store (every real frame links to it)."""
    key = content_key(BLANK, size)
    if not store.has(BLANK, key):
        with store.build(BLANK, key, {"size": size}) as tmp:
            cv2.imwrite(str(tmp / "mask.png"), np.zeros((size, size), np.uint8))
    return str(store.item_dir(BLANK, key) / "mask.png")

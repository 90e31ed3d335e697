"""The face-swap stage's three jobs, each through the store: an identity's aligned faces, a
couple's model training, and the conversion of the couple's target clips.

Store items: `swap_faces` (an identity's face track per clip and its training crops, keyed by
the clips' bytes and the face and crop settings), `swap_model` (a trained checkpoint, keyed by
both identities' faces items, the model, its width and its training settings) and `fake` (one
converted clip, keyed by the checkpoint, the clip's bytes and the conversion settings). A job
reruns when Snakemake says so; inside it only items missing from the store compute.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import polars as pl

from dfmnist.faceswap.align import DEFAULT_COVERAGE
from dfmnist.faceswap.pairs import FACE_SWAP, couple_members, fake_name, target_clips
from dfmnist.numerics import float_platform
from dfmnist.storage.store import Store, content_key
from dfmnist.storage.video import LOSSLESS_RGB, read_video, write_video
from dfmnist.targets.frames import uniform_indices
from dfmnist.vision.faces import FaceTrack

log = logging.getLogger(__name__)

FACES, MODEL, FAKE = "swap_faces", "swap_model", "fake"
CROPS, CROP_LANDMARKS = "crops.npy", "crop_landmarks.npy"
TRACKS, CHECKPOINT = "tracks.parquet", "checkpoint.pt"
#: Bump when a faces item's layout changes (2: each crop's five landmarks in its pixels).
FACES_LAYOUT = 2

#: One row per converted clip (the face-swap part of the accepted fakes).
SWAP_SCHEMA = {
    "candidate_id": pl.String, "action": pl.String, "rank": pl.Int64, "source_id": pl.String,
    "identity": pl.String, "take": pl.String, "key": pl.String, "video_path": pl.String,
    "sha256": pl.String, "computed": pl.Boolean, "device": pl.String, "generator": pl.String,
    "model": pl.String, "donor": pl.String, "weights_sha256": pl.String,
}
#: One row per clip that could not be converted, with the reason.
SWAP_FAILURE_SCHEMA = {"candidate_id": pl.String, "identity": pl.String, "donor": pl.String,
                       "model": pl.String, "source_id": pl.String, "error": pl.String}


class NoFaces(ValueError):
    """An identity of a couple has no face crops to train on (its clips are faceless or none
    was selected): the couple's fakes become failure rows, the rest of the build goes on."""


def faces_key(clips: pl.DataFrame, crops: dict, faces: dict, detector: dict) -> str:
    """An identity's faces item: its clips' bytes, the crop settings, MTCNN's settings and
    the detector's identity (its grid and float platform, `FaceDetector.identity`)."""
    stamps = sorted(zip(clips["clip_id"], clips["sha256"], strict=True))
    return content_key(FACES, FACES_LAYOUT, stamps, crops, faces, detector)


def identity_faces(clips: pl.DataFrame, detector, crops: dict, faces: dict, store: Store
                   ) -> dict:
    """Track the face through every frame of an identity's clips and align about
    `per_identity` training crops (frames where MTCNN found the face, spread over the clips).

    `clips`: rows (clip_id, path, sha256) of the identity's selected sources. Returns the
    faces item's summary: key, crops count, clips tracked and the clips without any face."""
    from dfmnist.faceswap.align import align_faces

    key = faces_key(clips, crops, faces, detector.identity())
    if not store.has(FACES, key):
        tracks, crop_batches, landmark_batches, faceless = [], [], [], []
        # the crops are spread evenly over the clips, one clip in memory at a time
        per_clip = -(-int(crops["per_identity"]) // max(clips.height, 1))
        for clip_id, path in clips.sort("clip_id").select("clip_id", "path").iter_rows():
            frames = read_video(path).frames
            pick = uniform_indices(len(frames), per_clip)
            track = detector.track(frames, min_prob=faces["min_prob"])
            tracks.append(track.to_frame().with_columns(clip_id=pl.lit(clip_id)))
            usable = pick[track.found[pick]]
            if not track.found.any():
                faceless.append(clip_id)
            if usable.size:
                aligned = align_faces(frames[usable], track.landmarks[usable],
                                      int(crops["crop_size"]), float(crops["coverage"]))
                crop_batches.append(aligned.crops)
                landmark_batches.append(aligned.crop_landmarks(track.landmarks[usable]))
            log.info("%s: %d frames, face in %d, %d training crops", clip_id, len(frames),
                     int(track.found.sum()), usable.size)
        size = int(crops["crop_size"])
        all_crops = (np.concatenate(crop_batches) if crop_batches
                     else np.zeros((0, size, size, 3), np.uint8))
        all_landmarks = (np.concatenate(landmark_batches) if landmark_batches
                         else np.zeros((0, 5, 2)))
        meta = {"clips": sorted(clips["clip_id"]), "crops": len(all_crops),
                "faceless": faceless}
        with store.build(FACES, key, meta) as tmp:
            np.save(tmp / CROPS, all_crops)
            np.save(tmp / CROP_LANDMARKS, all_landmarks)
            if tracks:
                table = pl.concat(tracks)
            else:  # an identity without a selected clip has no tracks (its couple cannot train)
                empty = FaceTrack(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)),
                                  np.zeros(0, bool)).to_frame()
                table = empty.with_columns(clip_id=pl.lit("")).clear()
            table.write_parquet(tmp / TRACKS)
    meta = store.meta(FACES, key)
    # what is made from the item is keyed by its bytes: MTCNN's tracks and the crops aligned
    # by them are float results (dfmnist.vision.faces, dfmnist.numerics)
    return {"key": key, "crops": meta["crops"], "clips": meta["clips"],
            "faceless": meta["faceless"], "crops_sha256": store.file_sha256(FACES, key, CROPS),
            "landmarks_sha256": store.file_sha256(FACES, key, CROP_LANDMARKS),
            "tracks_sha256": store.file_sha256(FACES, key, TRACKS)}


def load_crops(store: Store, key: str) -> tuple[np.ndarray, np.ndarray]:
    """An identity's training crops (N, S, S, 3) uint8 and their five landmarks (N, 5, 2) in
    crop pixels."""
    folder = store.item_dir(FACES, key)
    return np.load(folder / CROPS), np.load(folder / CROP_LANDMARKS)


def identity_tracks(store: Store, key: str) -> pl.DataFrame:
    """Every frame's face of an identity's clips (the faces item's tracks table)."""
    return pl.read_parquet(store.item_dir(FACES, key) / TRACKS)


def clip_track(tracks: pl.DataFrame, clip_id: str) -> FaceTrack:
    return FaceTrack.from_frame(tracks.filter(pl.col("clip_id") == clip_id).sort("frame"))


def model_key(model: str, width: float, faces_a: dict, faces_b: dict, settings: dict,
              numerics: dict) -> str:
    """A checkpoint's key: the crops it was trained on and their landmarks (their bytes), how
    (the recipe included; not how often it was
    saved), and where: float32 training's bits depend on the float platform (threads and
    instruction set change the gradients' sums), which `numerics` describes."""
    science = {k: v for k, v in settings.items() if k != "checkpoint_every"}
    return content_key(MODEL, model, float(width), faces_a["crops_sha256"],
                       faces_b["crops_sha256"], faces_a["landmarks_sha256"],
                       faces_b["landmarks_sha256"], science, numerics)


def train_couple(model: str, width: float, faces_a: dict, faces_b: dict, settings: dict,
                 store: Store, partial_dir: Path, device: str = "cpu",
                 coverage: float = DEFAULT_COVERAGE) -> dict:
    """Train `model` on the couple's crops unless the store holds the checkpoint. Progress is
    saved to `partial_dir/` every `checkpoint_every` iterations, so a killed job resumes where
    it stopped; the finished checkpoint moves into the store. `coverage`: the crops' (the
    faces items' keys hold it)."""
    from dfmnist.faceswap.training import TrainSettings, train_swap

    numerics = float_platform(device)
    key = model_key(model, width, faces_a, faces_b, settings, numerics)
    computed = not store.has(MODEL, key)
    if computed:
        for side, item in (("A", faces_a), ("B", faces_b)):
            if item["crops"] == 0:
                raise NoFaces(f"identity {side} has no face crops to train on (clips: "
                              f"{', '.join(item['clips']) or 'none selected'})")
        # progress is named by everything but the iteration count, so a job killed mid-run
        # resumes even when `iterations` was raised since (a finished training removes its
        # progress; a count lowered below a killed run's progress is refused by train_swap)
        resume = model_key(model, width, faces_a, faces_b, {**settings, "iterations": None},
                           numerics)
        partial = Path(partial_dir) / f"{resume}.pt"
        partial.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        crops_a, landmarks_a = load_crops(store, faces_a["key"])
        crops_b, landmarks_b = load_crops(store, faces_b["key"])
        history = train_swap(model, width, crops_a, crops_b, TrainSettings(**settings),
                             partial, log=log.info, device=device, coverage=coverage,
                             landmarks_a=landmarks_a, landmarks_b=landmarks_b)
        meta = {"model": model, "width": width, "settings": settings, "device": device,
                "numerics": numerics,
                "faces": [faces_a["key"], faces_b["key"]], "seconds": time.perf_counter() - start,
                "resumed_from": history.get("resumed_from", 0),
                "losses": [float(x) for x in history.get("losses", [])]}
        with store.build(MODEL, key, meta) as tmp:
            os.link(partial, tmp / CHECKPOINT)  # the partial stays until the item is in
        partial.unlink()
    meta = store.meta(MODEL, key)
    losses = meta.get("losses") or [float("nan")]
    return {"key": key, "model": model, "computed": computed, "device": meta["device"],
            "checkpoint": str(store.item_dir(MODEL, key) / CHECKPOINT),
            "sha256": store.file_sha256(MODEL, key, CHECKPOINT), "first_loss": losses[0],
            "last_loss": losses[-1], "iterations": meta["settings"]["iterations"],
            "resumed_from": meta.get("resumed_from", 0)}


def convert_couple(couple: str, trained: dict, faces: dict[str, dict], sources: pl.DataFrame,
                   convert: dict, store: Store, device: str = "cpu"
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Swap the faces of both directions of a couple: each identity's target clips get the
    other's face (decoder of the other side). `faces`: identity -> its faces summary;
    `convert`: scenes, crop_size, coverage and blend settings. One clip that fails is a
    failures row; the others go on."""
    from dfmnist.faceswap.blend import BlendSettings
    from dfmnist.faceswap.convert import swap_frames
    from dfmnist.faceswap.training import load_swapper

    a, b = couple_members(couple)
    model = trained["model"]
    looks = {k: v for k, v in convert.items() if k != "scenes"}  # what changes a fake's pixels
    numerics = float_platform(device)  # the decoders' float32 kernels decide the bytes too
    rows, failures = [], []
    for target, donor, side in ((a, b, "b"), (b, a, "a")):
        swapper = tracks = None  # loaded once per direction, when a clip needs converting
        for clip in target_clips(sources, target, int(convert["scenes"])).iter_rows(named=True):
            name = fake_name(target, donor, clip["clip_id"], model)
            candidate = f"{model}/{name.removesuffix('.mp4')}"
            key = content_key(FAKE, FACE_SWAP, trained.get("key"), side, clip["sha256"],
                              faces[target].get("tracks_sha256"), looks, numerics)
            computed = not store.has(FAKE, key)
            try:
                if "error" in trained:  # the couple's model could not train
                    raise NoFaces(trained["error"])
                if clip["clip_id"] in faces[target]["faceless"]:
                    raise NoFaces(f"no face found in any frame of {clip['clip_id']}")
                if computed:
                    start = time.perf_counter()
                    swapper = swapper or load_swapper(Path(trained["checkpoint"]), side=side,
                                                      device=device)
                    video = read_video(clip["path"])
                    if tracks is None:
                        tracks = identity_tracks(store, faces[target]["key"])
                    track = clip_track(tracks, clip["clip_id"])
                    frames = swap_frames(video.frames, track.interpolate().landmarks, swapper,
                                         int(convert["crop_size"]), float(convert["coverage"]),
                                         BlendSettings(**convert["blend"]))
                    meta = {"candidate_id": candidate, "device": device, "name": name,
                            "generator": {"name": FACE_SWAP, "model": model,
                                          "weights_sha256": trained["sha256"]}}
                    with store.build(FAKE, key, meta) as tmp:
                        write_video(tmp / name, frames, video.fps, LOSSLESS_RGB)
                    log.info("converted %s (%d frames) in %.1fs", name, len(frames),
                             time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001  (one clip never costs the couple)
                log.error("FAILED %s: %s: %s", name, type(exc).__name__, exc)
                failures.append({"candidate_id": candidate, "identity": target, "donor": donor,
                                 "model": model, "source_id": clip["clip_id"],
                                 "error": f"{type(exc).__name__}: {exc}"})
                continue
            stored = store.meta(FAKE, key)
            rows.append({
                "candidate_id": candidate, "action": FACE_SWAP, "rank": None,
                "source_id": clip["clip_id"], "identity": target, "take": None, "key": key,
                "video_path": str(store.item_dir(FAKE, key) / stored["name"]),
                "sha256": store.file_sha256(FAKE, key, stored["name"]), "computed": computed,
                "device": stored.get("device", device), "generator": FACE_SWAP, "model": model,
                "donor": donor, "weights_sha256": trained["sha256"],
            })
    return (pl.DataFrame(rows, schema=SWAP_SCHEMA),
            pl.DataFrame(failures, schema=SWAP_FAILURE_SCHEMA))

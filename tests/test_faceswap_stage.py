"""The face-swap stage's jobs when inputs are bad: an identity without faces, a faceless
target clip, a missing checkpoint. Each becomes a failure row with its reason; nothing crashes
and the other clips go on. Real MTCNN on a real clip and on a real faceless video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dfmnist.faceswap.stage import NoFaces, convert_couple, identity_faces, train_couple
from dfmnist.numerics import float_platform
from dfmnist.storage.files import sha256_file
from dfmnist.storage.store import Store
from dfmnist.storage.video import read_video, write_video
from dfmnist.vision.faces import FaceDetector

CROPS = {"crop_size": 64, "coverage": 0.75, "per_identity": 4}
FACES = {"min_prob": 0.9, "min_face_size": 20}
CONVERT = {"scenes": 1, "crop_size": 64, "coverage": 0.75,
           "blend": {"mask": "extended", "erode": 0.0, "blur": 0.02, "colour": "avg_color"}}


@pytest.fixture(scope="module")
def clips(tmp_path_factory, carphone_path) -> pl.DataFrame:
    """Identity `talker`: 12 frames of the carphone clip; identity `wall`: a faceless video."""
    root = tmp_path_factory.mktemp("clips")
    talker = read_video(carphone_path, max_frames=12)
    rng = np.random.default_rng(0)
    wall = rng.integers(90, 110, size=(12, 144, 176, 3), dtype=np.uint8)
    rows = []
    for identity, frames in (("talker", talker.frames), ("wall", wall)):
        path = root / identity / "v" / "00001.mp4"
        path.parent.mkdir(parents=True)
        write_video(path, frames, 25.0)
        rows.append({"clip_id": f"{identity}/v/00001", "identity": identity, "selected": True,
                     "identity_rank": 1, "path": str(path), "sha256": sha256_file(path)})
    return pl.DataFrame(rows)


def test_no_faces_means_no_training_and_failure_rows(clips, tmp_path: Path):
    store = Store(tmp_path / "store")
    detector = FaceDetector(min_face_size=20)
    faces = {i: identity_faces(clips.filter(pl.col("identity") == i), detector, CROPS, FACES,
                               store) for i in ("talker", "wall")}
    assert faces["talker"]["crops"] == 4 and faces["wall"]["crops"] == 0
    assert faces["wall"]["faceless"] == ["wall/v/00001"]
    # an identity with no selected clip at all is an item too (no crash on zero clips)
    nobody = identity_faces(clips.clear(), detector, CROPS, FACES, store)
    assert nobody["crops"] == 0 and nobody["clips"] == []
    settings = {"iterations": 2, "batch_size": 2, "lr": 1e-4, "seed": 0, "checkpoint_every": 1}
    with pytest.raises(NoFaces, match="identity B has no face crops"):
        train_couple("lightweight", 0.125, faces["talker"], faces["wall"], settings, store,
                     tmp_path / "partial")
    # what the training job records, and what conversion makes of it: a row per target clip
    trained = {"model": "lightweight", "error": "identity B has no face crops to train on"}
    fakes, failures = convert_couple("talker+wall", trained, faces, clips, CONVERT, store)
    assert fakes.height == 0
    assert sorted(failures["source_id"]) == ["talker/v/00001", "wall/v/00001"]
    assert failures["error"].str.contains("no face crops").all()


def test_one_bad_clip_never_costs_the_others(clips, tmp_path: Path):
    store = Store(tmp_path / "store")
    detector = FaceDetector(min_face_size=20)
    faces = {i: identity_faces(clips.filter(pl.col("identity") == i), detector, CROPS, FACES,
                               store) for i in ("talker", "wall")}
    missing = {"model": "lightweight", "key": "0" * 64, "sha256": "0" * 64,
               "checkpoint": str(tmp_path / "gone.pt")}
    fakes, failures = convert_couple("talker+wall", missing, faces, clips, CONVERT, store)
    errors = dict(zip(failures["source_id"], failures["error"], strict=True))
    assert "no face found in any frame of wall/v/00001" in errors["wall/v/00001"]
    assert "gone.pt" in errors["talker/v/00001"]  # the checkpoint vanished: a row, no crash
    assert fakes.height == 0 and failures.height == 2



def test_a_killed_training_resumes_and_ends_where_a_straight_one_does(clips, astronaut,
                                                                     tmp_path: Path):
    """A job killed after saving progress resumes from it; the checkpoint it publishes equals
    an uninterrupted training's, and the progress file is gone once the item is in the store."""
    import cv2
    import torch

    from dfmnist.faceswap.stage import load_crops, model_key
    from dfmnist.faceswap.training import TrainSettings, train_swap

    still = np.repeat(cv2.resize(astronaut, (176, 176))[None], 6, axis=0)
    path = tmp_path / "astro" / "v" / "00001.mp4"
    path.parent.mkdir(parents=True)
    write_video(path, still, 25.0)
    astro = pl.DataFrame([{"clip_id": "astro/v/00001", "identity": "astro", "selected": True,
                           "identity_rank": 1, "path": str(path), "sha256": sha256_file(path)}])
    detector = FaceDetector(min_face_size=20)
    settings = {"iterations": 4, "batch_size": 2, "lr": 1e-3, "seed": 0, "checkpoint_every": 2}
    weights = {}
    for run in ("straight", "killed"):
        store = Store(tmp_path / run / "store")
        a = identity_faces(clips.filter(pl.col("identity") == "talker"), detector, CROPS, FACES,
                           store)
        b = identity_faces(astro, detector, CROPS, FACES, store)
        partial = tmp_path / run / "partial"
        if run == "killed":  # what a job killed after its save at iteration 2 leaves behind
            progress = model_key("lightweight", 0.125, a, b, {**settings, "iterations": None},
                                 float_platform("cpu"))
            partial.mkdir(parents=True)
            (crops_a, marks_a), (crops_b, marks_b) = (load_crops(store, a["key"]),
                                                      load_crops(store, b["key"]))
            train_swap("lightweight", 0.125, crops_a, crops_b,
                       TrainSettings(**{**settings, "iterations": 2}), partial / f"{progress}.pt",
                       coverage=CROPS["coverage"], landmarks_a=marks_a, landmarks_b=marks_b)
        trained = train_couple("lightweight", 0.125, a, b, settings, store, partial,
                               coverage=CROPS["coverage"])
        assert trained["resumed_from"] == (2 if run == "killed" else 0)
        assert not list(partial.glob("*.pt"))  # published, so the progress file is gone
        weights[run] = torch.load(trained["checkpoint"], weights_only=False)["model"]
    assert weights["straight"].keys() == weights["killed"].keys()
    straight, killed = weights["straight"], weights["killed"]
    assert all(torch.equal(straight[k], killed[k]) for k in straight)
    # conversion with that model: a target clip damaged since (text where the video was) is a
    # failure row with the reader's reason; the other direction's clip is converted
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video\n")
    sources = pl.concat([clips.filter(pl.col("identity") == "talker"),
                         astro.with_columns(path=pl.lit(str(broken)))])
    fakes, failures = convert_couple("talker+astro", trained, {"talker": a, "astro": b},
                                     sources, CONVERT, store)
    assert fakes["source_id"].to_list() == ["talker/v/00001"]
    assert read_video(fakes["video_path"][0]).frames.shape == (12, 144, 176, 3)
    assert failures["source_id"].to_list() == ["astro/v/00001"]
    assert "not a video file" in failures["error"][0]

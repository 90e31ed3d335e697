"""The seed report's detection experiment: the original's face crops from MTCNN boxes, the
report's alterations, the original's score conventions, and the `published_scores` target on
the tiny demo with published-format files."""

from __future__ import annotations

import cv2
import numpy as np
import polars as pl
import pytest
import torch
import yaml
from scipy.special import expit

from dfmnist.train.published.alterations import ALTERATIONS, alter_frame, alter_video, moved_boxes
from dfmnist.train.published.crops import (
    margin_box,
    published_batch,
    published_crop,
    spread_indices,
    square_box,
)
from dfmnist.train.published.scores import FUSION, published_table, score_videos, with_fusion
from dfmnist.vision.faces import FaceDetector

from published_weights import face_batch, random_published, save_original


@pytest.fixture(scope="module")
def face_frame(astronaut) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 256x256 face frame as the dataset stores them, with MTCNN's box and landmarks."""
    frame = cv2.resize(astronaut[0:400, 60:460], (256, 256), interpolation=cv2.INTER_AREA)
    track = FaceDetector().track(frame[None])
    assert track.found[0]
    return frame, track.boxes[0], track.landmarks[0]


def test_margin_follows_the_original_face_extractor():
    # offset = round(0.2 x height): 2 x offset above, offset on the other sides, clamped
    box = np.array([100.0, 80.0, 160.0, 150.0])  # height 70: offset 14
    assert margin_box(box, 256, 256).tolist() == [86.0, 52.0, 174.0, 164.0]
    assert margin_box(np.array([5.0, 10.0, 250.0, 240.0]), 256, 256).tolist() == [
        0.0, 0.0, 256.0, 256.0]
    # squared around the centre with side max(w, h), shifted to stay inside the frame
    assert square_box(np.array([86.0, 52.0, 174.0, 164.0]), 256, 256).tolist() == [
        74, 52, 186, 164]
    assert square_box(np.array([0.0, 0.0, 40.0, 100.0]), 256, 256).tolist() == [0, 0, 100, 100]
    assert square_box(np.array([0.0, 0.0, 300.0, 256.0]), 256, 256).tolist() == [0, 0, 256, 256]


def test_the_crop_is_the_face_at_224(face_frame):
    frame, box, _ = face_frame
    crop = published_crop(frame, box)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    # the face fills the crop's middle: MTCNN finds it there again, about as wide as the box
    # over the widened side
    again = FaceDetector().track(crop[None])
    assert again.found[0]
    x0, y0, x1, y1 = again.boxes[0]
    assert 60 < (x0 + x1) / 2 < 164 and 60 < (y0 + y1) / 2 < 180
    batch = published_batch(np.stack([frame, frame]), np.stack([box, box]))
    assert batch.shape == (2, 3, 224, 224) and batch.dtype == torch.float32
    assert -2.2 < float(batch.min()) and float(batch.max()) < 2.7  # ImageNet-normalised


def test_up_to_32_frames_evenly_spread():
    assert spread_indices(10).tolist() == list(range(10))
    picked = spread_indices(100)
    assert len(picked) == 32 and picked[0] == 0 and picked[-1] == 99
    assert np.all(np.diff(picked) > 0)


def test_each_alteration_changes_the_frame_as_named(face_frame):
    frame, _, landmarks = face_frame
    rng = np.random.default_rng(0)
    assert alter_frame(frame, "downscale", 2, rng).shape == (128, 128, 3)
    rotated = alter_frame(frame, "rotation", 30, rng)
    assert rotated.shape == frame.shape and rotated[0, 0].sum() == 0  # black corner
    blurred = alter_frame(frame, "gaussian_blur", 2, rng)
    assert np.abs(np.diff(blurred.astype(float), axis=1)).mean() < np.abs(
        np.diff(frame.astype(float), axis=1)).mean()
    noisy = alter_frame(frame, "random_noise", 10, rng).astype(float)
    assert 6 < (noisy - frame).std() < 11
    covered = alter_frame(frame, "eyes_mouth_covered", 1.0, rng, landmarks)
    changed = np.argwhere(np.any(covered != frame, axis=2))
    eyes, mouth = landmarks[:2].mean(axis=0), landmarks[3:].mean(axis=0)
    distance = np.linalg.norm(landmarks[1] - landmarks[0])
    near = np.minimum(np.linalg.norm(changed[:, ::-1] - eyes, axis=1),
                      np.linalg.norm(changed[:, ::-1] - mouth, axis=1))
    assert len(changed) > 0.5 * distance ** 2 and near.max() < 1.1 * distance
    # the eyes and mouth are gone from the face: MTCNN finds it less surely, if at all
    with pytest.raises(ValueError, match="needs the frame's landmarks"):
        alter_frame(frame, "eyes_mouth_covered", 1.0, rng)
    with pytest.raises(ValueError, match="unknown alteration 'sepia'"):
        alter_frame(frame, "sepia", 1, rng)
    video = np.stack([frame, frame])
    assert np.array_equal(alter_video(video, "random_noise", 5, seed=3),
                          alter_video(video, "random_noise", 5, seed=3))
    assert set(ALTERATIONS) == {"downscale", "rotation", "gaussian_blur", "random_noise",
                                "eyes_mouth_covered"}


def test_no_test_videos_is_an_error():
    with pytest.raises(ValueError, match="no test videos to score"):
        score_videos([], pl.DataFrame(), 256, {}, detector=None)


@pytest.mark.parametrize(("name", "parameter"), [("rotation", 25), ("rotation", -40),
                                                  ("downscale", 3), ("gaussian_blur", 2)])
def test_a_box_moves_with_its_frame(name, parameter):
    """Where no face is found in an altered video, the clean boxes are moved as the frame was:
    a white box drawn in the frame lands where moved_boxes says."""
    frame = np.zeros((256, 256, 3), np.uint8)
    box = np.array([[90.0, 70.0, 170.0, 180.0]])
    frame[70:181, 90:171] = 255
    altered = alter_frame(frame, name, parameter, np.random.default_rng(0))
    ys, xs = np.nonzero(altered[..., 0] > 127)
    expected = moved_boxes(box, name, parameter, 256, 256)[0]
    assert np.allclose([xs.min(), ys.min(), xs.max(), ys.max()], expected, atol=3.5)


def test_fusion_and_table_follow_the_original_conventions():
    rows = []
    for video, label, logits in (("f1", "fake", (2.0, 4.0)), ("f2", "fake", (1.0, -1.0)),
                                 ("r1", "real", (-3.0, -1.0))):
        for network, logit in zip(("A", "B"), logits, strict=True):
            rows.append({"video_id": video, "label": label, "action": "yaw", "model": "fomm",
                         "network": network, "alteration": "none", "parameter": 0.0,
                         "frames": 4, "detected": 4, "logit": logit})
    scores = pl.DataFrame(rows)
    fused = with_fusion(scores).filter(pl.col("network") == FUSION).sort("video_id")
    assert fused["logit"].to_list() == [3.0, 0.0, -2.0]  # the mean of the networks' logits
    table = published_table(scores)
    assert table["network"].to_list() == ["A", "B", FUSION]
    fusion = table.row(2, named=True)
    assert fusion["fake_mean"] == pytest.approx((expit(3.0) + expit(0.0)) / 2)
    assert fusion["real_min"] == pytest.approx(expit(-2.0))
    assert fusion["auc"] == 1.0 and fusion["faces_found"] == 1.0
    assert table.row(0, named=True)["auc"] == 1.0
    assert table.row(1, named=True)["auc"] == 0.75  # B ties a fake with the real: half a pair


@pytest.mark.workflow
def test_published_scores_on_the_tiny_demo(tmp_path, tiny_demo, astronaut, grace_hopper):
    from tiny_demo import clone, run_snakemake

    workdir = clone(tiny_demo, tmp_path / "wf")
    faces = face_batch(astronaut, grace_hopper)
    files = [save_original(random_published(arch, faces, seed=i), workdir / "published")
             for i, arch in enumerate(("EfficientNetB4", "EfficientNetAutoAttB4ST"))]
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["train"]["published_scores"] = {
        "networks": [{"arch": "EfficientNetB4", "path": str(files[0].relative_to(workdir))},
                     {"arch": "EfficientNetAutoAttB4ST", "path": str(files[1]),
                      "padding": "0.7"}],
        "alterations": {"downscale": [2], "rotation": [20], "gaussian_blur": [2],
                        "random_noise": [10], "eyes_mouth_covered": [1.0]}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "published_scores")
    tables = workdir / "results" / "tables"
    dataset = pl.read_parquet(workdir / "results" / "dataset" / "dataset.parquet")
    test = dataset.filter((pl.col("split") == "test") & (pl.col("variant") == "raw"))
    table = pl.read_csv(tables / "published_scores.csv")
    assert table.height == 3 * 6  # (two networks + fusion) x (clean + five alterations)
    assert table["network"].unique(maintain_order=True).to_list() == [
        "EfficientNetB4", "EfficientNetAutoAttB4ST", FUSION]
    assert (table["fake_videos"] + table["real_videos"] == test.height).all()
    assert table["fake_mean"].is_between(0, 1).all()
    assert table.filter(pl.col("alteration") == "none")["faces_found"].min() > 0.5
    scores = pl.read_parquet(tables / "published_scores.parquet")
    assert scores["logit"].is_finite().all() and scores["frames"].max() <= 32
    clean = scores.filter(pl.col("alteration") == "none").sort("network", "video_id")
    blurred = scores.filter(pl.col("alteration") == "gaussian_blur").sort("network", "video_id")
    assert (clean["logit"] - blurred["logit"]).abs().max() > 0  # the alteration reaches them
    notes = (tables / "published_scores.md").read_text()
    assert "published files, loaded strictly" in notes and files[0].name in notes
    assert "0 real, 1 fake" in notes
    image = cv2.imread(str(tables / "published_scores.png"))
    assert image is not None and image.shape[1] > 5 * 200 and image.std() > 10
    # replacing a published file is an input change: the target is redone
    dry = run_snakemake(workdir, "-n", "published_scores")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    files[1].touch()
    dry = run_snakemake(workdir, "-n", "published_scores")
    assert "published_scores" in dry.stdout and "Nothing to be done" not in dry.stdout

"""Export naming rules and face annotations on a real photo (no Snakemake)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfmnist.targets.annotations import face_geometry, face_mask
from dfmnist.targets.deepfakebench.layout import check_names, label_dict_yaml
from dfmnist.vision.faces import track_from_detections


@pytest.mark.parametrize(("name", "prefix", "fragment", "name_rule"), [
    ("FF-DF", "./datasets/rgb", "FaceForensics++", True),       # loader reads a compression level
    ("FaceForensics++", "./datasets/rgb", "FaceForensics++", True),
    ("DFMNIST", "datasets/rgb", "must start with '.'", False),  # loader prepends rgb_dir + '\\'
    ("my_frames", "./datasets/rgb", "'frames'", True),           # loader rewrites 'frames'
    ("DFMNIST", "./data.png/rgb", "'.png'", False),
])
def test_names_deepfakebench_would_misread_are_refused(name, prefix, fragment, name_rule):
    with pytest.raises(ValueError, match=fragment):
        check_names(name, prefix, "folders")
    if name_rule:  # the name's rules hold for LMDB keys too
        with pytest.raises(ValueError, match=fragment):
            check_names(name, prefix, "lmdb")
    else:  # an LMDB export has no path prefix
        check_names(name, prefix, "lmdb")


def test_label_lines_follow_deepfakebench_convention():
    import yaml

    lines = label_dict_yaml("DFMNIST", ["fomm", "landmark_warp"])
    assert yaml.safe_load("label_dict:\n" + lines)["label_dict"] == {
        "DFMNIST_real": 0, "DFMNIST_fomm": 1, "DFMNIST_landmark_warp": 1}


def test_mask_covers_the_detected_face(astronaut, detector):
    face = cv2.resize(astronaut[0:256, 128:384], (256, 256))
    track = track_from_detections(detector.detect(face[None]), min_prob=0.9)
    boxes, landmarks, how = face_geometry(track, 256)
    assert how == ["detected"]
    mask = face_mask(boxes[0], landmarks[0], 256)
    x0, y0, x1, y1 = boxes[0]
    inside = mask[int(y0):int(y1), int(x0):int(x1)].mean() / 255
    assert inside > 0.7 and mask.sum() / 255 < (x1 - x0) * (y1 - y0)
    for x, y in landmarks[0]:
        assert mask[int(y), int(x)] == 255


def test_frames_without_any_face_get_the_template(detector):
    grey = np.full((2, 256, 256, 3), 127, np.uint8)
    track = track_from_detections(detector.detect(grey))
    boxes, landmarks, how = face_geometry(track, 256)
    assert how == ["template", "template"] and len(boxes) == 2
    assert landmarks[0, 0, 0] < landmarks[0, 1, 0]  # left eye left of right eye
    assert ((landmarks > 0) & (landmarks < 256)).all()

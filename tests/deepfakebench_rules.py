"""DeepfakeBench's loading rules, written from reading its loader (SCLBD/DeepfakeBench,
`training/dataset/abstract_dataset.py` at 8a4a7bf): what `collect_img_and_label_for_one_dataset`,
`load_rgb`, `load_mask`, `load_landmark` and `__getitem__` do with a dataset JSON, without the
training machinery. Each rule names the behaviour it mirrors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

# `FFpp_pool` and the `cp` branch: these names (and `{name}_c40`) read a compression level
# between split and video; every other dataset is walked label -> mode -> video.
FF_NAMES = ("FaceForensics++", "FaceShifter", "DeepFakeDetection", "FF-DF", "FF-F2F", "FF-FS",
            "FF-NT")


def resolve(path: str, root: Path, rgb_dir: str = "./datasets/rgb") -> Path:
    """`load_rgb`: a path not starting with '.' gets `./{rgb_dir}\\` in front; the rest is
    opened as is, relative to the directory training runs in (DeepfakeBench's root)."""
    if path[0] != ".":
        path = f"./{rgb_dir}\\" + path
    return root / path


def frame_number(path: str) -> int:
    """The sort key: the file name's stem as an integer ('\\' or '/' separated)."""
    sep = "\\" if "\\" in path else "/"
    return int(path.split(sep)[-1].split(".")[0])


def derived_paths(frame: str) -> tuple[str, str]:
    """`__getitem__`: mask = frame with 'frames' -> 'masks'; landmark = 'frames' ->
    'landmarks' and '.png' -> '.npy' (plain string replacement, every occurrence)."""
    return (frame.replace("frames", "masks"),
            frame.replace("frames", "landmarks").replace(".png", ".npy"))


def collect(json_folder: Path, dataset_name: str, mode: str,
            label_dict: dict[str, int]) -> list[tuple[str, int, str]]:
    """(frame path, label, unique video name) for one dataset and mode, as the loader
    collects them (all frames kept: our videos have fewer than its `frame_num`)."""
    info = json.loads((json_folder / f"{dataset_name}.json").read_text())
    if dataset_name in FF_NAMES or dataset_name.endswith("_c40") and \
            dataset_name[:-4] in FF_NAMES:
        raise AssertionError(f"{dataset_name} would be read as FaceForensics++")
    items = []
    for label in info[dataset_name]:
        for video, entry in info[dataset_name][label][mode].items():
            if entry["label"] not in label_dict:
                raise ValueError(f"Label {entry['label']} is not found in label_dict")
            frames = sorted(entry["frames"], key=frame_number)
            items += [(f, label_dict[entry["label"]], f"{entry['label']}_{video}")
                      for f in frames]
    if not items:  # the loader asserts on an empty collection
        raise AssertionError(f"Collect nothing for {mode} mode!")
    return items


def load_item(frame: str, root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image, mask and landmarks of one frame as the loader reads them from disk, failing
    where it would silently substitute zeros (a missing mask or landmark file)."""
    image_path = resolve(frame, root)
    image = cv2.imread(str(image_path))
    assert image is not None, f"{image_path} does not exist"
    mask_rel, landmark_rel = derived_paths(frame)
    mask_path, landmark_path = resolve(mask_rel, root), resolve(landmark_rel, root)
    assert mask_path.is_file(), f"mask {mask_rel} missing: the loader would use zeros"
    assert landmark_path.is_file(), f"landmarks {landmark_rel} missing: the loader would use zeros"
    mask = cv2.imread(str(mask_path), 0)
    assert mask is not None, f"mask {mask_rel} unreadable"
    return image, mask, np.load(landmark_path)


def lmdb_key(path: str) -> str:
    """`load_rgb`, `load_mask`, `load_landmark` with `lmdb: True`: a path starting with '.'
    loses `./datasets\\`; otherwise the JSON's path is the key as it stands."""
    if path[0] == ".":
        path = path.replace("./datasets\\", "")
    return path


def open_lmdb(lmdb_dir: Path, dataset_name: str):
    """`__init__` with `lmdb: True`: `{lmdb_dir}/{dataset}_lmdb`, read-only, without a lock."""
    import lmdb

    return lmdb.open(str(lmdb_dir / f"{dataset_name}_lmdb"), create=False, subdir=True,
                     readonly=True, lock=False)


def load_item_lmdb(frame: str, env) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image, mask and landmarks of one frame as the loader reads them from its LMDB, failing
    where it would crash (a missing frame or landmark key, landmarks that are not (81, 2)
    uint32) or silently substitute zeros (a missing mask key)."""
    mask_rel, landmark_rel = derived_paths(frame)
    with env.begin(write=False) as txn:
        image_bin = txn.get(lmdb_key(frame).encode())
        mask_bin = txn.get(lmdb_key(mask_rel).encode())
        landmark_bin = txn.get(lmdb_key(landmark_rel).encode())
    assert image_bin is not None, f"no key {frame}: the loader would crash"
    image = cv2.imdecode(np.frombuffer(image_bin, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, f"{frame} does not decode"
    assert mask_bin is not None, f"no mask key {mask_rel}: the loader would use zeros"
    mask = cv2.imdecode(np.frombuffer(mask_bin, np.uint8), cv2.IMREAD_COLOR)  # as it decodes
    assert mask is not None, f"mask {mask_rel} does not decode"
    assert landmark_bin is not None, f"no landmark key {landmark_rel}: the loader would crash"
    return image, mask, np.frombuffer(landmark_bin, dtype=np.uint32).reshape((81, 2))

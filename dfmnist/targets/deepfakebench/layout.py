"""DeepfakeBench's dataset export: dataset JSONs, and the frames, masks and landmarks they name,
in an LMDB per JSON (DeepfakeBench's default) or as a folder tree of files.

Facts from DeepfakeBench's loader (`training/dataset/abstract_dataset.py`,
`collect_img_and_label_for_one_dataset`, `load_rgb`, `load_mask`, `load_landmark`,
`__getitem__`) that shape this layout:

* `{dataset_json_folder}/{name}.json` is read and walked as `info[name][label][mode]`, mode
  `train` or `test`; a compression level is read in between only for the FaceForensics++
  family of names, so every other dataset needs one JSON per variant (`{Name}_{variant}`).
* each video entry gives `label`, looked up in `train_config.yaml`'s `label_dict`, and
  `frames`, sorted by the integer stem of the path's last component, split at `\\` when the
  first path holds one, else at `/`;
* the mask path is the frame path with every `frames` replaced by `masks`, the landmark path
  with `frames` replaced by `landmarks` and `.png` by `.npy`, so `frames` and `.png` may
  appear only once in a path.
* LMDB mode (`lmdb: True`, its default): the dataset `{name}` is read from
  `{lmdb_dir}/{name}_lmdb` (one dataset per training run); a path is the key as it stands
  (one starting with `.` loses `./datasets\\` first); frames and masks are image bytes
  (`cv2.imdecode`), landmarks raw uint32 bytes of shape (81, 2) (a missing frame or landmark
  key crashes the loader, a missing mask becomes zeros). Its writer
  (`preprocessing/dataset2lmdb_test.py`) names keys `{dataset}\\{path in the dataset}`.
* folder mode (`lmdb: False`): a path not starting with `.` gets `./{rgb_dir}\\` prepended,
  so ours start with `./`; a missing mask or landmark file becomes zeros.

Layouts written (`Name` is targets.dataset_name; `{rel}` is
`{Name}/{variant}/{label}/{frames|masks|landmarks}/{video}/{frame:04d}.png|.npy`):

    dataset_json/{Name}_{variant}.json     both
    lmdb/{Name}_{variant}_lmdb/data.mdb    lmdb: keys are {rel} joined by backslashes
    rgb/{rel}                              folders: `{prefix}` (default ./datasets/rgb)/{rel}
    label_dict.yaml                        both
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl

from dfmnist.storage.store import Store
from dfmnist.storage.tars import member, unpacked
from dfmnist.targets.annotations import landmarks_member, mask_member
from dfmnist.targets.common import atomic_dir, link, video_name
from dfmnist.targets.frames import frame_member

SPLITS = ("train", "val", "test")
#: Names DeepfakeBench's loader handles as FaceForensics++ (compression read from the JSON).
FF_FAMILY = ("FaceForensics++", "FaceShifter", "DeepFakeDetection", "FF-DF", "FF-F2F", "FF-FS",
             "FF-NT")
#: Words the loader substitutes in paths (frames -> masks/landmarks, .png -> .npy).
RESERVED = ("frames", ".png")


#: The export's formats: what DeepfakeBench's `lmdb: True` (its default) and `lmdb: False` read.
FORMATS = ("lmdb", "folders")


def check_names(name: str, prefix: str, layout: str = "lmdb") -> None:
    """Raise ValueError when DeepfakeBench would read the name (or, for folders, the path
    prefix) differently."""
    if any(name == f or name.startswith(f + "_") for f in FF_FAMILY):
        raise ValueError(f"targets.dataset_name {name!r}: DeepfakeBench treats this name as "
                         "FaceForensics++; choose another")
    checked = [("targets.dataset_name", name)]
    if layout == "folders":
        if not prefix.startswith("."):
            raise ValueError(f"targets.deepfakebench.path_prefix {prefix!r} must start with "
                             "'.' (DeepfakeBench prepends its rgb_dir and a backslash otherwise)")
        if "\\" in prefix:
            raise ValueError(f"targets.deepfakebench.path_prefix {prefix!r}: use '/' separators")
        checked.append(("targets.deepfakebench.path_prefix", prefix))
    for word in RESERVED:
        for what, value in checked:
            if word in value:
                raise ValueError(f"{what} {value!r} contains {word!r}, which DeepfakeBench "
                                 "rewrites in every path")


def label_names(name: str, generators: list[str]) -> dict[str, str]:
    """Our labels in DeepfakeBench's terms: `real` and one per generator -> `{Name}_{x}`."""
    return {g: f"{name}_{g}" for g in ["real", *sorted(generators)]}


def label_dict_yaml(name: str, generators: list[str]) -> str:
    """The lines to add under `label_dict:` in DeepfakeBench's train/test config (fake = 1)."""
    lines = [f"  # {name} (dfmnist): real 0, fakes 1 per generator; append under label_dict:"]
    lines += [f"  {label}: {0 if key == 'real' else 1}"
              for key, label in label_names(name, generators).items()]
    return "\n".join(lines) + "\n"


def safe_video_name(row: dict) -> str:
    """The video's folder name, unless the loader's path rewriting would hit it."""
    name = video_name(row)
    if any(word in name for word in RESERVED) or name in ("masks", "landmarks"):
        return f"video-{row['sha256'][:16]}"
    return name


#: One exported file: what it holds (a store file, or (shard tar, member)) and its path parts
#: (Name, variant, label, frames|masks|landmarks, video, file name).
Entry = tuple[str | tuple[str, str], tuple[str, ...]]


def deepfakebench_tree(manifest: pl.DataFrame, annotations: pl.DataFrame, name: str,
                       size: int, blank: str, join: Callable[[tuple[str, ...]], str]
                       ) -> tuple[dict, list[Entry]]:
    """{stem: JSON tree} per variant, and the files it names; `join` makes the path the JSON
    holds (a folder path or an LMDB key) from an entry's parts."""
    generators = sorted(set(manifest["model"].drop_nulls()))
    labels = label_names(name, generators)
    ann = {(r["video_id"], r["variant"]): (r["annotations_tar"], r["annotations_prefix"])
           for r in annotations.iter_rows(named=True)}
    trees: dict[str, dict] = {}
    entries: list[Entry] = []
    for variant in sorted(set(manifest["variant"])):
        stem = f"{name}_{variant}"
        tree = {label: {s: {} for s in SPLITS} for label in labels.values()}
        rows = manifest.filter(pl.col("variant") == variant).sort("video_id")
        for row in rows.iter_rows(named=True):
            label = labels["real" if row["label"] == "real" else row["model"]]
            video = safe_video_name(row)
            if video in tree[label][row["split"]]:
                raise ValueError(f"two videos export as {label}/{video}")
            ann_tar, ann_prefix = ann.get((row["video_id"], variant), (None, None))
            if ann_tar is None:
                raise ValueError(f"no face annotations for {variant}/{row['video_id']}")
            entry = {"label": label, "frames": [], "masks": [], "landmarks": []}
            for j in row["frame_indices"]:
                # frames, masks and landmarks are members of the store's shard tars; the
                # blank mask of reals is one store file
                for kind, src, ext in (
                    ("frames", (row["frames_tar"], member(row["frames_prefix"],
                                                          frame_member(j, size))), "png"),
                    ("masks", blank if row["label"] == "real"
                     else (ann_tar, member(ann_prefix, mask_member(j))), "png"),
                    ("landmarks", (ann_tar, member(ann_prefix, landmarks_member(j))), "npy"),
                ):
                    parts = (name, variant, label, kind, video, f"{j:04d}.{ext}")
                    entry[kind].append(join(parts))
                    entries.append((src, parts))
            tree[label][row["split"]][video] = entry
        trees[stem] = {stem: tree}
    return trees, entries


def write_json(folder: Path, trees: dict[str, dict], name: str, generators: list[str]
               ) -> dict[str, int]:
    """The dataset JSONs and label_dict.yaml in `folder`; frames per JSON."""
    (folder / "dataset_json").mkdir()
    counts = {}
    for stem, tree in trees.items():
        (folder / "dataset_json" / f"{stem}.json").write_text(json.dumps(tree, indent=1))
        counts[stem] = sum(len(v["frames"]) for splits in tree[stem].values()
                           for videos in splits.values() for v in videos.values())
    (folder / "label_dict.yaml").write_text(label_dict_yaml(name, generators))
    return counts


def write_deepfakebench_folders(manifest: pl.DataFrame, annotations: pl.DataFrame,
                                out_dir: str | Path, name: str, prefix: str, size: int,
                                blank: str, store: Store) -> dict[str, int]:
    """The folder layout in one step (built beside it, renamed into place); frames per JSON.

    Every frame, mask and landmark file is a hard link (or symlink) into the store: the tar
    members it needs are unpacked once per shard tar into a store item and linked from there.
    """
    check_names(name, prefix, "folders")
    prefix = prefix.rstrip("/")
    trees, entries = deepfakebench_tree(manifest, annotations, name, size, blank,
                                        lambda parts: f"{prefix}/" + "/".join(parts))
    needed: dict[str, list[str]] = {}
    for src, _ in entries:
        if isinstance(src, tuple):
            needed.setdefault(src[0], []).append(src[1])
    folders = {tar: unpacked(tar, store, names) for tar, names in needed.items()}
    with atomic_dir(out_dir) as tmp:
        for src, parts in entries:
            if isinstance(src, tuple):
                src = folders[src[0]] / src[1]
            link(src, tmp / "rgb" / "/".join(parts))
        return write_json(tmp, trees, name, sorted(set(manifest["model"].drop_nulls())))

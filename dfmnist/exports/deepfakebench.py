"""A DeepfakeBench-ready folder: dataset JSONs, the rgb tree they point into, and label lines.

Facts from DeepfakeBench's loader (`training/dataset/abstract_dataset.py`,
`collect_img_and_label_for_one_dataset`, `load_rgb`, `__getitem__`) that shape this layout:

* `{dataset_json_folder}/{name}.json` is read and walked as `info[name][label][mode]`, mode
  `train` or `test`; a compression level is read in between only for the FaceForensics++
  family of names, so every other dataset needs one JSON per variant (`{Name}_{variant}`).
* each video entry gives `label`, looked up in `train_config.yaml`'s `label_dict`, and
  `frames`, sorted by the integer stem of each file name;
* a path not starting with `.` gets `./{rgb_dir}\\` prepended, so ours start with `./`;
* the mask path is the frame path with every `frames` replaced by `masks`, the landmark path
  with `frames` replaced by `landmarks` and `.png` by `.npy` (a missing file becomes zeros),
  so `frames` and `.png` may appear only once in a path.

Layout written (`{prefix}` defaults to `./datasets/rgb`, where DeepfakeBench's `rgb_dir` is):

    dataset_json/{Name}_{variant}.json
    rgb/{Name}/{variant}/{label}/{frames|masks|landmarks}/{video}/{frame:04d}.png|.npy
    label_dict.yaml
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from dfmnist.exports.annotations import landmarks_member, mask_member
from dfmnist.exports.common import atomic_dir, link, video_name
from dfmnist.frames import frame_member
from dfmnist.shard_tars import member
from dfmnist.store import Store
from dfmnist.tars import unpacked

SPLITS = ("train", "val", "test")
#: Names DeepfakeBench's loader handles as FaceForensics++ (compression read from the JSON).
FF_FAMILY = ("FaceForensics++", "FaceShifter", "DeepFakeDetection", "FF-DF", "FF-F2F", "FF-FS",
             "FF-NT")
#: Words the loader substitutes in paths (frames -> masks/landmarks, .png -> .npy).
RESERVED = ("frames", ".png")


def check_names(name: str, prefix: str) -> None:
    """Raise ValueError when DeepfakeBench would read the name or prefix differently."""
    if any(name == f or name.startswith(f + "_") for f in FF_FAMILY):
        raise ValueError(f"targets.dataset_name {name!r}: DeepfakeBench treats this name as "
                         "FaceForensics++; choose another")
    if not prefix.startswith("."):
        raise ValueError(f"targets.deepfakebench.path_prefix {prefix!r} must start with '.' "
                         "(DeepfakeBench prepends its rgb_dir and a backslash otherwise)")
    for word in RESERVED:
        for what, value in (("targets.dataset_name", name),
                            ("targets.deepfakebench.path_prefix", prefix)):
            if word in value:
                raise ValueError(f"{what} {value!r} contains {word!r}, which DeepfakeBench "
                                 "rewrites in every path")
    if "\\" in prefix:
        raise ValueError(f"targets.deepfakebench.path_prefix {prefix!r}: use '/' separators")


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


def deepfakebench_tree(manifest: pl.DataFrame, annotations: pl.DataFrame, name: str,
                       prefix: str, size: int, blank: str
                       ) -> tuple[dict, list[tuple[str | tuple[str, str], str]]]:
    """{stem: JSON tree} per variant, and the files to place: (store file to link, or
    (tar, member) to write out, export path).

    Export paths are relative to the export folder's `rgb/` parent with `{prefix}` replaced
    by `rgb`; the JSON holds them under `prefix`.
    """
    check_names(name, prefix)
    generators = sorted(set(manifest["model"].drop_nulls()))
    labels = label_names(name, generators)
    ann = {(r["video_id"], r["variant"]): (r["annotations_tar"], r["annotations_prefix"])
           for r in annotations.iter_rows(named=True)}
    trees: dict[str, dict] = {}
    links: list[tuple[str | tuple[str, str], str]] = []  # (file or (tar, member), where)
    for variant in sorted(set(manifest["variant"])):
        stem = f"{name}_{variant}"
        tree = {label: {s: {} for s in SPLITS} for label in labels.values()}
        rows = manifest.filter(pl.col("variant") == variant).sort("video_id")
        for row in rows.iter_rows(named=True):
            label = labels["real" if row["label"] == "real" else row["model"]]
            video = safe_video_name(row)
            if video in tree[label][row["split"]]:
                raise ValueError(f"two videos export as {label}/{video}")
            folder = f"{name}/{variant}/{label}"
            ann_tar, ann_prefix = ann.get((row["video_id"], variant), (None, None))
            if ann_tar is None:
                raise ValueError(f"no face annotations for {variant}/{row['video_id']}")
            entry = {"label": label, "frames": [], "masks": [], "landmarks": []}
            for j in row["frame_indices"]:
                # frames, masks and landmarks are tar members in the store, unpacked once into
                # the store and linked from there; the blank mask of reals is one file
                for kind, src, ext in (
                    ("frames", (row["frames_tar"], member(row["frames_prefix"],
                                                          frame_member(j, size))), "png"),
                    ("masks", blank if row["label"] == "real"
                     else (ann_tar, member(ann_prefix, mask_member(j))), "png"),
                    ("landmarks", (ann_tar, member(ann_prefix, landmarks_member(j))), "npy"),
                ):
                    rel = f"{folder}/{kind}/{video}/{j:04d}.{ext}"
                    entry[kind].append(f"{prefix}/{rel}")
                    links.append((src, f"rgb/{rel}"))
            tree[label][row["split"]][video] = entry
        trees[stem] = {stem: tree}
    return trees, links


def write_deepfakebench(manifest: pl.DataFrame, annotations: pl.DataFrame, out_dir: str | Path,
                        name: str, prefix: str, size: int, blank: str, store: Store
                        ) -> dict[str, int]:
    """Write the folder in one step (built beside it, renamed into place); frames per JSON.

    Every frame, mask and landmark file is a hard link (or symlink) into the store: the tar
    members it needs are unpacked once per shard tar into a store item and linked from there.
    """
    trees, links = deepfakebench_tree(manifest, annotations, name, prefix.rstrip("/"), size,
                                      blank)
    generators = sorted(set(manifest["model"].drop_nulls()))
    needed: dict[str, list[str]] = {}
    for src, _ in links:
        if isinstance(src, tuple):
            needed.setdefault(src[0], []).append(src[1])
    folders = {tar: unpacked(tar, store, names) for tar, names in needed.items()}
    with atomic_dir(out_dir) as tmp:
        for src, rel in links:
            if isinstance(src, tuple):
                src = folders[src[0]] / src[1]
            link(src, tmp / rel)
        (tmp / "dataset_json").mkdir()
        counts = {}
        for stem, tree in trees.items():
            (tmp / "dataset_json" / f"{stem}.json").write_text(json.dumps(tree, indent=1))
            counts[stem] = sum(len(v["frames"]) for splits in tree[stem].values()
                               for videos in splits.values() for v in videos.values())
        (tmp / "label_dict.yaml").write_text(label_dict_yaml(name, generators))
    return counts

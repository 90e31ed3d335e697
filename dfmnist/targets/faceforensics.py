"""FaceForensics++'s directory layout, so FF++ tooling finds our videos where it looks.

    original_sequences/{source_dataset}/{variant}/videos/{target}.mp4
    manipulated_sequences/{model}/{variant}/videos/{target}_{source}.mp4
    splits/{train,val,test}.json

FF++ names a manipulated video `{target}_{source}` and its split files are JSON lists of
`[target, source]` pairs of original video names; a tool puts a real video in the split of
a pair naming it, and a fake in the split of the pair that joins its two names. Here the target
is the real clip whose face is animated and the source the driving take that moved it
(`{action}-{take}`, not itself a video of the dataset: the paper's driving videos are
performers', not part of its reals), or for a face swap the identity whose face it shows.
Reals no fake was made from appear as `[clip, clip]`.
Splits are identity-disjoint, so a clip and every fake of it share a split.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from dfmnist.targets.common import atomic_dir, flat, link, source_name, video_name

SPLITS = ("train", "val", "test")


def split_pairs(manifest: pl.DataFrame) -> dict[str, list[list[str]]]:
    """FF++'s pair lists per split, from one variant's rows (all variants share them)."""
    rows = manifest.filter(pl.col("variant") == manifest["variant"].min()).sort("video_id")
    pairs: dict[str, list[list[str]]] = {s: [] for s in SPLITS}
    paired: set[str] = set()
    for row in rows.filter(pl.col("label") == "fake").iter_rows(named=True):
        target = flat(row["source_id"])
        pairs[row["split"]].append([target, source_name(row)])
        paired.add(target)
    for row in rows.filter(pl.col("label") == "real").iter_rows(named=True):
        clip = flat(row["source_id"])
        if clip not in paired:
            pairs[row["split"]].append([clip, clip])
    return pairs


def write_faceforensics(manifest: pl.DataFrame, out_dir: str | Path,
                        source_dataset: str) -> dict[str, int]:
    """Hard-link every compressed video into FF++'s layout; videos per top folder."""
    counts = {"original_sequences": 0, "manipulated_sequences": 0}
    with atomic_dir(out_dir) as tmp:
        for row in manifest.sort(["variant", "video_id"]).iter_rows(named=True):
            if row["label"] == "real":
                top, method = "original_sequences", source_dataset
            else:
                top, method = "manipulated_sequences", row["model"]
            dst = tmp / top / method / row["variant"] / "videos" / f"{video_name(row)}.mp4"
            if dst.exists():
                raise ValueError(f"two videos export as {dst.relative_to(tmp)}")
            link(row["path"], dst)
            counts[top] += 1
        (tmp / "splits").mkdir()
        for split, pairs in split_pairs(manifest).items():
            (tmp / "splits" / f"{split}.json").write_text(json.dumps(pairs, indent=1))
    return counts

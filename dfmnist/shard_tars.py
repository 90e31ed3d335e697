"""Store items that hold a whole shard's samples as one tar, so files grow with shards.

A shard item's key is its kind and the sorted content keys of its samples (one sample per
video), so an unchanged shard is the same item and a shard that gains, loses or changes one
video is a new one. Inside the tar a sample's members are `{sample key}/{name}` (WebDataset
layout: the sample key of `abc…/0008.256.png` is `abc…/0008`, its field `256.png`); the
sample key is a fixed-length hex content key, so any video id fits a tar header and no member
name can point outside an unpacked folder.

Building a new shard item copies the members of samples that an older item of the same kind
already holds (a positioned read each) instead of computing them again: changing one video
of a shard re-decodes that video only. The item's `meta.json` lists its samples (what each
sample's `info` was and whether it was `computed` or `copied`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from dfmnist.store import META, Store, content_key
from dfmnist.tars import open_tar, write_tar

log = logging.getLogger(__name__)

#: The meta.json field that lists a shard item's samples: {sample key: info}.
SAMPLES = "samples"

#: Computes one sample: its members (names relative to the sample) and its info for the meta.
Compute = Callable[[], tuple[list[tuple[str, bytes]], dict]]


def shard_key(kind: str, sample_keys: list[str], layout: str) -> str:
    """The key of the shard item holding exactly these samples (order and repeats ignored)."""
    return content_key(kind, "shard", layout, sorted(set(sample_keys)))


def member(sample: str, name: str) -> str:
    """A sample's member in a shard tar."""
    return f"{sample}/{name}"


def older_samples(store: Store, kind: str, wanted: set[str],
                  layout: str) -> dict[str, tuple[Path, dict]]:
    """{sample key: (shard tar that holds it, its info)} for the `wanted` samples that a
    complete item of `kind` written in `layout` already holds (a bumped layout recomputes
    every sample, whatever its key)."""
    found: dict[str, tuple[Path, dict]] = {}
    base = store.root / kind
    if not wanted or not base.is_dir():
        return found
    for meta_path in sorted(base.glob(f"*/*/{META}")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("layout") != layout:
            continue
        samples = meta.get(SAMPLES) or {}
        hits = [s for s in samples if s in wanted and s not in found]
        if not hits or not store.has(kind, meta_path.parent.name):
            continue
        tar = meta_path.parent / meta["tar"]
        for sample in hits:
            found[sample] = (tar, {k: v for k, v in samples[sample].items() if k != "made"})
        if len(found) == len(wanted):
            break
    return found


def ensure_shard(store: Store, kind: str, layout: str, tar_name: str,
                 samples: dict[str, Compute],
                 older: dict[str, tuple[Path, dict]] | None = None) -> tuple[str, Path]:
    """The shard item of `samples` ({sample key: how to compute it}): built unless stored,
    copying samples that older items of `kind` hold (`older`: what `older_samples` found, when
    the caller looked already). Returns (item key, tar path)."""
    key = shard_key(kind, list(samples), layout)
    if not store.has(kind, key):
        older = older_samples(store, kind, set(samples), layout) if older is None else older
        meta: dict = {"layout": layout, "tar": tar_name, SAMPLES: {}}

        def members() -> Iterator[tuple[str, bytes]]:
            for sample in sorted(samples):
                if sample in older:
                    tar, info = older[sample]
                    source = open_tar(tar)
                    for name in source.folder(sample):
                        yield name, source.read(name)
                    meta[SAMPLES][sample] = {**info, "made": "copied"}
                    continue
                computed, info = samples[sample]()
                for name, data in computed:
                    yield member(sample, name), data
                meta[SAMPLES][sample] = {**info, "made": "computed"}

        with store.build(kind, key, meta) as tmp:
            write_tar(tmp / tar_name, members())
        made = [s["made"] for s in meta[SAMPLES].values()]
        log.info("%s shard %s: %d samples computed, %d copied from older shards", kind,
                 key[:12], made.count("computed"), made.count("copied"))
    return key, store.item_dir(kind, key) / tar_name


def shard_samples(store: Store, kind: str, key: str) -> dict[str, dict]:
    """{sample key: info} of a stored shard item (info has `made`: computed or copied)."""
    return store.meta(kind, key)[SAMPLES]

"""DeepfakeBench's default export: one LMDB per dataset JSON, read straight from the shard tars.

A paper-scale build would otherwise leave three files per exported frame (frame, mask,
landmarks): about two million inodes. Here a dataset `{Name}_{variant}` is one file,
`lmdb/{Name}_{variant}_lmdb/data.mdb`, the name DeepfakeBench's loader opens under its
`lmdb_dir`. Keys are the export's relative paths joined by backslashes, as DeepfakeBench's
own writer (`preprocessing/dataset2lmdb_test.py`) names them, `{Name}\\{variant}\\...`; the
dataset JSON lists the same strings, so the loader's key is the JSON path as it stands, and
its frame sort (the integer stem after the last backslash) and its `frames` -> `masks` /
`landmarks` rewriting hold.

Values, as the loader decodes them:
* frames and masks: the PNG bytes of the shard tars' members (`cv2.imdecode`); a real's mask
  is the all-zero mask;
* landmarks: the loader reshapes the bytes as uint32 (81, 2), dlib's 81-point layout, which
  MTCNN's five points cannot fill. The key it reads holds zeros((81, 2), uint32), the value
  the loader itself uses for a frame without landmarks, so `with_landmark: true` loads and
  detectors that need the 81 points get nothing misplaced. The five points (float32 (5, 2),
  `.npy` bytes) are under the sibling key `...\\landmarks\\{video}\\{frame:04d}.mtcnn5.npy`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import lmdb
import numpy as np
import polars as pl

from dfmnist.storage.tars import open_tar
from dfmnist.targets.common import atomic_dir
from dfmnist.targets.deepfakebench.layout import (
    Entry,
    check_names,
    deepfakebench_tree,
    write_json,
)

log = logging.getLogger(__name__)

#: What DeepfakeBench's `load_landmark` decodes: uint32, dlib's 81 points.
LOADER_LANDMARKS = (81, 2)
#: The suffix of the key holding our MTCNN five points beside the loader's landmark key.
FIVE_POINTS = ".mtcnn5.npy"
#: Puts per write transaction: small transactions keep LMDB's bookkeeping of dirty pages short,
#: so the time per key stays flat with the export's size (bench/lmdb_export.py).
PUTS_PER_TXN = 256


def lmdb_key(parts: tuple[str, ...]) -> str:
    """An entry's key (and JSON path): its parts joined by backslashes, DeepfakeBench's style."""
    return "\\".join(parts)


def lmdb_dir(stem: str) -> str:
    """The folder DeepfakeBench opens for dataset `stem`, relative to its `lmdb_dir`."""
    return f"{stem}_lmdb"


def _values(entries: list[Entry]) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs of one dataset's entries, in key order (LMDB appends them densely)."""
    absent = np.zeros(LOADER_LANDMARKS, np.uint32).tobytes()
    pairs: list[tuple[str, str | tuple[str, str] | bytes]] = []
    for src, parts in entries:
        key = lmdb_key(parts)
        if parts[3] == "landmarks":
            pairs.append((key, absent))
            five = (*parts[:-1], parts[-1].removesuffix(".npy") + FIVE_POINTS)
            pairs.append((lmdb_key(five), src))
        else:
            pairs.append((key, src))
    pairs.sort(key=lambda pair: pair[0].encode())
    files: dict[str, bytes] = {}  # store files (the blank mask every real frame shares)
    for key, src in pairs:
        if isinstance(src, bytes):
            value = src
        elif isinstance(src, tuple):
            value = open_tar(src[0]).read(src[1])  # one positioned read; digest checked once
        else:
            value = files.get(src) or files.setdefault(src, Path(src).read_bytes())
        yield key.encode(), value


def _size_bound(entries: list[Entry]) -> int:
    """A map size no export of these entries outgrows: every value on its own pages, twice."""
    total, sizes = 0, {}
    for src, _ in entries:
        if isinstance(src, tuple):
            total += open_tar(src[0]).members[src[1]][1]
        else:
            total += sizes.get(src) or sizes.setdefault(src, Path(src).stat().st_size)
    return 2 * (total + 3 * 4096 * len(entries)) + (64 << 20)


def write_lmdb(path: Path, entries: list[Entry]) -> int:
    """One dataset's LMDB at `path` (a new folder); returns the number of keys."""
    path.mkdir(parents=True)
    # lock=False: the sole writer of a folder nobody reads yet (no lock.mdb is left behind);
    # sync=False: nothing needs to be durable before the whole folder is (one sync at the end)
    env = lmdb.open(str(path), map_size=_size_bound(entries), subdir=True, lock=False,
                    sync=False, metasync=False)
    count = 0
    try:
        txn = env.begin(write=True)
        for key, value in _values(entries):
            if not txn.put(key, value, append=True, overwrite=False):
                raise ValueError(f"two entries export as key {key.decode()!r}")
            count += 1
            if count % PUTS_PER_TXN == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
        env.sync(True)
    finally:
        env.close()
    return count


def write_deepfakebench_lmdb(manifest: pl.DataFrame, annotations: pl.DataFrame,
                             out_dir: str | Path, name: str, size: int, blank: str
                             ) -> dict[str, int]:
    """The LMDB layout in one step (built beside it, renamed into place); frames per JSON."""
    check_names(name, "", "lmdb")
    trees, entries = deepfakebench_tree(manifest, annotations, name, size, blank, lmdb_key)
    by_variant: dict[str, list[Entry]] = {}
    for entry in entries:
        by_variant.setdefault(entry[1][1], []).append(entry)
    with atomic_dir(out_dir) as tmp:
        for variant, variant_entries in sorted(by_variant.items()):
            stem = f"{name}_{variant}"
            keys = write_lmdb(tmp / "lmdb" / lmdb_dir(stem), variant_entries)
            log.info("%s: %d keys", lmdb_dir(stem), keys)
        return write_json(tmp, trees, name, sorted(set(manifest["model"].drop_nulls())))

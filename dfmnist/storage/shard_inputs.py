"""One input list per shard: the items a scoring or cropping job reads, with file stamps.

A shard job used to name each of its clips as an input (and carry them as a dict param): at
150,000 clips Snakemake then tracks 150,000 input files, checks each on every run and hashes
the dicts as rerun triggers (a no-op rerun took 15 s at 20,000 clips, bench/dag_scale.py,
growing with the clips). Instead
each shard gets one small file, `{folder}/{shard}.jsonl`, that the job reads: one line per
item, [id, path, stamp] (JSON, so any character in a file name is kept); the stamp is the size
and modification time of the file (of the folder for a frame folder, as Snakemake itself
stamps a folder) and of the link itself for a symlink. The file is rewritten only when a line
changes, so its own modification time moves exactly when an item of the shard is added,
removed, renamed or edited in place, and Snakemake reruns that shard and no other.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from dfmnist.storage.files import atomic_path

#: The stamp of a path that cannot be stat'ed (a broken link, a vanished file).
MISSING = "missing"


def stamp(path: str) -> str:
    """'size:mtime_ns' of what `path` names (plus ':link_mtime_ns' for a symlink)."""
    try:
        target = os.stat(path)
    except OSError:
        return MISSING
    text = f"{target.st_size}:{target.st_mtime_ns}"
    link = os.lstat(path)
    return text + (f":{link.st_mtime_ns}" if link.st_ino != target.st_ino else "")


def list_text(items: Mapping[str, str], stamped: Callable[[str], bool]) -> str:
    """The list file's content: [id, path, stamp] per line, sorted by id. Paths for which
    `stamped` is false get no stamp (inputs the workflow makes, tracked as inputs)."""
    return "".join(json.dumps([item, path, stamp(path) if stamped(path) else ""]) + "\n"
                   for item, path in sorted(items.items()))


def write_lists(by_shard: Mapping[int, Mapping[str, str]], folder: str | os.PathLike,
                stamped: Callable[[str], bool]) -> dict[int, str]:
    """Shard -> path of its list file, each (re)written only when its content changed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for shard, items in by_shard.items():
        path = folder / f"{shard}.jsonl"
        text = list_text(items, stamped)
        try:
            same = path.read_text() == text
        except OSError:
            same = False
        if not same:
            with atomic_path(path) as tmp:
                Path(tmp).write_text(text)
        paths[shard] = str(path)
    return paths


def read_list(path: str | os.PathLike) -> dict[str, str]:
    """Item id -> path, from a list file written by `write_lists`."""
    out = {}
    for line in Path(path).read_text().splitlines():
        item, item_path, _ = json.loads(line)
        out[item] = item_path
    return out

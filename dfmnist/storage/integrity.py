"""A store that notices damage and repairs itself.

Readers that read a whole store file (a video decoded for compression, frames or liveness; a
shard tar opened for its members) check it against the sha256 its item's meta.json recorded,
and a mismatch is a `StoreDamage` error naming the item and the repair command, never a silent
use of changed bytes.

`python -m dfmnist.storage.store verify --repair` moves every damaged item and every workflow output
under `results/` that names it (a manifest row with its key or its path), into
`store/.quarantine/`. Snakemake then sees those outputs missing: the next plain `snakemake`
run reruns exactly the jobs that made them (which rebuild the quarantined items and reuse every
other one) and what reads them. Nothing is deleted: the quarantine keeps the damaged bytes and
the old manifests for inspection.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import polars as pl

from dfmnist.storage.files import sha256_file
from dfmnist.storage.store import _KEY, META, Store

QUARANTINE = ".quarantine"
#: What the user runs when a reader finds damage.
REPAIR_COMMAND = "python -m dfmnist.storage.store verify --repair {root}"


class StoreDamage(RuntimeError):
    """A store file's bytes do not match its item's meta.json."""


def item_of(path: str | Path) -> tuple[Path, str, str, str] | None:
    """(store root, kind, key, file name) when `path` is a file of a store item
    (`root/kind/kk/key/name` beside the item's meta.json), else None."""
    path = Path(path)
    for item in path.parents:
        if _KEY.match(item.name) and item.parent.name == item.name[:2]:
            if not (item / META).is_file():
                return None
            return (item.parent.parent.parent, item.parent.parent.name, item.name,
                    path.relative_to(item).as_posix())
    return None


def check_store_file(path: str | Path) -> None:
    """Raise StoreDamage when `path` is a store file whose sha256 is not its meta's; any other
    path passes unread."""
    found = item_of(path)
    if found is None:
        return
    root, kind, key, name = found
    try:  # the recorded digest only: Store.file_sha256 would compute one where none is
        expected = Store(root).meta(kind, key)["files"][name]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        expected = None
    actual = sha256_file(path)
    if actual != expected:
        raise StoreDamage(
            f"store item {kind}/{key} is damaged: {name} has sha256 {actual[:16]}..., its "
            f"meta.json says {str(expected)[:16]}...; run "
            f"`{REPAIR_COMMAND.format(root=root)}`, then snakemake again")


def referencing_outputs(results: Path, keys: set[str], skip: Path) -> list[Path]:
    """Files under `results` (Parquet tables and JSON, outside `skip`) that name one of
    `keys`: in a key column, or in a path into the store."""
    if not keys:
        return []
    pattern = "|".join(sorted(keys))
    found = []
    for path in sorted(results.rglob("*")):
        if not path.is_file() or skip in path.parents:
            continue
        if path.suffix == ".parquet":
            try:
                table = pl.read_parquet(path)
            except Exception:  # noqa: BLE001  (an unreadable table is not ours to judge)
                continue
            text = [c for c, t in table.schema.items() if t == pl.String]
            if text and table.select(pl.any_horizontal(
                    pl.col(c).str.contains(pattern).fill_null(False) for c in text)).to_series(
                    ).any():
                found.append(path)
        elif path.suffix == ".json" and re.search(pattern, path.read_text(errors="replace")):
            found.append(path)
    return found


def quarantine(store_root: Path, results: Path, damaged: list[tuple[str, str, str]]
               ) -> list[Path]:
    """Move each damaged (kind, key, problem) item and every output under `results` naming it
    into `store_root/.quarantine/{time}/`; returns the outputs moved (their old paths)."""
    if not damaged:
        return []
    store = Store(store_root)
    box = store_root / QUARANTINE / time.strftime("%Y%m%dT%H%M%S")
    for kind, key, problem in damaged:
        item = store.item_dir(kind, key)
        target = box / "items" / kind / key
        target.parent.mkdir(parents=True, exist_ok=True)
        if item.exists():
            os.rename(item, target)
        (box / "items" / kind / f"{key}.problem.txt").write_text(problem + "\n")
    outputs = referencing_outputs(results, {key for _, key, _ in damaged}, store_root)
    for path in outputs:
        target = box / "outputs" / path.relative_to(results)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)
    return outputs

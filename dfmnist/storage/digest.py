"""A build's fingerprint: every store key with its files' sha256, and every result file's.

Two builds made the same dataset when their digests are equal: the same content keys (so the
same inputs and settings reached every item), the same bytes in every item, and the same
manifest, splits and videos in `results/`. `python -m dfmnist.storage.digest RESULTS` prints
one sorted line per fact, so `diff` of two digests names what differs:

    store {kind}/{key} {file} {sha256}     each file of each store item (sha256 hashed here)
    file {path} {sha256}                   each dataset table and each video under RESULTS

An item's `meta.json` is left out (it records timings and hosts), its files are hashed again.
Logs, locks, the store's staging area and Snakemake's own state are left out too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from dfmnist.storage.files import sha256_file
from dfmnist.storage.store import META, STAGING

#: Result files (outside the store) that the digest covers, by suffix.
RESULT_SUFFIXES = (".parquet", ".mp4", ".mdb", ".json", ".csv")
#: Top-level result folders the digest skips: they record how a run went, not what it made.
SKIPPED = ("logs", "locks", "store", "inputs")


def store_lines(store_root: Path) -> Iterator[str]:
    """`store kind/key file sha256` for every file of every item (META excluded)."""
    for kind in sorted(p for p in store_root.iterdir() if p.is_dir() and p.name != STAGING):
        for item in sorted(kind.glob("*/*")):
            for path in sorted(item.rglob("*")):
                if path.is_file() and path.name != META:
                    name = path.relative_to(item).as_posix()
                    yield f"store {kind.name}/{item.name} {name} {sha256_file(path)}"


def result_lines(results: Path) -> Iterator[str]:
    """`file path sha256` for every table and video under `results` (links followed)."""
    for top in sorted(results.iterdir()):
        if top.name in SKIPPED or top.name.startswith("."):
            continue
        paths = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in paths:
            if path.suffix in RESULT_SUFFIXES and path.is_file():
                yield f"file {path.relative_to(results).as_posix()} {sha256_file(path)}"


def digest(results: str | Path) -> list[str]:
    """The digest lines of the build under `results`, sorted."""
    results = Path(results)
    store = results / "store"
    lines = list(result_lines(results))
    if store.is_dir():
        lines.extend(store_lines(store))
    return sorted(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfmnist.storage.digest",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("results", help="the workflow's results_dir")
    args = parser.parse_args(argv)
    if not Path(args.results).is_dir():
        print(f"error: {args.results} is not a directory", file=sys.stderr)
        return 2
    for line in digest(args.results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time the DeepfakeBench LMDB export of finished builds, per key, to check it is linear.

    python bench/lmdb_export.py BUILD [BUILD ...] [--variant c23] [--puts-per-txn N]

For each build's work directory (e.g. the 1,000- and 5,000-fake builds `bench/fake_scale.py
--keep DIR` leaves), it writes one variant's LMDB to a temporary folder as the export does
(`write_lmdb`: member reads from the shard tars, key sort, puts, one sync) and prints the time
per key. The tars' member indexes are read once before timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from dfmnist.storage.store import Store
from dfmnist.targets import deepfakebench_lmdb
from dfmnist.targets.annotations import blank_mask
from dfmnist.targets.deepfakebench.layout import deepfakebench_tree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("builds", nargs="+", type=Path)
    ap.add_argument("--variant", default="c23")
    ap.add_argument("--puts-per-txn", type=int, default=deepfakebench_lmdb.PUTS_PER_TXN)
    args = ap.parse_args()
    deepfakebench_lmdb.PUTS_PER_TXN = args.puts_per_txn
    for build in args.builds:
        os.chdir(build)  # the tables name store files relative to the work directory
        manifest = pl.read_parquet("results/dataset/dataset.parquet").filter(
            pl.col("variant") == args.variant)
        annotations = pl.concat([pl.read_parquet(p) for p in
                                 Path("results/annotations", args.variant).glob("*.parquet")])
        store = Store("results/store")
        _, entries = deepfakebench_tree(manifest, annotations, "Bench", 64, blank_mask(64, store),
                                        deepfakebench_lmdb.lmdb_key)
        deepfakebench_lmdb._size_bound(entries)  # parses every tar's member index once
        out = Path(tempfile.mkdtemp(prefix="lmdb_export_"))
        try:
            start = time.perf_counter()
            keys = deepfakebench_lmdb.write_lmdb(out / "db", entries)
            wall = time.perf_counter() - start
        finally:
            shutil.rmtree(out)
        print(f"{build}: {args.variant}, {keys:,} keys, {args.puts_per_txn} puts per "
              f"transaction: {wall:.1f} s, {1e6 * wall / keys:.1f} us per key", flush=True)


if __name__ == "__main__":
    main()

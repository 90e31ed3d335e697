"""The verdict cache from the command line (with the jobs' journals not merged yet).

    python -m dfmnist.liveness stats  [--cache .cache/liveness.sqlite]
    python -m dfmnist.liveness export [--cache ...] --out verdicts.parquet
    python -m dfmnist.liveness merge  [--cache ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfmnist.config.defaults import schema_default
from dfmnist.liveness.cache import COUNTER_NAMES, VerdictCache
from dfmnist.liveness.journal import journal_dir, merge, view

#: The workflow's cache when the config leaves `liveness.cache` out.
DEFAULT_CACHE = schema_default("liveness.cache")


def stats_table(cache: VerdictCache) -> str:
    """Verdicts, passes, hits, misses, calls, retries and errors per provider, as text."""
    columns = ["provider", "verdicts", "passed", *COUNTER_NAMES]
    rows = [[str(row[c]) for c in columns] for row in cache.stats()]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True))
             for r in [columns, *rows]]
    return "\n".join(lines)


def export(cache: VerdictCache, out: Path) -> int:
    """Write every cached verdict to Parquet; returns the number of rows."""
    import polars as pl

    from dfmnist.storage.files import atomic_path

    schema = {"provider": pl.String, "config_version": pl.String, "action": pl.String,
              "video_sha256": pl.String, "passed": pl.Boolean, "score": pl.Float64,
              "details": pl.String, "created": pl.Float64}
    rows = cache.verdict_rows()
    table = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(
        schema=schema)
    with atomic_path(out) as tmp:
        table.write_parquet(tmp)
    return table.height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfmnist.liveness",
                                     description="Inspect the liveness verdict cache.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("stats", "hits, misses and calls per provider"),
                       ("export", "every cached verdict to Parquet"),
                       ("merge", "fold the jobs' verdict journals into the cache")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--cache", type=Path, default=Path(DEFAULT_CACHE),
                         help=f"the SQLite cache (default {DEFAULT_CACHE})")
        if name == "export":
            cmd.add_argument("--out", type=Path, required=True, help="the Parquet file")
    args = parser.parse_args(argv)
    if not args.cache.is_file() and not journal_dir(args.cache).is_dir():
        print(f"no cache at {args.cache}", file=sys.stderr)
        return 1
    if args.command == "merge":
        done = merge(args.cache)
        print(f"merged {done['verdicts']} verdicts from {done['journals']} journals")
        return 0
    with view(args.cache) as cache:  # an in-memory copy: the files are only read
        if args.command == "stats":
            print(stats_table(cache))
        else:
            n = export(cache, args.out)
            print(f"{n} verdicts -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

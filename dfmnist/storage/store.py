"""Content-addressed store: each item lives under a key derived from all of its inputs.

Snakemake decides which jobs run; inside a job the store decides which items compute. An item
is a directory built in a staging place and renamed into `root/kind/kk/key` in one step, so a
killed job never leaves a half-written item behind:

- every file and the directory are fsynced before the rename, the parent entry after it;
- `meta.json` records each file's size and sha256; an item whose files do not match it (a
  truncated copy, a file deleted by hand) counts as absent and is rebuilt, and
  `python -m dfmnist.storage.store verify ROOT` checks a whole store and drops what fails;
- staging directories are named by host and process, so the leftovers of a killed job are
  removed by the next job on that host once the process is gone (and by anyone after a day),
  never while their job is alive;
- items get the permissions the umask allows, so a group can read a shared store;
- kinds and keys are validated, so a tampered manifest cannot address a path outside the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dfmnist.storage.files import fsync_path, sha256_file, share_mode

META = "meta.json"
STAGING = ".staging"
#: A staging directory older than this is a leftover, whichever host made it.
STALE_SECONDS = 24 * 3600

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")


class StoreError(ValueError):
    """A bad kind or key, or a store that cannot be written."""


def content_key(*parts: Any) -> str:
    """A stable sha256 over JSON-serialisable parts (dicts are key-sorted)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _check(kind: str, key: str) -> None:
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise StoreError(f"invalid store kind {kind!r}")
    if not isinstance(key, str) or not _KEY.match(key):
        raise StoreError(f"invalid store key {key!r} (expected 64 hex digits)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """Items addressed by (kind, key); an item exists when its meta and files agree."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._swept = False

    def item_dir(self, kind: str, key: str) -> Path:
        _check(kind, key)
        return self.root / kind / key[:2] / key

    def _files_match(self, item: Path, meta: dict, deep: bool = False) -> str | None:
        """None when every recorded file is there with its size (and sha256 when `deep`)."""
        for name, record in (meta.get("files") or {}).items():
            path = item / name
            if not path.is_file():
                return f"{name} is missing"
            size = path.stat().st_size
            if size != record["size"]:
                return f"{name} has {size} bytes, {record['size']} recorded"
            if deep and record.get("sha256") and sha256_file(path) != record["sha256"]:
                return f"{name} does not match its recorded sha256"
        return None

    def problem(self, kind: str, key: str, deep: bool = False) -> str | None:
        """Why an item does not count as present (None when it does)."""
        item = self.item_dir(kind, key)
        try:
            meta = json.loads((item / META).read_text())
        except FileNotFoundError:
            return "absent"
        except (OSError, ValueError) as exc:
            return f"unreadable {META}: {exc}"
        return self._files_match(item, meta, deep)

    def has(self, kind: str, key: str) -> bool:
        return self.problem(kind, key) is None

    def meta(self, kind: str, key: str) -> dict:
        return json.loads((self.item_dir(kind, key) / META).read_text())

    def file_sha256(self, kind: str, key: str, name: str) -> str:
        """A file's sha256 as recorded at publishing (computed for items that predate it)."""
        record = (self.meta(kind, key).get("files") or {}).get(name) or {}
        return record.get("sha256") or sha256_file(self.item_dir(kind, key) / name)

    def keys(self, kind: str) -> set[str]:
        """Keys of the complete items of one kind."""
        base = self.root / kind
        if not base.is_dir():
            return set()
        return {p.parent.name for p in base.glob(f"*/*/{META}")
                if self.has(kind, p.parent.name)}

    # -- writing -----------------------------------------------------------------------------

    def _staging_root(self) -> Path:
        staging = self.root / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        if not self._swept:
            self._swept = True
            self.sweep_staging()
        return staging

    def sweep_staging(self, stale_seconds: float = STALE_SECONDS) -> list[Path]:
        """Remove staging leftovers: this host's whose process is gone, anyone's when stale."""
        staging = self.root / STAGING
        removed: list[Path] = []
        if not staging.is_dir():
            return removed
        host, now = socket.gethostname(), time.time()
        for entry in staging.iterdir():
            parts = entry.name.split("@")
            owner_host, owner_pid = (parts[1], parts[2]) if len(parts) >= 4 else (None, "")
            try:
                age = now - entry.lstat().st_mtime
            except FileNotFoundError:
                continue
            dead = (owner_host == host and owner_pid.isdigit()
                    and not _pid_alive(int(owner_pid)))
            if dead or age > stale_seconds:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        return removed

    @contextmanager
    def build(self, kind: str, key: str, meta: dict | None = None) -> Iterator[Path]:
        """Yield an empty directory to fill; it becomes the item only if the block succeeds.

        `meta` is read when the block ends, so the block may still add to it. When another job
        published the same key meanwhile, its copy wins (same inputs, same content) and ours is
        discarded; an existing item whose files do not match its meta is replaced.
        """
        final = self.item_dir(kind, key)
        prefix = f"{kind}-{key[:12]}@{socket.gethostname()}@{os.getpid()}@"
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=self._staging_root()))
        try:
            yield tmp
            files = {}
            for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
                name = path.relative_to(tmp).as_posix()
                files[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
                fsync_path(path)
                share_mode(path)
            record = {"kind": kind, "key": key, **(meta or {}), "files": files}
            (tmp / META).write_text(json.dumps(record, sort_keys=True, indent=1, default=str))
            fsync_path(tmp / META)
            share_mode(tmp / META)
            for sub in sorted((p for p in tmp.rglob("*") if p.is_dir()), reverse=True):
                share_mode(sub, directory=True)
                fsync_path(sub)
            share_mode(tmp, directory=True)
            fsync_path(tmp)
            self._publish(tmp, final, kind, key)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _publish(self, tmp: Path, final: Path, kind: str, key: str) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists() and not self.has(kind, key):
            self.drop(kind, key)
        try:
            os.rename(tmp, final)
        except OSError:
            if not self.has(kind, key):
                raise
        fsync_path(final.parent)

    def drop(self, kind: str, key: str) -> None:
        """Remove an item (moved into staging first, so it vanishes in one step)."""
        final = self.item_dir(kind, key)
        if not final.exists():
            return
        trash = Path(tempfile.mkdtemp(prefix=f"dropped-{key[:12]}@", dir=self._staging_root()))
        try:
            os.rename(final, trash / "item")
        except FileNotFoundError:
            pass
        shutil.rmtree(trash, ignore_errors=True)

    def verify(self, deep: bool = True, drop: bool = True) -> list[tuple[str, str, str]]:
        """Check every item; drop those that fail (unless `drop` is false). Returns (kind,
        key, problem) of each."""
        dropped = []
        for kind_dir in sorted(p for p in self.root.iterdir() if p.is_dir()
                               and _KIND.match(p.name)) if self.root.is_dir() else []:
            for item in sorted(kind_dir.glob("*/*")):
                if not item.is_dir() or not _KEY.match(item.name):
                    continue
                problem = self.problem(kind_dir.name, item.name, deep=deep)
                if problem is not None:
                    if drop:
                        self.drop(kind_dir.name, item.name)
                    dropped.append((kind_dir.name, item.name, problem))
        return dropped


def main(argv: list[str] | None = None) -> int:
    """`python -m dfmnist.storage.store verify ROOT [--quick] [--repair [--results DIR]]`: check a
    store; drop what fails, or with --repair quarantine it with the outputs naming it
    (dfmnist.storage.integrity), so that the next plain `snakemake` rebuilds exactly that."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dfmnist.storage.store")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check every item against its meta.json; drop "
                            "the items that fail, so the workflow rebuilds them")
    verify.add_argument("root", nargs="?", default="results/store")
    verify.add_argument("--quick", action="store_true", help="check sizes only, not sha256")
    verify.add_argument("--repair", action="store_true", help="move damaged items and the "
                        "workflow outputs naming them into STORE/.quarantine/, so the next "
                        "plain snakemake run rebuilds them and what depends on them")
    verify.add_argument("--results", help="the workflow's results directory (default: the "
                        "store's parent)")
    args = parser.parse_args(argv)
    store = Store(args.root)
    if not store.root.is_dir():
        parser.exit(2, f"no store at {store.root}\n")
    swept = store.sweep_staging()
    dropped = store.verify(deep=not args.quick, drop=not args.repair)
    total = sum(1 for _ in store.root.glob(f"*/*/*/{META}")) + (0 if args.repair
                                                                  else len(dropped))
    verb = "quarantined" if args.repair else "dropped"
    for kind, key, problem in dropped:
        print(f"{verb} {kind}/{key}: {problem}")
    if args.repair:
        from dfmnist.storage.integrity import quarantine

        results = Path(args.results) if args.results else store.root.parent
        for path in quarantine(store.root, results, dropped):
            print(f"quarantined output {path} (its job reruns)")
    print(f"{total} items checked, {len(dropped)} {verb}, {len(swept)} staging leftovers "
          f"removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

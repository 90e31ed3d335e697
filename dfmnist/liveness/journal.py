"""Per-job verdict journals and the one step that merges them into the shared cache.

Liveness jobs run on several hosts at once (profiles/slurm), and SQLite over a network file
system is safe only while no two hosts write one database file. So:

* a job opens the shared cache (`liveness.cache`) read-only, as an immutable snapshot, and
  reads every journal in ``<cache>.journals/`` as well (verdicts other jobs, even crashed
  ones, received but nobody merged yet);
* it writes its own new verdicts to a journal only it writes,
  ``<cache>.journals/<job>-<host>-<pid>-<random>.jsonl``: one JSON line per verdict, flushed
  and fsynced as it arrives (nothing is lost on a crash), and a closing line with the job's
  counters (hits, misses, calls, ...);
* `merge` (one process at a time, under an O_EXCL lock file) copies the cache to a temporary
  file, folds the journals in, and renames the copy over the cache, so a reader sees either
  the old or the new file, never half of one; journals that were closed are then deleted
  (their names are recorded in the cache in the same commit, so a crash between the two
  steps never counts them twice); journals still open are folded again next time.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfmnist.liveness.base import Verdict
from dfmnist.liveness.cache import COUNTER_NAMES, VerdictCache

SUFFIX = ".jsonl"
#: A merge lock older than this (seconds) was left by a merge that died.
STALE_LOCK = 600.0


def journal_dir(cache_path: str | Path) -> Path:
    """Where the jobs' journals for the cache at `cache_path` live."""
    cache_path = Path(cache_path)
    return cache_path.with_name(cache_path.name + ".journals")


@dataclass
class Journal:
    """What one journal file holds (a last line cut short by a crash is skipped)."""

    name: str
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, dict[str, int]] | None = None  # None while the job has not closed it

    @property
    def closed(self) -> bool:
        return self.counters is not None


def read_journal(path: Path) -> Journal:
    journal = Journal(path.name)
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line still being written, or cut short by a crash
            if not isinstance(entry, dict):
                continue
            if entry.get("kind") == "verdict":
                journal.verdicts.append(entry)
            elif entry.get("kind") == "close":
                journal.counters = entry.get("counters") or {}
    return journal


def read_journals(cache_path: str | Path) -> list[Journal]:
    folder = journal_dir(cache_path)
    if not folder.is_dir():
        return []
    return [read_journal(p) for p in sorted(folder.glob(f"*{SUFFIX}"))]


def _verdict(entry: dict[str, Any]) -> Verdict:
    return Verdict(passed=bool(entry["passed"]), score=float(entry["score"]),
                   provider=str(entry["provider"]), action=str(entry["action"]),
                   details=dict(entry.get("details") or {}))


def _key(provider: str, version: str, action: str, sha256: str) -> tuple[str, str, str, str]:
    return provider, version, action, sha256


class JobCache:
    """One job's view of the verdicts: the shared cache (read-only) and every journal; what
    it learns goes to its own journal. Same `get`/`put`/`record` as VerdictCache."""

    def __init__(self, cache_path: str | Path, job: str) -> None:
        self.cache_path = Path(cache_path)
        folder = journal_dir(self.cache_path)
        folder.mkdir(parents=True, exist_ok=True)
        self._snapshot = (VerdictCache(self.cache_path, readonly=True)
                          if self.cache_path.is_file() else None)
        self._pending: dict[tuple[str, str, str, str], Verdict] = {}
        for journal in read_journals(self.cache_path):
            for e in journal.verdicts:
                self._pending[_key(e["provider"], e["config_version"], e["action"],
                                   e["video_sha256"])] = _verdict(e)
        tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", job)[:80]
        host = re.sub(r"[^A-Za-z0-9_.-]+", "_", socket.gethostname())[:60]
        self.path = folder / f"{tag}-{host}-{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        self._file = open(self.path, "x", encoding="utf-8")  # noqa: SIM115 (closed in close)
        self._counts: dict[str, Counter[str]] = {}
        self._write({"kind": "open", "job": job, "host": socket.gethostname(),
                     "pid": os.getpid(), "time": time.time()})

    def _write(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry, sort_keys=True, default=float) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def get(self, provider: str, config_version: str, action: str, sha256: str
            ) -> Verdict | None:
        found = self._pending.get(_key(provider, config_version, action, sha256))
        if found is None and self._snapshot is not None:
            found = self._snapshot.get(provider, config_version, action, sha256)
        return found

    def put(self, config_version: str, sha256: str, verdict: Verdict) -> None:
        self._write({"kind": "verdict", "provider": verdict.provider,
                     "config_version": config_version, "action": verdict.action,
                     "video_sha256": sha256, "passed": verdict.passed, "score": verdict.score,
                     "details": verdict.details, "created": time.time()})
        self._pending[_key(verdict.provider, config_version, verdict.action, sha256)] = verdict

    def record(self, provider: str, **counts: int) -> None:
        unknown = set(counts) - set(COUNTER_NAMES)
        if unknown:
            raise ValueError(f"unknown counters {sorted(unknown)}; known: {COUNTER_NAMES}")
        self._counts.setdefault(provider, Counter()).update(
            {k: int(v) for k, v in counts.items() if v})

    def close(self) -> None:
        if self._file.closed:
            return
        self._write({"kind": "close", "time": time.time(),
                     "counters": {p: dict(c) for p, c in self._counts.items()}})
        self._file.close()
        if self._snapshot is not None:
            self._snapshot.close()

    def __enter__(self) -> JobCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fold(cache: VerdictCache, journals: list[Journal]) -> int:
    """Insert the journals' verdicts into `cache` (idempotent) and add the counters of closed
    journals not folded before; returns the number of verdicts read."""
    n = 0
    with cache.transaction():
        for journal in journals:
            for e in journal.verdicts:
                cache.put(str(e["config_version"]), str(e["video_sha256"]), _verdict(e),
                          created=float(e.get("created") or time.time()))
                n += 1
            if journal.closed and not cache.merged(journal.name):
                for provider, counts in (journal.counters or {}).items():
                    cache.record(provider, **{k: int(v) for k, v in counts.items()
                                              if k in COUNTER_NAMES})
                cache.mark_merged(journal.name)
    return n


def view(cache_path: str | Path) -> VerdictCache:
    """An in-memory copy of the cache with every journal folded in (what stats and export
    show); the files are only read."""
    memory = VerdictCache(":memory:")
    if Path(cache_path).is_file():
        memory.copy_from(cache_path)
    fold(memory, read_journals(cache_path))
    return memory


class MergeBusy(RuntimeError):
    """Another merge holds the lock."""


def merge(cache_path: str | Path) -> dict[str, int]:
    """Fold every journal into the cache at `cache_path` (see the module docstring); returns
    the journals read, verdicts folded and journals removed."""
    cache_path = Path(cache_path)
    folder = journal_dir(cache_path)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "merge.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        if time.time() - lock.stat().st_mtime < STALE_LOCK:
            raise MergeBusy(f"another merge of {cache_path} is running ({lock})") from None
        lock.unlink(missing_ok=True)  # left by a merge that died
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
    os.close(fd)
    tmp = cache_path.with_name(f"{cache_path.name}.merge-{os.getpid()}.tmp")
    try:
        journals = read_journals(cache_path)
        with VerdictCache(tmp) as copy:
            if cache_path.is_file():
                copy.copy_from(cache_path)
            n = fold(copy, journals)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, cache_path)
        for leftover in ("-wal", "-shm"):  # of an older WAL-mode file, already copied
            cache_path.with_name(cache_path.name + leftover).unlink(missing_ok=True)
        removed = 0
        for journal in journals:
            if journal.closed:
                (folder / journal.name).unlink(missing_ok=True)
                removed += 1
        return {"journals": len(journals), "verdicts": n, "removed": removed}
    finally:
        tmp.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)

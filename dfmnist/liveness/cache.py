"""The shared verdict store: one SQLite file, written by one process at a time.

Keyed by (provider, provider config version, action, video sha256), so a regeneration never
asks twice about the same video. Only verdicts are stored; errors never are. Liveness jobs
never write this file: they read it as an immutable snapshot and append their new verdicts to
journals of their own, which one merge folds in (see `dfmnist.liveness.journal`). It uses a
rollback journal, not WAL: WAL needs shared memory, which hosts on a network file system do
not share.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from dfmnist.liveness.base import Verdict

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    provider TEXT NOT NULL,
    config_version TEXT NOT NULL,
    action TEXT NOT NULL,
    video_sha256 TEXT NOT NULL,
    passed INTEGER NOT NULL,
    score REAL NOT NULL,
    details TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (provider, config_version, action, video_sha256)
)
"""

# Running totals per provider: cache hits and misses, requests sent, retries, failures.
_COUNTERS = """
CREATE TABLE IF NOT EXISTS counters (
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (provider, name)
)
"""

# Journals already folded in (their counters must not be added twice).
_MERGED = """
CREATE TABLE IF NOT EXISTS merged_journals (
    name TEXT PRIMARY KEY,
    merged REAL NOT NULL
)
"""

COUNTER_NAMES = ("hits", "misses", "calls", "retries", "token_calls", "errors")


class VerdictCache:
    """Verdicts by (provider, config version, action, video sha256), plus usage counters."""

    def __init__(self, path: str | Path, timeout: float = 60.0, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            # nobody writes the file in place (a merge renames a new file over it), so it can
            # be read without locks, which network file systems do not always honour; a
            # leftover WAL from an older version still needs the ordinary read path
            wal = self.path.with_name(self.path.name + "-wal").exists()
            uri = f"{self.path.resolve().as_uri()}?mode=ro{'' if wal else '&immutable=1'}"
            self._db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
            return
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=DELETE")  # also turns an older WAL file back
        self._db.execute(_SCHEMA)
        self._db.execute(_COUNTERS)
        self._db.execute(_MERGED)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> VerdictCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, provider: str, config_version: str, action: str, sha256: str
            ) -> Verdict | None:
        row = self._db.execute(
            "SELECT passed, score, details FROM verdicts WHERE provider=? AND config_version=?"
            " AND action=? AND video_sha256=?",
            (provider, config_version, action, sha256),
        ).fetchone()
        if row is None:
            return None
        return Verdict(passed=bool(row[0]), score=float(row[1]), provider=provider,
                       action=action, details=json.loads(row[2]))

    def put(self, config_version: str, sha256: str, verdict: Verdict,
            created: float | None = None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (verdict.provider, config_version, verdict.action, sha256, int(verdict.passed),
             float(verdict.score), json.dumps(verdict.details, sort_keys=True, default=float),
             time.time() if created is None else created),
        )

    def copy_from(self, path: str | Path) -> None:
        """Replace this database's content by the SQLite file at `path` (backup API)."""
        source = sqlite3.connect(path, isolation_level=None)
        try:
            source.backup(self._db)
        finally:
            source.close()
        if str(self.path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=DELETE")  # the copy of an older WAL file
        self._db.execute(_MERGED)

    def merged(self, name: str) -> bool:
        """Whether the journal called `name` was folded in before."""
        return self._db.execute("SELECT 1 FROM merged_journals WHERE name=?",
                                (name,)).fetchone() is not None

    def mark_merged(self, name: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO merged_journals VALUES (?, ?)",
                         (name, time.time()))

    def transaction(self) -> _Commit:
        """`with cache.transaction():` groups writes into one commit."""
        self._db.execute("BEGIN")
        return _Commit(self._db)

    def count(self, provider: str | None = None) -> int:
        if provider is None:
            return self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
        return self._db.execute(
            "SELECT COUNT(*) FROM verdicts WHERE provider=?", (provider,)
        ).fetchone()[0]

    def record(self, provider: str, **counts: int) -> None:
        """Add `counts` (names from COUNTER_NAMES) to the provider's running totals."""
        unknown = set(counts) - set(COUNTER_NAMES)
        if unknown:
            raise ValueError(f"unknown counters {sorted(unknown)}; known: {COUNTER_NAMES}")
        for name, n in counts.items():
            if n:
                self._db.execute(
                    "INSERT INTO counters VALUES (?, ?, ?) ON CONFLICT (provider, name)"
                    " DO UPDATE SET n = n + excluded.n", (provider, name, int(n)))

    def stats(self) -> list[dict[str, int | str]]:
        """Per provider: verdicts stored, how many passed, and the running counters."""
        rows: dict[str, dict[str, int | str]] = {}

        def row(provider: str) -> dict[str, int | str]:
            return rows.setdefault(provider, {"provider": provider, "verdicts": 0, "passed": 0,
                                              **{name: 0 for name in COUNTER_NAMES}})

        for provider, n, passed in self._db.execute(
                "SELECT provider, COUNT(*), SUM(passed) FROM verdicts GROUP BY provider"):
            row(provider).update(verdicts=n, passed=int(passed or 0))
        for provider, name, n in self._db.execute("SELECT provider, name, n FROM counters"):
            row(provider)[name] = n
        return [rows[p] for p in sorted(rows)]

    def verdict_rows(self) -> list[dict]:
        """Every stored verdict as a plain dict (details still JSON text)."""
        cursor = self._db.execute(
            "SELECT provider, config_version, action, video_sha256, passed, score, details,"
            " created FROM verdicts ORDER BY provider, action, video_sha256")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor]


class _Commit:
    """Commits on a clean exit, rolls back on an exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        return self._db

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")

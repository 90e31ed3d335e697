"""A verdict cache shared by every job and run: SQLite in WAL mode.

Keyed by (provider, provider config version, action, video sha256), so a regeneration never
asks twice about the same video. Only verdicts are stored; errors never are.
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

COUNTER_NAMES = ("hits", "misses", "calls", "retries", "token_calls", "errors")


class VerdictCache:
    """Verdicts by (provider, config version, action, video sha256), plus usage counters."""

    def __init__(self, path: str | Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.execute(_COUNTERS)

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

    def put(self, config_version: str, sha256: str, verdict: Verdict) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (verdict.provider, config_version, verdict.action, sha256, int(verdict.passed),
             float(verdict.score), json.dumps(verdict.details, sort_keys=True, default=float),
             time.time()),
        )

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

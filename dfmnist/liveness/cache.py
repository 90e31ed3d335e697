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


class VerdictCache:
    def __init__(self, path: str | Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

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

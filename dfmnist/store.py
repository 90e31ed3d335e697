"""Content-addressed store: each item lives under a key derived from all of its inputs.

Snakemake decides which jobs run; inside a job the store decides which items compute. An item
is a directory built in a temporary place and renamed into `root/kind/kk/key` in one step, so a
killed job never leaves a half-written item behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

META = "meta.json"


def content_key(*parts: Any) -> str:
    """A stable sha256 over JSON-serialisable parts (dicts are key-sorted)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class Store:
    """Items addressed by (kind, key); existence of the directory means the item is complete."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def item_dir(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / key

    def has(self, kind: str, key: str) -> bool:
        return (self.item_dir(kind, key) / META).is_file()

    def meta(self, kind: str, key: str) -> dict:
        return json.loads((self.item_dir(kind, key) / META).read_text())

    def keys(self, kind: str) -> set[str]:
        """Keys of the complete items of one kind."""
        base = self.root / kind
        if not base.is_dir():
            return set()
        return {p.parent.name for p in base.glob(f"*/*/{META}")}

    @contextmanager
    def build(self, kind: str, key: str, meta: dict | None = None) -> Iterator[Path]:
        """Yield an empty directory to fill; it becomes the item only if the block succeeds.

        When another job published the same key meanwhile, its copy wins (same inputs,
        same content) and ours is discarded.
        """
        final = self.item_dir(kind, key)
        staging_root = self.root / ".staging"
        staging_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{kind}-{key[:12]}-", dir=staging_root))
        try:
            yield tmp
            (tmp / META).write_text(json.dumps({"kind": kind, "key": key, **(meta or {})},
                                               sort_keys=True, indent=1, default=str))
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)
            except OSError:
                if not self.has(kind, key):
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

"""What every export shares: flat video names in FaceForensics++'s style, and linking files."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def flat(part: str) -> str:
    """One path component from an id such as `identity/video/clip` (FF++ names are flat)."""
    return part.replace("/", "-")


def source_name(row: dict) -> str:
    """A fake's source in FaceForensics++'s sense: the driving take that moved the target's
    face (`{action}-{take}`), or for a face swap the identity whose face it shows (`id{B}`)."""
    if row.get("donor"):
        return f"id{flat(row['donor'])}"
    return f"{row['action']}-{flat(row['take'])}"


def video_name(row: dict) -> str:
    """A real is its clip; a fake is `{target}_{source}` as in FaceForensics++: the clip whose
    face is animated or swapped (the target), then its `source_name`."""
    if row["label"] == "real":
        return flat(row["source_id"])
    return f"{flat(row['source_id'])}_{source_name(row)}"


def link(src: str | Path, dst: Path) -> None:
    """Hard link `dst` to `src`; across filesystems, a relative symbolic link instead."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        os.symlink(os.path.relpath(Path(src).resolve(), dst.parent.resolve()), dst)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty sibling folder to fill; it replaces `path` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

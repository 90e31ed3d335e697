"""What is wrong with a media file, in words a user understands.

ffmpeg says "moov atom not found" for a zero-byte file, a text file named .mp4 and a recording
whose phone died before it was finalised alike. The bytes tell them apart: an MP4/MOV file is a
sequence of boxes (ISO/IEC 14496-12: a 4-byte size then a 4-byte type such as `ftyp`), a
Matroska/WebM file starts with the EBML magic, an AVI with `RIFF....AVI `.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Box types that may open an ISO base media file (MP4, MOV, M4V, 3GP).
_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}
_EBML = b"\x1a\x45\xdf\xa3"

EMPTY = "empty file (0 bytes)"
NOT_FOUND = "file not found"


def container_of(head: bytes) -> str | None:
    """'iso', 'matroska', 'avi' or None, from a file's first bytes."""
    if len(head) >= 8 and head[4:8] in _ISO_BOXES:
        return "iso"
    if head.startswith(_EBML):
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable / len(head) > 0.95


def unreadable_reason(path: str | Path, ffmpeg_message: str = "") -> str:
    """Why `path` cannot be opened as a video: the file's state first, ffmpeg's words last."""
    path = Path(path)
    if not os.path.lexists(path):
        return NOT_FOUND
    if not path.exists():
        return f"broken link (points to {os.readlink(path)}, which does not exist)"
    if path.is_dir():
        return "a folder, not a video file"
    if not path.is_file():  # a FIFO or a device: opening it could block forever
        return "not a regular file (a pipe, socket or device)"
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(512)
    except PermissionError:
        return "cannot read the file: permission denied"
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    if size == 0:
        return EMPTY
    kind = container_of(head)
    detail = first_error_line(ffmpeg_message)
    if kind == "iso" and "moov atom not found" in ffmpeg_message:
        return ("damaged or truncated container: the MP4/MOV index (moov box) is missing, so "
                "the recording was never finalised or the copy is incomplete")
    if kind is None:
        if _looks_like_text(head):
            return "not a video file (it holds text)"
        return "not a video file (unknown format)" + (f"; ffmpeg: {detail}" if detail else "")
    return "damaged container (ffmpeg cannot open it)" + (f"; ffmpeg: {detail}" if detail else "")


def first_error_line(message: str) -> str:
    """The most telling line of ffmpeg's stderr: the first one, without the `[demuxer @ 0x..]`."""
    for line in message.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("[") and "] " in line:
            line = line.split("] ", 1)[1]
        return line[:200]
    return ""

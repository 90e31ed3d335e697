"""Finding the inputs in a user's folders, once per invocation, with nothing silently dropped.

Files copied from phones and other systems bring company: macOS resource forks
(`._IMG_0001.MOV`), `.DS_Store`, `Thumbs.db`, notes and sidecar files. Hidden entries (a name
starting with a dot) are ignored, other files that are not videos (or frame images) too, and
every ignored entry is counted with its reason so that the log says what was skipped. Two inputs
that would get one id (`a.mp4` and `a.mov` in one folder) are an error naming both: silently
keeping one would lose the other.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

#: A clip or a take is a video file with one of these suffixes (any case) ...
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".3gp", ".mts")
#: ... or, for source clips, a folder of frame images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class InputCollision(ValueError):
    """Two inputs map to one id."""


@dataclass
class Ignored:
    """Entries skipped while discovering inputs, with the reason for each."""

    entries: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def add(self, path: str | os.PathLike, reason: str) -> None:
        self.entries.append((os.fspath(path), reason))

    def summary(self) -> str:
        """'3 ignored: 2 hidden, 1 not a video' (or 'none ignored')."""
        if not self.entries:
            return "none ignored"
        counts = Counter(reason for _, reason in self.entries)
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
        return f"{len(self.entries)} ignored: {parts}"


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def _entries(folder: str | os.PathLike, ignored: Ignored) -> list[os.DirEntry]:
    """Visible entries of `folder`, sorted by name; hidden ones go to `ignored`."""
    out = []
    with os.scandir(folder) as it:
        for entry in it:
            if is_hidden(entry.name):
                ignored.add(entry.path, "hidden")
            else:
                out.append(entry)
    return sorted(out, key=lambda e: e.name)


def _claim(ids: dict[str, Path], key: str, path: Path, kind: str, prefix: str = "") -> None:
    """Record `path` under `key`, or fail naming both files that want it."""
    if key in ids:
        first, second = sorted([ids[key].name, path.name])
        raise InputCollision(f"{kind} '{prefix}{key}' has two inputs in {path.parent}: {first} "
                             f"and {second}; rename or remove one")
    ids[key] = path


def video_files(folder: str | os.PathLike, ignored: Ignored, prefix: str = ""
                ) -> dict[str, Path]:
    """Stem -> video file of one folder (not recursive)."""
    found: dict[str, Path] = {}
    for entry in _entries(folder, ignored):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=True):
            ignored.add(path, "folder")
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            _claim(found, path.stem, path, "take", prefix)
        else:
            ignored.add(path, "not a video")
    return found


def has_frame_images(folder: str | os.PathLike) -> bool:
    with os.scandir(folder) as it:
        return any(not is_hidden(e.name) and Path(e.name).suffix.lower() in IMAGE_SUFFIXES
                   for e in it)


def frame_images(folder: str | os.PathLike) -> list[Path]:
    """The visible frame images of a frame folder, sorted by name."""
    with os.scandir(folder) as it:
        return sorted(Path(e.path) for e in it if not is_hidden(e.name) and e.is_file()
                      and Path(e.name).suffix.lower() in IMAGE_SUFFIXES)


def driving_takes(root: str | os.PathLike, actions: list[str]
                  ) -> tuple[dict[str, dict[str, Path]], Ignored]:
    """action -> take id (file stem) -> video, for `{root}/{action}/{take}.*`."""
    ignored = Ignored()
    takes = {}
    for action in actions:
        folder = Path(root) / action
        takes[action] = video_files(folder, ignored, f"{action}/") if folder.is_dir() \
            else {}
    return takes, ignored


def source_clips(root: str | os.PathLike) -> tuple[dict[str, Path], Ignored]:
    """Clip id 'identity/video/clip' -> path, for a VoxCeleb1-style tree under `root`.

    A clip is `{identity}/{video}/{clip}.mp4` (any of VIDEO_SUFFIXES) or a folder
    `{identity}/{video}/{clip}/` of frame images (VoxCeleb1's unzipped face frames).
    """
    ignored = Ignored()
    clips: dict[str, Path] = {}
    for identity in _entries(root, ignored):
        if not identity.is_dir():
            ignored.add(identity.path, "not an identity folder")
            continue
        for video in _entries(identity.path, ignored):
            if not video.is_dir():
                ignored.add(video.path, "not a video folder")
                continue
            in_video: dict[str, Path] = {}
            for clip in _entries(video.path, ignored):
                path = Path(clip.path)
                if clip.is_dir():
                    if has_frame_images(path):
                        _claim(in_video, clip.name, path, "clip")
                    else:
                        ignored.add(path, "folder without frame images")
                elif path.suffix.lower() in VIDEO_SUFFIXES:
                    _claim(in_video, path.stem, path, "clip")
                else:
                    ignored.add(path, "not a video")
            clips.update({f"{identity.name}/{video.name}/{c}": p for c, p in in_video.items()})
    return dict(sorted(clips.items())), ignored

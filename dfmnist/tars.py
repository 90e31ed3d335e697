"""Many small files as one: uncompressed tar members, each read with one positioned read.

A store item that would hold a file per frame holds one tar instead (a cluster volume counts
files); the members are stored uncompressed, so a reader that knows a member's offset reads
its bytes directly, and the tar is still a plain archive any tool (and WebDataset) reads.
A shard's tar holds thousands of members: `open_tar` reads its headers once per process.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path


def write_tar(path: str | os.PathLike, members: Iterable[tuple[str, bytes]]) -> None:
    """A tar of (name, bytes) members, in the order given."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))


class MemberTar:
    """Where each member of a tar lies (offset, size), read from its headers once."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        with tarfile.open(self.path, "r:") as tar:
            self.members = {m.name: (m.offset_data, m.size) for m in tar if m.isfile()}
        self._folders: dict[str, list[str]] | None = None

    def folder(self, prefix: str) -> list[str]:
        """The members under `prefix/` (one sample of a shard tar), in tar order; the index is
        built once, so listing every sample of a tar stays linear in its members (the list is the
        index's own: read it, do not change it)."""
        if self._folders is None:
            self._folders = {}
            for name in self.members:
                self._folders.setdefault(name.split("/", 1)[0], []).append(name)
        return self._folders.get(prefix, [])

    def read(self, name: str) -> bytes:
        """The bytes of member `name` (FileNotFoundError when the tar has none)."""
        if name not in self.members:
            raise FileNotFoundError(f"no {name} in {self.path}")
        offset, length = self.members[name]
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        if len(data) != length:
            raise ValueError(f"{self.path} is truncated at {name}")
        return data


#: Parsed tars by (path, inode, size, mtime): a rewritten file is parsed again.
_OPENED: dict[tuple, MemberTar] = {}
_OPENED_MAX = 256


def open_tar(path: str | os.PathLike) -> MemberTar:
    """The member index of the tar at `path`, parsed once per process while it is unchanged."""
    info = os.stat(path)
    ident = (os.path.abspath(path), info.st_ino, info.st_size, info.st_mtime_ns)
    tar = _OPENED.get(ident)
    if tar is None:
        from dfmnist.integrity import check_store_file

        check_store_file(path)  # a store file: its bytes as published, once per process
        if len(_OPENED) >= _OPENED_MAX:
            _OPENED.pop(next(iter(_OPENED)))
        tar = _OPENED[ident] = MemberTar(path)
    return tar


def _tar_sha256(tar: Path, store) -> str:
    """The tar's sha256: as recorded when a store item holding it was published (shard tars
    are store files: no re-reading of every frame per export), else computed."""
    from dfmnist.files import sha256_file

    item = tar.parent
    kind = item.parent.parent
    if kind.parent.resolve() == store.root.resolve() and store.has(kind.name, item.name):
        return store.file_sha256(kind.name, item.name, tar.name)
    return sha256_file(tar)


def unpacked(tar: str | os.PathLike, store, names: list[str] | None = None) -> Path:
    """The members `names` (default all) of `tar` as files in a store item, made once per tar
    content and names, for tools that need a file per member: an export hard-links them
    instead of copying per export, and unpacks only the members it links."""
    from dfmnist.store import content_key

    members = open_tar(tar)
    wanted = sorted(members.members if names is None else set(names))
    key = content_key("unpacked_tar", _tar_sha256(Path(tar), store), wanted)
    if not store.has("unpacked_tar", key):
        with store.build("unpacked_tar", key, {"tar": str(tar), "members": len(wanted)}) as tmp:
            for name in wanted:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(members.read(name))
    return store.item_dir("unpacked_tar", key)

"""Many small files as one: uncompressed tar members, each read with one positioned read.

A store item that would hold a file per frame holds one tar instead (a cluster volume counts
files); the members are stored uncompressed, so a reader that knows a member's offset reads
its bytes directly, and the tar is still a plain archive any tool (and WebDataset) reads.
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


def unpacked(tar: str | os.PathLike, store) -> Path:
    """The members of `tar` as files in a store item (made once per tar content), for tools
    that need a file per member: an export hard-links them instead of copying per export."""
    from dfmnist.files import sha256_file
    from dfmnist.store import content_key

    key = content_key("unpacked_tar", sha256_file(tar))
    if not store.has("unpacked_tar", key):
        members = MemberTar(tar)
        with store.build("unpacked_tar", key, {"tar": str(tar)}) as tmp:
            for name in members.members:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(members.read(name))
    return store.item_dir("unpacked_tar", key)

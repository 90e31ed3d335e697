"""Many small files as one: uncompressed tar members, each read with one positioned read.

A store item that would hold a file per frame holds one tar instead (a cluster volume counts
files); the members are stored uncompressed, so a reader that knows a member's offset reads
its bytes directly, and the tar is still a plain archive any tool (and WebDataset) reads.
A shard's tar holds thousands of members: `open_tar` reads its headers once per process.

Shard items hold a whole shard's samples as one tar, so files grow with shards.

A shard item's key is its kind and the sorted content keys of its samples (one sample per
video), so an unchanged shard is the same item and a shard that gains, loses or changes one
video is a new one. Inside the tar a sample's members are `{sample key}/{name}` (WebDataset
layout: the sample key of `abc…/0008.256.png` is `abc…/0008`, its field `256.png`); the
sample key is a fixed-length hex content key, so any video id fits a tar header and no member
name can point outside an unpacked folder.

Building a new shard item copies the members of samples that an older item of the same kind
already holds (a positioned read each) instead of computing them again: changing one video
of a shard re-decodes that video only. The item's `meta.json` lists its samples (what each
sample's `info` was and whether it was `computed` or `copied`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from dfmnist.storage.store import META, Store, content_key

log = logging.getLogger(__name__)


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
        from dfmnist.storage.integrity import check_store_file

        check_store_file(path)  # a store file: its bytes as published, once per process
        if len(_OPENED) >= _OPENED_MAX:
            _OPENED.pop(next(iter(_OPENED)))
        tar = _OPENED[ident] = MemberTar(path)
    return tar


def _tar_sha256(tar: Path, store) -> str:
    """The tar's sha256: as recorded when a store item holding it was published (shard tars
    are store files: no re-reading of every frame per export), else computed."""
    from dfmnist.storage.files import sha256_file

    item = tar.parent
    kind = item.parent.parent
    if kind.parent.resolve() == store.root.resolve() and store.has(kind.name, item.name):
        return store.file_sha256(kind.name, item.name, tar.name)
    return sha256_file(tar)


def unpacked(tar: str | os.PathLike, store, names: list[str] | None = None) -> Path:
    """The members `names` (default all) of `tar` as files in a store item, made once per tar
    content and names, for tools that need a file per member: an export hard-links them
    instead of copying per export, and unpacks only the members it links."""
    from dfmnist.storage.store import content_key

    members = open_tar(tar)
    wanted = sorted(members.members if names is None else set(names))
    key = content_key("unpacked_tar", _tar_sha256(Path(tar), store), wanted)
    if not store.has("unpacked_tar", key):
        with store.build("unpacked_tar", key, {"tar": str(tar), "members": len(wanted)}) as tmp:
            for name in wanted:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(members.read(name))
    return store.item_dir("unpacked_tar", key)


# Shard items: a whole shard's samples as one tar item of the store.

#: The meta.json field that lists a shard item's samples: {sample key: info}.
SAMPLES = "samples"

#: Computes one sample: its members (names relative to the sample) and its info for the meta.
Compute = Callable[[], tuple[list[tuple[str, bytes]], dict]]


def shard_key(kind: str, sample_keys: list[str], layout: str) -> str:
    """The key of the shard item holding exactly these samples (order and repeats ignored)."""
    return content_key(kind, "shard", layout, sorted(set(sample_keys)))


def member(sample: str, name: str) -> str:
    """A sample's member in a shard tar."""
    return f"{sample}/{name}"


def older_samples(store: Store, kind: str, wanted: set[str],
                  layout: str) -> dict[str, tuple[Path, dict]]:
    """{sample key: (shard tar that holds it, its info)} for the `wanted` samples that a
    complete item of `kind` written in `layout` already holds (a bumped layout recomputes
    every sample, whatever its key)."""
    found: dict[str, tuple[Path, dict]] = {}
    base = store.root / kind
    if not wanted or not base.is_dir():
        return found
    for meta_path in sorted(base.glob(f"*/*/{META}")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("layout") != layout:
            continue
        samples = meta.get(SAMPLES) or {}
        hits = [s for s in samples if s in wanted and s not in found]
        if not hits or not store.has(kind, meta_path.parent.name):
            continue
        tar = meta_path.parent / meta["tar"]
        for sample in hits:
            found[sample] = (tar, {k: v for k, v in samples[sample].items() if k != "made"})
        if len(found) == len(wanted):
            break
    return found


def ensure_shard(store: Store, kind: str, layout: str, tar_name: str,
                 samples: dict[str, Compute],
                 older: dict[str, tuple[Path, dict]] | None = None) -> tuple[str, Path]:
    """The shard item of `samples` ({sample key: how to compute it}): built unless stored,
    copying samples that older items of `kind` hold (`older`: what `older_samples` found, when
    the caller looked already). Returns (item key, tar path)."""
    key = shard_key(kind, list(samples), layout)
    if not store.has(kind, key):
        older = older_samples(store, kind, set(samples), layout) if older is None else older
        meta: dict = {"layout": layout, "tar": tar_name, SAMPLES: {}}

        def members() -> Iterator[tuple[str, bytes]]:
            for sample in sorted(samples):
                if sample in older:
                    tar, info = older[sample]
                    source = open_tar(tar)
                    for name in source.folder(sample):
                        yield name, source.read(name)
                    meta[SAMPLES][sample] = {**info, "made": "copied"}
                    continue
                computed, info = samples[sample]()
                for name, data in computed:
                    yield member(sample, name), data
                meta[SAMPLES][sample] = {**info, "made": "computed"}

        with store.build(kind, key, meta) as tmp:
            write_tar(tmp / tar_name, members())
        made = [s["made"] for s in meta[SAMPLES].values()]
        log.info("%s shard %s: %d samples computed, %d copied from older shards", kind,
                 key[:12], made.count("computed"), made.count("copied"))
    return key, store.item_dir(kind, key) / tar_name


def shard_samples(store: Store, kind: str, key: str) -> dict[str, dict]:
    """{sample key: info} of a stored shard item (info has `made`: computed or copied)."""
    return store.meta(kind, key)[SAMPLES]

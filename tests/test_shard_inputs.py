"""Shard input lists: rewritten exactly when an item changes, any file name kept."""

from __future__ import annotations

import os
from pathlib import Path

from dfmnist.storage.shard_inputs import MISSING, read_list, stamp, write_lists


def test_lists_change_only_with_their_items(tmp_path: Path):
    clips = tmp_path / "clips"
    clips.mkdir()
    a, b = clips / "a.mp4", clips / "odd {name}\twith tab.mp4"
    a.write_bytes(b"x" * 10)
    b.write_bytes(b"y" * 20)
    (clips / "link.mp4").symlink_to(a)
    (clips / "broken.mp4").symlink_to(clips / "gone.mp4")
    shards = {0: {"id/a": str(a), "id/b": str(b)},
              1: {"id/link": str(clips / "link.mp4"), "id/broken": str(clips / "broken.mp4"),
                  "id/made": "results/demo/clip.mp4"}}
    made_elsewhere = lambda path: not path.startswith("results/")  # noqa: E731
    paths = write_lists(shards, tmp_path / "lists", made_elsewhere)
    assert read_list(paths[0]) == shards[0] and read_list(paths[1]) == shards[1]
    assert stamp(str(clips / "broken.mp4")) == MISSING
    assert len(stamp(str(clips / "link.mp4")).split(":")) == 3  # target and link
    before = {s: os.stat(p).st_mtime_ns for s, p in paths.items()}
    # same inputs: nothing rewritten
    write_lists(shards, tmp_path / "lists", made_elsewhere)
    assert {s: os.stat(p).st_mtime_ns for s, p in paths.items()} == before
    # one clip replaced in place (same name, new bytes): only its shard's list changes
    b.write_bytes(b"z" * 21)
    write_lists(shards, tmp_path / "lists", made_elsewhere)
    assert os.stat(paths[0]).st_mtime_ns != before[0]
    assert os.stat(paths[1]).st_mtime_ns == before[1]
    # the target behind a link replaced: its shard's list changes
    a.write_bytes(b"x" * 11)
    write_lists(shards, tmp_path / "lists", made_elsewhere)
    assert os.stat(paths[1]).st_mtime_ns != before[1]

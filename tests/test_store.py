from pathlib import Path

import pytest

from dfmnist.storage.store import Store, content_key


def test_content_key_is_stable_and_order_free_for_dicts():
    a = content_key("fake", {"b": 1, "a": [1, 2]}, "x")
    assert a == content_key("fake", {"a": [1, 2], "b": 1}, "x")
    assert a != content_key("fake", {"a": [1, 2], "b": 2}, "x")
    assert len(a) == 64


def test_build_publishes_item_with_meta(tmp_path: Path):
    store = Store(tmp_path)
    key = content_key("demo")
    assert not store.has("thing", key)
    with store.build("thing", key, {"note": "hello"}) as tmp:
        (tmp / "data.txt").write_text("payload")
    assert store.has("thing", key)
    assert (store.item_dir("thing", key) / "data.txt").read_text() == "payload"
    assert store.meta("thing", key)["note"] == "hello"
    assert store.keys("thing") == {key}


def test_failed_build_leaves_nothing(tmp_path: Path):
    store = Store(tmp_path)
    key = content_key("boom")
    with pytest.raises(RuntimeError), store.build("thing", key) as tmp:
        (tmp / "half.bin").write_bytes(b"123")
        raise RuntimeError("killed mid-write")
    assert not store.has("thing", key)
    assert not store.item_dir("thing", key).exists()
    assert list((tmp_path / ".staging").iterdir()) == []


def test_second_publisher_of_same_key_is_discarded(tmp_path: Path):
    store = Store(tmp_path)
    key = content_key("same")
    with store.build("thing", key) as first:
        (first / "v").write_text("1")
    with store.build("thing", key) as second:
        (second / "v").write_text("2")
    assert (store.item_dir("thing", key) / "v").read_text() == "1"

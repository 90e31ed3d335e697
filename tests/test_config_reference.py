"""The configuration reference the docs site builds: a row per schema key, defaults from the
schema, meanings from the schema or config.yaml's comments."""

from __future__ import annotations

from pathlib import Path

import yaml

from dfmnist.config.reference import (
    commented_keys,
    reference_markdown,
    schema_keys,
    undocumented,
    yaml_comments,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA, CONFIG = REPO / "schemas" / "config.schema.yaml", REPO / "config.yaml"


def rows() -> dict[str, list[str]]:
    table = [line for line in reference_markdown(SCHEMA, CONFIG).splitlines()
             if line.startswith("| `")]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in table]
    return {c[0].strip("`"): c[1:] for c in cells}


def test_every_schema_key_is_a_row_with_its_default():
    schema = yaml.safe_load(SCHEMA.read_text())
    table = rows()
    keys = [path for path, _ in schema_keys(schema)]
    assert list(table) == keys and len(keys) > 150
    assert table["targets.deepfakebench.format"][:2] == ["`lmdb` \\| `folders`", "`lmdb`"]
    assert table["generate.shards"][:2] == ["integer, >= 1", "`2`"]  # a $ref resolved
    assert "LMDB per dataset JSON" in table["targets.deepfakebench.format"][2]


def test_comments_attach_to_their_key():
    text = ("# the top\na:\n  # above b\n  b: 1   # on b\n  c:\n    d: x  # on d\n"
            "e: [1, 2]\n")
    assert yaml_comments(text) == {"a": "the top", "a.b": "above b on b", "a.c": "",
                                   "a.c.d": "on d", "e": ""}


def test_every_schema_key_has_a_meaning():
    """A schema description or a comment in config.yaml (on or above the key, or on its
    commented-out line) for every key."""
    assert undocumented(SCHEMA, CONFIG) == []
    table = rows()
    assert "qps / api_jobs" in table["liveness.providers.tianyan.http.qps"][2]  # from $defs
    assert "offline check" in table["liveness.providers.local"][2]  # a commented-out line


def test_commented_out_keys_are_keys_not_the_next_keys_comment():
    schema = {"properties": {"a": {"properties": {"b": {}, "c": {}, "d": {
        "properties": {"e": {}}}}}}}
    text = ("a:\n  # prose: not a key of the schema\n  b: 1\n  # c: [1, 2]  # on c\n"
            "  # d:\n  #   e: x   # on e\n")
    assert commented_keys(text, schema) == {"a.c": [1, 2], "a.d": None, "a.d.e": "x"}
    comments = yaml_comments(text, commented_keys(text, schema))
    assert comments["a.b"] == "prose: not a key of the schema"
    assert comments["a.c"] == "on c" and comments["a.d.e"] == "on e"
    # a comment naming a key the text sets is prose
    assert commented_keys("a:\n  # b: 2\n  b: 1\n", schema) == {}

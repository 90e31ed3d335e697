"""The configuration reference the docs site builds: a row per schema key, defaults from the
schema, meanings from the schema or config.yaml's comments."""

from __future__ import annotations

from pathlib import Path

import yaml

from dfmnist.config.reference import reference_markdown, schema_keys, yaml_comments

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

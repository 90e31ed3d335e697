"""The configuration reference, made from the schema and config.yaml so it cannot go stale.

Every key the schema allows is a row: its dotted path, what values it takes and its default
(both from `schemas/config.schema.yaml`, the one place defaults live), and its meaning: the
key's `description` in the schema where it has one, else the comments on and above that key
in `config.yaml` (or on its commented-out `# key: value` line). The docs site builds the page
from this at every build (`docs/hooks.py`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from pathlib import Path

import yaml

KEY_LINE = re.compile(r"^(\s*)(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")
COMMENTED_KEY_LINE = re.compile(r"^(\s*)#( *)(?P<key>[A-Za-z_][\w-]*):(?P<rest>\s.*|)$")


def resolve(node: dict, schema: dict) -> dict:
    """`node` with its `$ref` (into the schema's `$defs`) merged under its own keywords."""
    while "$ref" in node:
        node = {**schema["$defs"][node["$ref"].split("/")[-1]],
                **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _values(node: dict, schema: dict) -> str:
    """What values a key takes, in a few words."""
    node = resolve(node, schema)
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "oneOf" in node or "anyOf" in node:
        return " or ".join(_values(n, schema) for n in node.get("oneOf") or node["anyOf"])
    kind = node.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    bounds = [f"{op} {node[k]}" for k, op in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                               ("maximum", "<="), ("exclusiveMaximum", "<"))
              if k in node]
    if node.get("type") == "array" and "items" in node:
        kind = f"list of {_values(node['items'], schema)}"
    return ", ".join([kind, *bounds])


def schema_keys(schema: dict) -> list[tuple[str, dict]]:
    """(dotted path, schema node) of every key, depth first in the schema's order."""
    keys: list[tuple[str, dict]] = []

    def walk(node: dict, prefix: str) -> None:
        node = resolve(node, schema)
        for name, child in (node.get("properties") or {}).items():
            path = f"{prefix}{name}"
            keys.append((path, child))
            walk(child, f"{path}.")

    walk(schema, "")
    return keys


def _key_lines(text: str, commented: Collection[str]
               ) -> Iterator[tuple[str, str, list[str], str, bool]]:
    """(dotted path, value text, comments above, comment on the line, commented out) of each
    key line of a YAML file written as blocks (one key per line, as config.yaml is). A comment
    `# key: value` is a commented-out key when its path (by the indentation of `key`, one
    space after the `#` being the usual) is in `commented`; any other comment is text."""
    stack: list[tuple[int, str]] = []
    above: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            match, out = COMMENTED_KEY_LINE.match(line), True
            indent = len(match.group(1)) + max(len(match.group(2)) - 1, 0) if match else 0
        else:
            match, out = KEY_LINE.match(line), False
            indent = len(match.group(1)) if match else 0
        parents = [(i, k) for i, k in stack if i < indent]
        key = match.group("key") if match else ""
        path = ".".join([k for _, k in parents] + [key])
        if out and (not match or path not in commented):
            above.append(line.strip().lstrip("#").strip())  # text, not a key
            continue
        if not match:
            above = []
            continue
        stack[:] = [*parents, (indent, key)]
        value, _, inline = match.group("rest").partition(" #")
        yield path, value.strip(), above, inline.strip(), out
        above = []


def yaml_comments(text: str, commented: Collection[str] = ()) -> dict[str, str]:
    """Dotted key path -> the comment lines right above the key and the comment on its line,
    for a YAML file written as blocks (one key per line, as config.yaml is); keys in
    `commented` may be commented-out lines (`# key: value`)."""
    return {path: " ".join([*above, inline]).strip()
            for path, _, above, inline, _ in _key_lines(text, commented)}


def commented_keys(text: str, schema: dict) -> dict[str, object]:
    """Schema keys that `text` (config.yaml) shows only as a commented-out line, with the
    value that line gives."""
    data = yaml.safe_load(text) or {}
    real = set()

    def walk(node: object, prefix: str) -> None:
        for key, value in (node.items() if isinstance(node, dict) else ()):
            real.add(f"{prefix}{key}")
            walk(value, f"{prefix}{key}.")

    walk(data, "")
    left_out = {path for path, _ in schema_keys(schema)} - real
    return {path: yaml.safe_load(value) if value else None
            for path, value, _, _, out in _key_lines(text, left_out) if out}


def _comments(text: str, schema: dict) -> dict[str, str]:
    return yaml_comments(text, commented_keys(text, schema))


def _default(node: dict, schema: dict) -> str:
    node = resolve(node, schema)
    if "default" not in node:
        return ""
    value = node["default"]
    # flow style on one line, long lists too: the schema is the only place defaults are written
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 16)
    return f"`{text.strip().removesuffix('...').strip()}`"


def reference_markdown(schema_path: str | Path, config_path: str | Path) -> str:
    """The reference page: one table row per schema key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    comments = _comments(Path(config_path).read_text(), schema)
    lines = ["# Configuration reference", "",
             "Every key `schemas/config.schema.yaml` allows, with the values it takes and its "
             "default (the schema is where defaults live); the meaning is the key's "
             "description in the schema, else its comment in `config.yaml`. This page is "
             "made from those two files at every docs build.", "",
             "| key | values | default | meaning |", "|---|---|---|---|"]
    for path, node in schema_keys(schema):
        meaning = resolve(node, schema).get("description") or comments.get(path, "")
        meaning = meaning.replace("|", "\\|")
        lines.append(f"| `{path}` | {_values(node, schema)} | {_default(node, schema)} | "
                     f"{meaning} |")
    return "\n".join(lines) + "\n"


def undocumented(schema_path: str | Path, config_path: str | Path) -> list[str]:
    """Schema keys with neither a description nor a comment in config.yaml."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    comments = _comments(Path(config_path).read_text(), schema)
    return [path for path, node in schema_keys(schema)
            if not resolve(node, schema).get("description") and not comments.get(path)]


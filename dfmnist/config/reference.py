"""The configuration reference, made from the schema and config.yaml so it cannot go stale.

Every key the schema allows is a row: its dotted path, what values it takes and its default
(both from `schemas/config.schema.yaml`, the one place defaults live), and its meaning: the
key's `description` in the schema where it has one, else the comments on and above that key
in `config.yaml`. The docs site builds the page from this at every build (`docs/hooks.py`).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][\w-]*):(.*)$")


def _resolve(node: dict, schema: dict) -> dict:
    while "$ref" in node:
        node = {**schema["$defs"][node["$ref"].split("/")[-1]],
                **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _values(node: dict, schema: dict) -> str:
    """What values a key takes, in a few words."""
    node = _resolve(node, schema)
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
        node = _resolve(node, schema)
        for name, child in (node.get("properties") or {}).items():
            path = f"{prefix}{name}"
            keys.append((path, child))
            walk(child, f"{path}.")

    walk(schema, "")
    return keys


def yaml_comments(text: str) -> dict[str, str]:
    """Dotted key path -> the comment lines right above the key and the comment on its line,
    for a YAML file written as blocks (one key per line, as config.yaml is)."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    above: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = KEY_LINE.match(line)
        if not match:
            above = []
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key])
        stack.append((indent, key))
        inline = rest.split(" #", 1)[1].strip() if " #" in rest else ""
        comments[path] = " ".join([*above, inline]).strip()
        above = []
    return comments


def _default(node: dict, schema: dict) -> str:
    node = _resolve(node, schema)
    if "default" not in node:
        return ""
    value = node["default"]
    if isinstance(value, dict | list) and len(str(value)) > 40:
        return "see config.yaml"
    return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"


def reference_markdown(schema_path: str | Path, config_path: str | Path) -> str:
    """The reference page: one table row per schema key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    comments = yaml_comments(Path(config_path).read_text())
    lines = ["# Configuration reference", "",
             "Every key `schemas/config.schema.yaml` allows, with the values it takes and its "
             "default (the schema is where defaults live); the meaning is the key's "
             "description in the schema, else its comment in `config.yaml`. This page is "
             "made from those two files at every docs build.", "",
             "| key | values | default | meaning |", "|---|---|---|---|"]
    for path, node in schema_keys(schema):
        meaning = _resolve(node, schema).get("description") or comments.get(path, "")
        meaning = meaning.replace("|", "\\|")
        lines.append(f"| `{path}` | {_values(node, schema)} | {_default(node, schema)} | "
                     f"{meaning} |")
    return "\n".join(lines) + "\n"


def undocumented(schema_path: str | Path, config_path: str | Path) -> list[str]:
    """Schema keys with neither a description nor a comment in config.yaml."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    comments = yaml_comments(Path(config_path).read_text())
    return [path for path, node in schema_keys(schema)
            if not _resolve(node, schema).get("description") and not comments.get(path)]


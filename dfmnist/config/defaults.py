"""The schema's defaults, for code that runs on a config the workflow has not validated.

`schemas/config.schema.yaml` is the one place a configuration default is written. Snakemake's
`validate` fills those defaults into the config before any rule runs; unit tests, `python -m`
entry points and library callers get the same values from here, filled the same way (a
`properties` keyword that sets each missing key with a `default` first, as
`snakemake.utils.validate(..., set_default=True)` does).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from dfmnist.config.reference import resolve

#: The workflow's schema. dfmnist runs from its checkout (an editable install, or the
#: checkout on the path of a job's environment), so the schema sits beside the package.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


@functools.lru_cache(maxsize=1)
def _parsed() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def load_schema() -> dict:
    """A fresh copy of the schema: filling defaults inserts the schema's own default objects
    into the config, so a shared copy would carry one config's values into the next."""
    return copy.deepcopy(_parsed())


def _filling(validator_class: type) -> type:
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props: dict, instance: Any, schema: dict) -> Iterator:
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub:
                    instance.setdefault(name, sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return validators.extend(validator_class, {"properties": properties})


def _schema_order(value: Any, node: dict, schema: dict) -> Any:
    """`value` with the keys of each object the schema lists in the schema's order (maps
    such as `train.pretrained` keep the config's): filling appends missing keys at the end,
    and params that hold a section should not change with how a config file is ordered."""
    node = resolve(node, schema)
    props = node.get("properties")
    if not isinstance(value, dict) or not props:
        return value
    ordered = {k: _schema_order(value[k], props[k], schema) for k in props if k in value}
    ordered.update((k, v) for k, v in value.items() if k not in props)
    return ordered


def with_defaults(config: dict, section: str | None = None) -> dict:
    """A copy of `config[section]` (empty when the config has none; the whole config when
    `section` is None) validated against the schema with its defaults filled in, objects in
    the schema's key order. Raises jsonschema.ValidationError on an invalid value."""
    schema = load_schema()
    if section is None:
        node, value = schema, copy.deepcopy(config)
    else:
        node = {**schema["properties"][section], "$defs": schema["$defs"]}
        value = copy.deepcopy(config.get(section) or {})
    _filling(Draft202012Validator)(node).validate(value)
    return _schema_order(value, node, schema)


def schema_default(path: str) -> Any:
    """The schema's default of one key, by dotted path (`liveness.cache`; `*` stands for any
    key of a map, as in `compress.variants.*.preset`); KeyError when the key has none."""
    schema = load_schema()
    node: dict = schema
    for key in path.split("."):
        node = resolve(node, schema)
        node = resolve(node["additionalProperties"] if key == "*" else node["properties"][key],
                       schema)
    return node["default"]


def section_defaults(section: str) -> dict:
    """The schema's defaults of one top-level section (keys without a default left out)."""
    return with_defaults({}, section)

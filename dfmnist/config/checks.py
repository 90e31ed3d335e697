"""Configuration checks beyond the JSON schema, and the input layout the config implies."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from dfmnist.liveness.policy import TRANSPORT_OPTIONS
from dfmnist.storage import discovery
from dfmnist.storage.discovery import Ignored, InputCollision


class ConfigError(ValueError):
    """A configuration problem, worded as one line that names the key."""


#: Keys that were removed ("*" is any key) and why, with what to do instead. The schema no
#: longer allows them, so an old config that still sets one stops at the start; its line says
#: this instead of only "not allowed".
RETIRED: dict[tuple[str, ...], str] = {
    ("liveness", "providers", "*", "http", "burst"): (
        "removed: it did nothing since the rate limit became a sliding window (at most qps "
        "requests in any 1 s window, evenly spaced, never a burst); delete it, qps alone sets "
        "the rate"),
}


def retired(path: Sequence[str]) -> str | None:
    """Why the key at `path` (its keys from the top) was removed; None if it never was."""
    for pattern, why in RETIRED.items():
        if len(pattern) == len(path) and all(
            p in ("*", k) for p, k in zip(pattern, path, strict=True)
        ):
            return why
    return None


def schema_error_line(error: Exception) -> str:
    """One line from a jsonschema ValidationError: 'config: <key path>: <message>'; a removed
    key (`RETIRED`) is named with why it went."""
    keys = [str(p) for p in getattr(error, "absolute_path", [])]
    instance = getattr(error, "instance", None)
    if getattr(error, "validator", None) == "additionalProperties" and isinstance(instance, dict):
        known = getattr(error, "schema", {}).get("properties", {})
        for key in instance:
            why = None if key in known else retired([*keys, str(key)])
            if why:
                return f"config error at {'.'.join([*keys, str(key)])}: {why}"
    path = ".".join(keys) or "(top level)"
    message = getattr(error, "message", str(error)).splitlines()[0]
    return f"config error at {path}: {message}"


#: Top-level `--config` shortcuts and the nested key each one sets.
SHORTCUTS = {
    "generator": ("generate", "generator"),
    "fomm_checkpoint": ("generate", "fomm", "checkpoint"),
    "tpsmm_checkpoint": ("generate", "tpsmm", "checkpoint"),
    "liveportrait_checkpoint": ("generate", "liveportrait", "checkpoint"),
}


def apply_shortcuts(config: dict) -> None:
    """Move top-level shortcuts (``--config generator=fomm fomm_checkpoint=FILE``) to the
    nested keys they stand for, in place, before validation."""
    for short, path in SHORTCUTS.items():
        if short not in config:
            continue
        value = config.pop(short)
        node = config
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value


#: Keys that choose where, how fast or through what a job runs, never what it makes ("*" is any
#: key). They reach jobs through `snakemake.config`, never through a rule's params, so changing
#: one reruns nothing. The liveness providers' transport options are `dfmnist.liveness.policy`'s.
EXECUTION_ONLY: tuple[tuple[str, ...], ...] = (
    ("faces", "device"),
    ("faces", "batch_size"),
    ("generate", "device"),
    ("generate", "threads"),
    ("generate", "*", "batch_size"),
    ("generate", "fomm", "winograd"),
    ("faceswap", "device"),
    ("faceswap", "threads"),
    ("faceswap", "train", "checkpoint_every"),
    ("liveness", "cache"),
    ("liveness", "api_jobs"),
    *(("liveness", "providers", "*", key) for key in sorted(TRANSPORT_OPTIONS)),
    ("train", "device"),
)


def _drop(node: object, path: tuple[str, ...]) -> None:
    if not isinstance(node, dict) or not path:
        return
    head, rest = path[0], path[1:]
    for key in list(node) if head == "*" else [head]:
        if not rest:
            node.pop(key, None)
        else:
            _drop(node.get(key), rest)


def science(config: dict, *section: str) -> dict:
    """A copy of the config section at `section` (the whole config without one) without the
    `EXECUTION_ONLY` keys: what a rule's params may hold."""
    node = config
    for key in section:
        node = node[key]
    out = copy.deepcopy(node)
    for path in EXECUTION_ONLY:
        if path[:len(section)] == section:
            _drop(out, path[len(section):])
    return out


def _check_export_names(targets: dict) -> None:
    from dfmnist.targets.deepfakebench.layout import check_names

    try:
        check_names(targets["dataset_name"], targets["deepfakebench"]["path_prefix"],
                    targets["deepfakebench"]["format"])
    except ValueError as exc:
        raise ConfigError(f"config error: {exc}") from None


def check_config(config: dict) -> None:
    """Cross-key checks the schema cannot express. Raises ConfigError."""
    _check_generator(config["generate"])
    actions = config["actions"]
    policy = config["liveness"].get("policy", {})
    missing = [a for a in actions if a not in policy]
    if missing:
        raise ConfigError(f"config error at liveness.policy: no providers for {', '.join(missing)}")
    splits = config["targets"]["splits"]
    total = sum(splits.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"config error at targets.splits: fractions sum to {total:g}, not 1")
    _check_export_names(config["targets"])
    if not config["demo"]["enabled"]:
        for key in ("sources_dir", "driving_dir"):
            value = config["data"].get(key, "")
            if not value:
                raise ConfigError(
                    f"config error at data.{key}: required when demo.enabled is false"
                )
            if not Path(value).is_dir():
                raise ConfigError(f"config error at data.{key}: directory not found: {value}")
    else:
        for identity, spec in config["demo"]["photos"].items():
            _check_photo_spec(f"demo.photos.{identity}", spec)
        _check_photo_spec("demo.driving_performer", config["demo"]["driving_performer"])


def _checkpoint_problem(name: str, checkpoint: str | None) -> str | None:
    """Why generator `name` cannot use `checkpoint` (a missing file or folder), else None."""
    if name == "liveportrait":
        from dfmnist.generators.liveportrait.checkpoint import checkpoint_files

        try:
            checkpoint_files(checkpoint or "(not set)")
        except FileNotFoundError as exc:
            return str(exc)
        return None
    if checkpoint and Path(checkpoint).is_file():
        return None
    if name == "fomm":
        from dfmnist.generators.fomm.checkpoint import checkpoint_missing_message
    else:
        from dfmnist.generators.tpsmm.checkpoint import checkpoint_missing_message
    return checkpoint_missing_message(checkpoint or "(not set)")


#: Generators that need the original's weights (`generate.<name>.checkpoint`).
WITH_CHECKPOINT = ("fomm", "tpsmm", "liveportrait")


def _check_generator(generate: dict) -> None:
    """Every generator the config uses (`generate.generators`, else `generate.generator`)
    that needs weights has them."""
    names = list(generate.get("generators") or [generate["generator"]])
    for name in names:
        if name not in WITH_CHECKPOINT:
            continue
        problem = _checkpoint_problem(name, (generate.get(name) or {}).get("checkpoint"))
        if problem:
            raise ConfigError(f"config error at generate.{name}.checkpoint: {problem}")


def _check_photo_spec(key: str, spec: str) -> None:
    from dfmnist.demo.photos import BUILTIN_PHOTOS

    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_PHOTOS:
            known = ", ".join(BUILTIN_PHOTOS)
            raise ConfigError(f"config error at {key}: unknown built-in photo {name!r} ({known})")
    elif not Path(spec).is_file():
        raise ConfigError(f"config error at {key}: photo file not found: {spec}")


def demo_clip_relpaths(config: dict, identity: str) -> list[str]:
    """VoxCeleb-style relative paths of one demo identity's clips."""
    demo = config["demo"]
    return [
        f"{identity}/demo{v:02d}/{c + 1:05d}.mp4"
        for v in range(demo["videos_per_identity"])
        for c in range(demo["clips_per_video"])
    ]


def source_clips(config: dict, demo_root: str | Path | None = None
                 ) -> tuple[dict[str, Path], Ignored]:
    """clip id ('identity/video/clip') -> path, for the demo (its clips under `demo_root`, the
    folder the workflow's demo rule writes) or a VoxCeleb-style tree, and the entries of the
    tree that were ignored (hidden files, non-videos)."""
    if config["demo"]["enabled"]:
        if demo_root is None:
            raise ConfigError("config error at demo.enabled: the demo's folder is not given")
        rel = [r for ident in config["demo"]["photos"] for r in demo_clip_relpaths(config, ident)]
        return {r.rsplit(".", 1)[0]: Path(demo_root) / r for r in rel}, Ignored()
    root = Path(config["data"]["sources_dir"])
    try:
        clips, ignored = discovery.source_clips(root)
    except InputCollision as exc:
        raise ConfigError(f"config error at data.sources_dir: {exc}") from None
    if not clips:
        raise ConfigError(
            f"config error at data.sources_dir: no {{identity}}/{{video}}/{{clip}} videos "
            f"or frame folders in {root} ({ignored.summary()})"
        )
    return clips, ignored


def driving_takes(config: dict, demo_take: str | None = None
                  ) -> tuple[dict[str, dict[str, Path]], Ignored]:
    """action -> take id -> raw driving video path, and the entries that were ignored. The
    demo's takes are `demo_take` (the demo rule's output, with {action} and {take})."""
    if config["demo"]["enabled"]:
        if demo_take is None:
            raise ConfigError("config error at demo.enabled: the demo's take path is not given")
        n = config["demo"]["takes_per_action"]
        return {action: {take: Path(demo_take.format(action=action, take=take))
                         for take in (f"take{k:02d}" for k in range(n))}
                for action in config["actions"]}, Ignored()
    root = Path(config["data"]["driving_dir"])
    try:
        takes, ignored = discovery.driving_takes(root, config["actions"])
    except InputCollision as exc:
        raise ConfigError(f"config error at data.driving_dir: {exc}") from None
    for action, found in takes.items():
        if not found:
            raise ConfigError(
                f"config error at data.driving_dir: no driving videos for action {action!r} "
                f"in {root / action}"
            )
    return takes, ignored

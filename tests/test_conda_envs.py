"""Under `--software-deployment-method conda` each rule's script runs in its own env file's
environment: every third-party module the script can import, directly or through the dfmnist
modules it reaches (imports inside functions included), must be installed by that env."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RULE = re.compile(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)+)", re.MULTILINE)
DIRECTIVE = re.compile(r'^\s+(conda|script):\s*\n?\s*"([^"]+)"', re.MULTILINE)


def conda_rules() -> list[tuple[str, Path, Path]]:
    """(rule, env file, script) of every rule that names both."""
    found = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for name, body in RULE.findall(smk.read_text()):
            directives = dict(DIRECTIVE.findall(body))
            if "conda" in directives and "script" in directives:
                found.append((name, (smk.parent / directives["conda"]).resolve(),
                              (smk.parent / directives["script"]).resolve()))
    return found


def imported(path: Path) -> set[str]:
    """Every module name an `import` or `from ... import` in the file names (absolute)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from dfmnist.x import y` may name a submodule y
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_file(name: str) -> Path | None:
    """The source file of a dfmnist module or package, None when `name` is not one."""
    path = REPO / Path(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


@cache
def third_party(script: Path) -> frozenset[str]:
    """Top-level third-party modules reachable from `script` through dfmnist's modules."""
    seen: set[Path] = set()
    todo, found = [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported(path):
            top = name.split(".")[0]
            if top == "dfmnist":
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # a package's __init__ runs first
                    file = module_file(".".join(parts[:i]))
                    if file is not None:
                        todo.append(file)
            elif top not in sys.stdlib_module_names and top != "snakemake":
                found.add(top)  # the script's `snakemake` object is Snakemake's own
    return frozenset(found)


def normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def env_packages(env_file: Path) -> set[str]:
    """The distributions an env file installs (pip entries and conda packages)."""
    spec = yaml.safe_load(env_file.read_text())
    names = set()
    for entry in spec["dependencies"]:
        entries = entry["pip"] if isinstance(entry, dict) else [entry]
        for item in entries:
            names.add(normalise(re.split(r"[<>=!~ \[]", item, maxsplit=1)[0]))
    return names


RULES = conda_rules()


def test_every_rule_with_a_script_names_its_env():
    assert len(RULES) >= 30  # the parse found the rules
    for smk in (REPO / "rules").glob("*.smk"):
        for name, body in RULE.findall(smk.read_text()):
            directives = dict(DIRECTIVE.findall(body))
            if "script" in directives:
                assert "conda" in directives, f"rule {name} has a script but no conda env"


@pytest.mark.parametrize(("rule", "env_file", "script"), RULES, ids=[r[0] for r in RULES])
def test_env_installs_what_the_rule_imports(rule: str, env_file: Path, script: Path):
    distributions = importlib.metadata.packages_distributions()
    installed = env_packages(env_file)
    missing = []
    for module in sorted(third_party(script)):
        names = {normalise(d) for d in distributions.get(module, [])}
        assert names, f"{module}, imported by rule {rule}'s code, is not installed here"
        if not names & installed:
            missing.append(f"{module} ({', '.join(sorted(names))})")
    assert not missing, (f"rule {rule} ({script.name}) can import {', '.join(missing)}, "
                         f"which {env_file.relative_to(REPO)} does not install")

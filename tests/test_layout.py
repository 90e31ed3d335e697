"""The package mirrors the workflow: a package or module per stage, named as its rules file;
the shared machinery (storage, vision) below the stages; scripts named as their rules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "dfmnist"
#: Rules files that hold no stage: helpers and the path table every stage reads.
NOT_STAGES = {"common", "paths"}
#: The training stages' rules files whose code is a module of dfmnist.train.
TRAIN_STAGES = {"ensemble", "attribution"}
#: Machinery: what stages build on. None of it may import a stage.
MACHINERY = ("dfmnist.storage", "dfmnist.vision", "dfmnist.numerics", "dfmnist.gpus")
RULE = re.compile(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)+)", re.MULTILINE)
SCRIPT = re.compile(r'^\s+script:\s*\n?\s*"\.\./workflow_scripts/([^"]+)\.py"', re.MULTILINE)


def modules() -> dict[str, Path]:
    """Dotted name -> file of every dfmnist module."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def dfmnist_imports(path: Path) -> set[str]:
    """The dfmnist modules a file imports (at any depth, `from dfmnist.x import y` as x.y
    when y is a module)."""
    known = modules()
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("dfmnist"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dfmnist"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in known else node.module)
    return names


def test_at_most_twelve_modules_at_the_package_root():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 12, root


def test_every_stage_has_its_package_or_module():
    missing = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        stage = smk.stem
        if stage in NOT_STAGES:
            continue
        home = PACKAGE / "train" if stage in TRAIN_STAGES else PACKAGE
        if not ((home / stage).is_dir() or (home / f"{stage}.py").is_file()):
            missing.append(f"rules/{smk.name} has no dfmnist/{home.relative_to(PACKAGE)}/{stage}")
    assert not missing, missing


def test_scripts_are_named_as_their_rules():
    named = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for rule, body in RULE.findall(smk.read_text()):
            for script in SCRIPT.findall(body):
                named[rule] = script
    assert named, "no rule with a script found"
    wrong = {rule: script for rule, script in named.items() if rule != script}
    assert not wrong, f"rule -> script named otherwise: {wrong}"
    unused = {p.stem for p in (REPO / "workflow_scripts").glob("*.py")} - set(named.values())
    assert not unused, f"scripts no rule runs: {sorted(unused)}"


def test_machinery_never_imports_a_stage():
    upward = []
    for name, path in modules().items():
        if not name.startswith(MACHINERY):
            continue
        for imported in dfmnist_imports(path):
            if imported != "dfmnist" and not imported.startswith(MACHINERY):
                upward.append(f"{name} imports {imported}")
    assert not upward, upward


def test_one_import_path_per_function():
    """No module re-exports another's names (the only way an unused import survives ruff)."""
    reexports = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py")
                 if "noqa: F401" in p.read_text()]
    assert not reexports, reexports


def test_no_look_alike_siblings():
    """No module in a package whose name is another's plus a suffix (data/dataset,
    tars/shard_tars, driving/driving_shard): one would not know which holds what."""
    clashes = []
    for package in [PACKAGE, *(p for p in PACKAGE.rglob("*") if (p / "__init__.py").is_file())]:
        names = sorted({p.stem for p in package.glob("*.py") if not p.stem.startswith("__")}
                       | {p.name for p in package.iterdir() if (p / "__init__.py").is_file()})
        for a in names:
            for b in names:
                if a != b and (b.startswith(a) or b.endswith(a)):
                    clashes.append(f"{package.relative_to(REPO)}: {a} / {b}")
    assert not clashes, clashes


def test_every_result_path_is_written_once():
    """Result paths live in rules/paths.smk; rules name them, so no include spells one out."""
    table = (REPO / "rules" / "paths.smk").read_text()
    templates = re.findall(r'^([A-Z_]+) = (f".*")', table, re.MULTILINE)
    values = [value for _, value in templates]
    assert len(templates) > 40 and len(set(values)) == len(values)
    spelled = [f"{smk.name}: {line.strip()}"
               for smk in [*(REPO / "rules").glob("*.smk"), REPO / "Snakefile"]
               if smk.name != "paths.smk"
               for line in smk.read_text().splitlines() if "{RESULTS}/" in line]
    assert not spelled, spelled


def test_no_stage_reads_another_stages_names():
    """A stage's include defines names for itself only; what several share is in
    rules/common.smk or rules/paths.smk, so the stages' include order does not matter."""
    stages = {p.stem: p.read_text() for p in (REPO / "rules").glob("*.smk")
              if p.stem not in NOT_STAGES}
    shared = []
    for stage, text in stages.items():
        for name in re.findall(r"^([A-Z_][A-Z0-9_]*) *=|^def (\w+)", text, re.MULTILINE):
            name = name[0] or name[1]
            for other, other_text in stages.items():
                if other != stage and re.search(rf"\b{name}\b", other_text):
                    shared.append(f"{name} of rules/{stage}.smk is read by rules/{other}.smk")
    assert not shared, shared


def test_test_modules_are_short():
    """Test files are split by subject like the code: none over 400 lines."""
    long = {p.name: n for p in (REPO / "tests").glob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_modules_are_short():
    """One concern per module: none over 400 lines."""
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def fixtures(path: Path) -> set[str]:
    """The names of the pytest fixtures a file defines."""
    found = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.FunctionDef) and any(
                "fixture" in ast.unparse(d) for d in node.decorator_list):
            found.add(node.name)
    return found


def test_no_fixture_shadows_a_shared_one():
    """A test module never redefines a conftest fixture: one name, one meaning."""
    shared = fixtures(REPO / "tests" / "conftest.py")
    shadowing = {p.name: sorted(fixtures(p) & shared)
                 for p in (REPO / "tests").glob("*.py") if p.name != "conftest.py"}
    assert not {k: v for k, v in shadowing.items() if v}

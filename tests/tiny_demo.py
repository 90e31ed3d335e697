"""The tiny demo config that the workflow tests build, and helpers to build, clone and compare
it. Paths in the config are relative to the work directory, so a copied work directory (with
its .snakemake state and file times) is the same build: Snakemake has nothing to redo in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import yaml

from dfmnist.storage.store import META, Store

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def tiny_config(workdir: Path, photos: dict[str, str]) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["actions"] = ["right_slope", "yaw", "blink"]
    config["demo"].update(
        photos=photos, clips_per_video=1, clip_seconds=1.0, clip_fps=12,
        driving_width=360, driving_height=640, driving_fps=15, driving_seconds=1.2,
    )
    config["sources"].update(count=0, frames_per_clip=4)
    config["plan"].update(per_action=1, oversample=2.0)
    config["generate"]["shards"] = 2
    config["driving"]["shards"] = 1  # one job per stage where the tests need no more: each
    config["compress"]["shards"] = 1  # job costs a process start (torch import) of 2-3 s
    config["liveness"]["policy"] = {a: ["local"] for a in config["actions"]}
    config["liveness"]["cache"] = "cache/liveness.sqlite"  # inside the work directory
    config["compress"]["variants"] = {"raw": {"crf": 0}, "c40": {"crf": 40}}
    config["targets"]["frames"].update(count=3, sizes=[256, 224])
    return config


def demo_photos(workdir: Path, astronaut, grace_hopper) -> dict[str, str]:
    """The tiny demo's identities: two real photos written as files (so replacing one is an
    input change), named relative to the work directory, and the built-in talking-head clip."""
    photo_dir = workdir / "photos"
    photo_dir.mkdir(parents=True)
    for name, image in (("astronaut", astronaut), ("grace_hopper", grace_hopper)):
        cv2.imwrite(str(photo_dir / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return {"astronaut": "photos/astronaut.png", "grace_hopper": "photos/grace_hopper.png",
            "carphone": "builtin:carphone"}


def write_tiny_demo(workdir: Path, astronaut, grace_hopper) -> dict:
    """The tiny config and its photos in `workdir`; returns the config."""
    config = tiny_config(workdir, demo_photos(workdir, astronaut, grace_hopper))
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return config


def run_snakemake(workdir: Path, *args: str, check: bool = True, cores: int = 2,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", str(cores),
         *args],
        capture_output=True, text=True, env=full_env, timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def clone(built: Path, workdir: Path) -> Path:
    """A copy of a built work directory: file times, Snakemake's state, and the exports' hard
    links into the store (`cp -a` keeps links between files it copies) and relative symlinks."""
    workdir.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(built), str(workdir)], check=True)
    return workdir


def fingerprint(workdir: Path) -> dict[tuple[str, str], dict[str, str]]:
    """Every complete store item of a build: (kind, key) -> {file: sha256}, from the item's
    meta (which `Store.has` checks against the files' sizes)."""
    store = Store(workdir / "results" / "store")
    items = {}
    for kind in sorted(p.name for p in store.root.iterdir() if not p.name.startswith(".")):
        for key in store.keys(kind):
            files = store.meta(kind, key)["files"]
            items[(kind, key)] = {name: f["sha256"] for name, f in files.items() if name != META}
    return items


def planned_jobs(workdir: Path, change, *targets: str) -> dict[str, int]:
    """Rule -> jobs that `snakemake -n` plans after `change` edits a copy of the config."""
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    change(config)
    variant = workdir / "variant.yaml"
    variant.write_text(yaml.safe_dump(config))
    proc = run_snakemake(workdir, "-n", *targets, "--configfile", str(variant))
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1].strip().split("\n\n", 1)[0].splitlines()[2:]
    return {rule: int(count) for rule, count in (line.split() for line in table)
            if rule != "total"}

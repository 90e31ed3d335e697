"""dfmnist used from another Snakemake workflow through the `module` directive, by a Python in
which dfmnist is not installed: the workflow's own source must reach its script jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import polars as pl
import pytest
import yaml

from tiny_demo import REPO, tiny_config

pytestmark = pytest.mark.workflow


def bare_python(root: Path) -> Path:
    """A virtual environment that sees this one's packages but not dfmnist.

    A plain path line in a .pth file puts the packages' folder on sys.path without running the
    .pth files inside it, so an editable install of dfmnist there stays inert."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    Path(site.stdout.strip(), "packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_another_workflow_uses_dfmnist_as_a_module(tmp_path: Path):
    python = bare_python(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONUNBUFFERED"] = "1"
    probe = subprocess.run([str(python), "-c", "import dfmnist"], capture_output=True,
                           text=True, env=env, cwd=tmp_path)
    assert probe.returncode != 0 and "No module named 'dfmnist'" in probe.stderr
    work = tmp_path / "study"
    work.mkdir()
    # the other workflow's own config: one action, two identities, its own results folder
    config = tiny_config(work, {"astronaut": "builtin:astronaut",
                                "grace_hopper": "builtin:grace_hopper"})
    config["results_dir"] = "dfmnist-out"
    config["actions"] = ["blink"]
    config["liveness"]["policy"] = {"blink": ["local"]}
    config["plan"].update(per_action=1, oversample=1.0)
    (work / "study.yaml").write_text(yaml.safe_dump(config))
    (work / "Snakefile").write_text(f'''configfile: "study.yaml"


module dfmnist:
    snakefile:
        "{REPO / "Snakefile"}"
    config:
        config


use rule * from dfmnist as dfmnist_*


rule study:
    input:
        "dfmnist-out/liveness/spoof_rates.csv",
    output:
        "study.txt",
    shell:
        "cp {{input}} {{output}}"
''')
    proc = subprocess.run([str(python), "-m", "snakemake", "--cores", "2", "study"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    # the module's rules ran under their prefixed names, writing where this config says
    assert "dfmnist_generate_shard" in proc.stderr and "dfmnist_driving_shard" in proc.stderr
    rates = pl.read_csv(work / "study.txt")
    assert rates["action"].to_list() == ["blink"] and rates["candidates"][0] == 1
    assert not (work / "results").exists()
    fakes = pl.read_parquet(work / "dfmnist-out" / "fake" / "accepted.parquet")
    assert fakes.height == rates["accepted"][0]

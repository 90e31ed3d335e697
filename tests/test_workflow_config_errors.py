"""Snakemake on a bad config: the run fails with one `config error` line naming the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tiny_demo import REPO, run_snakemake

pytestmark = pytest.mark.workflow


def test_bad_config_fails_with_one_line_naming_the_key(tmp_path: Path):
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    cases = [
        (lambda c: c.update(actions=["blink", "moonwalk"]), "actions"),
        (lambda c: c["plan"].update(per_action=-1), "plan.per_action"),
        (lambda c: c["demo"].update(enabled=False), "data.sources_dir"),
        (lambda c: (c["demo"].update(enabled=False),
                    c["data"].update(sources_dir=str(tmp_path / "nope"),
                                     driving_dir=str(tmp_path))), "directory not found"),
        (lambda c: c["compress"].update(varaints={}), "varaints"),
        (lambda c: c["generate"].update(generator="fomm"), "generate.fomm.checkpoint"),
        (lambda c: c["generate"].update(generator="fomm", fomm={
            "checkpoint": str(tmp_path / "missing" / "vox-cpk.pth.tar")}),
         "missing/vox-cpk.pth.tar"),
        # every generator of a mix is checked, each pointing at where its weights are published
        (lambda c: c["generate"].update(generators={"landmark_warp": 1, "tpsmm": 1}),
         "generate.tpsmm.checkpoint"),
        (lambda c: c["generate"].update(generator="liveportrait",
                                        liveportrait={"checkpoint": str(tmp_path)}),
         "generate.liveportrait.checkpoint"),
    ]
    published = {"fomm": "first-order-model", "tpsmm": "Thin-Plate-Spline-Motion-Model",
                 "liveportrait": "KwaiVGI/LivePortrait"}
    for case, (mutate, needle) in enumerate(cases):
        config = yaml.safe_load(yaml.safe_dump(base))
        mutate(config)
        workdir = tmp_path / f"case{case}"
        workdir.mkdir()
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        proc = run_snakemake(workdir, "-n", check=False)
        assert proc.returncode != 0
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("config error")]
        assert len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
        for name, where in published.items():  # says where the original is published
            if f"generate.{name}." in needle or name == "fomm" and "vox-cpk" in needle:
                assert where in lines[0], lines[0]
    shutil.rmtree(tmp_path, ignore_errors=True)

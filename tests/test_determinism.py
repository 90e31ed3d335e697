"""A content key pins its bytes: the tiny demo built again with `--cores 1`, and again on the
AVX2 kernels, against the session's `--cores 2` build (tests/tiny_demo.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import polars as pl
import pytest

from tiny_demo import fingerprint, run_snakemake, write_tiny_demo

pytestmark = pytest.mark.workflow

#: oneDNN's and ATen's own switches down to the AVX2 code paths, wherever the CPU has more.
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
#: Store kinds made by MTCNN, whose keys carry the float platform (dfmnist.vision.faces identity).
DETECTOR_KINDS = {"source_frame", "driving_take"}
#: The one-core rebuild stops at the accepted fakes (sources, driving crops, plan, fakes,
#: liveness): every job there that computes with floats; compression, frames and exports after
#: it are keyed by the bytes they read and encode on one thread. The AVX2 rebuild stops at the
#: plan: what the detector's values reach, the candidates' keys, is settled there.
TARGET = "results/fake/accepted.parquet"
AVX2_TARGET = "results/plan/plan.parquet"


def rebuild(workdir: Path, astronaut, grace_hopper, cores: int, env: dict | None,
            target: str = TARGET) -> Path:
    workdir.mkdir()
    write_tiny_demo(workdir, astronaut, grace_hopper)
    run_snakemake(workdir, target, cores=cores, env=env)
    return workdir


def made_by_both(ours: dict, theirs: dict) -> dict:
    """`theirs` (the whole demo) without the kinds our rebuild to TARGET does not make."""
    kinds = {kind for kind, _ in ours}
    return {item: files for item, files in theirs.items() if item[0] in kinds}


def assert_keys_pin_bytes(ours: dict, theirs: dict) -> None:
    shared = ours.keys() & theirs.keys()
    assert shared, "the builds share no item"
    differ = sorted(f"{kind}/{key[:12]}" for kind, key in shared if ours[kind, key]
                    != theirs[kind, key])
    assert not differ, f"same key, other bytes: {differ}"


def plan_inputs(workdir: Path) -> dict[str, tuple]:
    """Per candidate: its key and every value its generator reads (the source image and its
    landmarks, the driving crop and the bytes of its track)."""
    plan = pl.read_parquet(workdir / "results" / "plan" / "plan.parquet")
    out = {}
    for row in plan.iter_rows(named=True):
        track = hashlib.sha256((workdir / row["driving_track"]).read_bytes()).hexdigest()
        out[row["candidate_id"]] = (row["key"], (row["source_sha256"], row["source_landmarks"],
                                                 row["driving_sha256"], track))
    return out


def test_one_core_builds_the_same_keys_and_bytes(tiny_demo: Path, tmp_path: Path, astronaut,
                                                 grace_hopper):
    """Threads are an execution setting: every key and every byte as with two cores."""
    ours = fingerprint(rebuild(tmp_path / "demo", astronaut, grace_hopper, 1, None))
    theirs = made_by_both(ours, fingerprint(tiny_demo))
    assert_keys_pin_bytes(ours, theirs)
    assert ours.keys() == theirs.keys()
    kinds = {kind for kind, _ in ours}
    assert {"source_frame", "driving_take", "fake"} <= kinds


def test_avx2_kernels_change_keys_never_bytes_under_one_key(tiny_demo: Path, tmp_path: Path,
                                                            astronaut, grace_hopper):
    """On other kernels MTCNN's items are other items (their keys carry the float platform);
    what is made from their values, on the detector's grid, shares its keys exactly when
    those values agree."""
    if all(os.environ.get(k) == v for k, v in AVX2.items()):
        pytest.skip("this whole run is on forced AVX2 already: the session build is too")
    workdir = rebuild(tmp_path / "demo", astronaut, grace_hopper, 2, AVX2, AVX2_TARGET)
    ours = fingerprint(workdir)
    theirs = made_by_both(ours, fingerprint(tiny_demo))
    assert_keys_pin_bytes(ours, theirs)
    moved = {kind for kind, _ in ours.keys() ^ theirs.keys()}
    assert moved & DETECTOR_KINDS, "the detector's keys ignore the instruction set"
    a, b = plan_inputs(workdir), plan_inputs(tiny_demo)
    assert a.keys() == b.keys()
    agree = {c for c in a if a[c][1] == b[c][1]}
    for candidate in a:  # a candidate's key follows its inputs, and only them
        assert (a[candidate][0] == b[candidate][0]) == (candidate in agree), candidate
    print(f"{len(agree)} of {len(a)} candidates read equal values on AVX2; kinds whose keys "
          f"moved: {sorted(moved)}")
    assert moved <= DETECTOR_KINDS, moved  # the source images are the same items

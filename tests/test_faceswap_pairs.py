"""Face-swap planning: disjoint seeded couples, DFDM names, and splits that keep couples whole."""

from __future__ import annotations

import polars as pl
import pytest

from dfmnist.faceswap.pairs import (
    couple_members,
    fake_name,
    plan_couples,
    split_groups,
    target_clips,
    train_settings,
)
from dfmnist.targets.splits import assign_group_splits

IDENTITIES = [f"id{n:05d}" for n in range(10)]


def test_couples_are_disjoint_seeded_and_capped():
    couples = plan_couples(IDENTITIES, pairs=0, seed=0)
    members = [m for c in couples for m in couple_members(c)]
    assert len(couples) == 5 and sorted(members) == IDENTITIES
    assert plan_couples(list(reversed(IDENTITIES)), 0, 0) == couples  # order-free
    assert plan_couples(IDENTITIES, 0, 1) != couples
    assert plan_couples(IDENTITIES, 2, 0) == couples[:2]
    assert len(plan_couples(IDENTITIES[:3], 0, 0)) == 1  # an odd one out trains in none


def test_identity_with_the_separator_is_refused():
    with pytest.raises(ValueError, match=r"must not contain '\+'.*a\+b"):
        plan_couples(["a+b", "c"], 0, 0)


def test_dfdm_file_name():
    assert fake_name("00001", "00007", "00001/videoX/00003", "dfl_h128") == \
        "id00001_id00007_videoX-00003_dfl_h128.mp4"


def test_per_model_settings_override_only_that_model():
    faceswap = {"train": {"iterations": 100, "batch_size": 8, "lr": 1e-4, "seed": 0},
                "per_model": {"dfaker": {"iterations": 300}}}
    assert train_settings(faceswap, "dfaker")["iterations"] == 300
    assert train_settings(faceswap, "iae") == faceswap["train"]


def test_target_clips_are_the_identitys_best_selected_sources():
    sources = pl.DataFrame({
        "clip_id": ["a/v/1", "a/v/2", "a/v/3", "b/v/1"], "identity": ["a", "a", "a", "b"],
        "selected": [True, True, False, True], "identity_rank": [2, 1, None, 1],
    })
    assert target_clips(sources, "a", 1)["clip_id"].to_list() == ["a/v/2"]
    assert target_clips(sources, "a", 0)["clip_id"].to_list() == ["a/v/2", "a/v/1"]


def test_splits_keep_each_couple_in_one_split():
    couples = plan_couples(IDENTITIES, 0, 0)
    videos = pl.DataFrame({"identity": IDENTITIES * 3,
                           "action": ["real"] * 10 + ["face_swap"] * 20})
    assignment = assign_group_splits(videos, {"train": 0.6, "val": 0.2, "test": 0.2}, 0,
                                     split_groups(couples))
    assert set(assignment) == set(IDENTITIES)
    for couple in couples:
        a, b = couple_members(couple)
        assert assignment[a] == assignment[b]
    assert set(assignment.values()) == {"train", "val", "test"}
    # without couples every identity is its own group, as before
    plain = assign_group_splits(videos, {"train": 0.6, "val": 0.2, "test": 0.2}, 0, {})
    assert len({(plain[a], plain[b]) for a, b in map(couple_members, couples)
                if plain[a] != plain[b]}) > 0

"""Planning, splitting and acceptance on small tables (pure functions over real columns)."""

import polars as pl
import pytest

from dfmnist.liveness.acceptance import accept
from dfmnist.plan import build_plan, shard_of
from dfmnist.targets.splits import assign_splits

GEN = {"name": "landmark_warp", "weights_sha256": None, "params": {"relative": True}}


def sources(shas=None):
    ids = [f"id{i}/v/0000{j}" for i in range(4) for j in (1, 2)]
    shas = shas or {c: f"sha-{c}" for c in ids}
    return pl.DataFrame({"clip_id": ids, "identity": [c.split("/")[0] for c in ids],
                         "image_path": [f"/img/{c}.png" for c in ids],
                         "image_sha256": [shas[c] for c in ids],
                         "landmarks": [[0.0] * 10 for _ in ids]})


def driving(actions=("blink", "yaw")):
    rows = [{"action": a, "take": f"take{k:02d}", "video_path": f"/d/{a}/{k}.mp4",
             "video_sha256": f"v-{a}-{k}", "track_path": f"/d/{a}/{k}.parquet",
             "track_sha256": f"t-{a}-{k}"} for a in actions for k in range(2)]
    return pl.DataFrame(rows)


def test_plan_is_seeded_unique_and_sharded():
    plan = build_plan(sources(), driving(), ["blink", "yaw"], 3, 2.0, 7, GEN, 3)
    assert plan.group_by("action").len().sort("action")["len"].to_list() == [6, 6]
    assert plan["candidate_id"].n_unique() == plan.height
    assert plan["key"].n_unique() == plan.height
    assert set(plan["shard"]) <= {0, 1, 2}
    again = build_plan(sources(), driving(), ["blink", "yaw"], 3, 2.0, 7, GEN, 3)
    assert plan.equals(again)
    other_seed = build_plan(sources(), driving(), ["blink", "yaw"], 3, 2.0, 8, GEN, 3)
    assert not plan["candidate_id"].equals(other_seed["candidate_id"])
    assert shard_of("blink/id0/v/00001/take00", 3) == shard_of("blink/id0/v/00001/take00", 3)


def test_plan_caps_at_distinct_pairs():
    plan = build_plan(sources(), driving(), ["blink"], 100, 1.0, 0, GEN, 1)
    assert plan.height == 8 * 2 and plan["candidate_id"].n_unique() == plan.height
    # every (source, take) pair once, whatever the numbers of sources and takes
    for n_sources in (1, 3, 5, 7):
        few = sources().head(n_sources)
        plan = build_plan(few, driving(), ["blink"], 100, 1.0, 0, GEN, 1)
        assert plan.height == n_sources * 2 and plan["candidate_id"].n_unique() == plan.height


def test_replacing_one_source_changes_only_its_keys():
    before = build_plan(sources(), driving(), ["blink", "yaw"], 4, 1.5, 0, GEN, 2)
    shas = {c: f"sha-{c}" for c in sources()["clip_id"]}
    shas["id2/v/00001"] = "a-new-photo"
    after = build_plan(sources(shas), driving(), ["blink", "yaw"], 4, 1.5, 0, GEN, 2)
    assert before["candidate_id"].equals(after["candidate_id"])
    changed = before.join(after, on="candidate_id").filter(pl.col("key") != pl.col("key_right"))
    assert set(changed["source_id"]) == {"id2/v/00001"}
    assert changed.height == before.filter(pl.col("source_id") == "id2/v/00001").height > 0


def test_generator_params_enter_the_key():
    a = build_plan(sources(), driving(), ["blink"], 2, 1.0, 0, GEN, 1)
    b = build_plan(sources(), driving(), ["blink"], 2, 1.0, 0,
                   {**GEN, "params": {"relative": False}}, 1)
    assert not set(a["key"]) & set(b["key"])


def test_splits_are_identity_disjoint_and_cover_every_split():
    rows = [{"identity": f"p{i}", "action": a} for i in range(7)
            for a in ("real", "blink", "yaw") for _ in range(1 + i % 3)]
    videos = pl.DataFrame(rows)
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    assignment = assign_splits(videos, fractions, seed=1)
    assert set(assignment) == {f"p{i}" for i in range(7)}
    assert set(assignment.values()) == {"train", "val", "test"}
    counts = videos.with_columns(pl.col("identity").replace_strict(assignment).alias("split"))
    share = counts.group_by("split").len().sort("split")
    train = share.filter(pl.col("split") == "train")["len"][0] / videos.height
    assert train > 0.5
    assert assignment == assign_splits(videos, fractions, seed=1)


def test_accept_keeps_first_passing_in_rank_order_per_policy():
    fakes = pl.DataFrame({"candidate_id": ["b0", "b1", "b2", "y0", "y1"],
                          "action": ["blink"] * 3 + ["yaw"] * 2, "rank": [0, 1, 2, 0, 1]})
    verdicts = pl.DataFrame({
        "candidate_id": ["b0", "b1", "b2", "y0", "y1"] * 2,
        "provider": ["local"] * 5 + ["other"] * 5,
        "passed": [False, True, True, True, True] + [True, True, True, False, True],
    })
    accepted, summary = accept(fakes, verdicts, {"blink": ["local"], "yaw": ["local", "other"]},
                               per_action=2)
    assert accepted["candidate_id"].to_list() == ["b1", "b2", "y1"]
    yaw = summary.filter(pl.col("action") == "yaw").row(0, named=True)
    assert yaw["passed"] == 1 and yaw["shortfall"] == 1 and yaw["spoof_rate"] == 0.5
    with pytest.raises(ValueError, match="no verdicts"):
        accept(fakes, verdicts.filter(pl.col("provider") == "local"), {"blink": ["other"],
                                                                       "yaw": ["local"]}, 1)


def test_a_generator_mix_draws_each_candidate_by_its_shares():
    """Several generators: each candidate draws one from its id (stable across plans and
    top-up rounds), in proportion to the shares; its key holds that generator's identity."""
    from dfmnist.plan import GeneratorMix

    warp = GEN
    fomm = {"name": "fomm", "weights_sha256": "ab" * 32, "params": {"relative": True}}
    mix = GeneratorMix({"landmark_warp": warp, "fomm": fomm}, {"landmark_warp": 1, "fomm": 3})
    picks = [mix.pick(0, f"blink/id{i}/v/00001/take00")["name"] for i in range(4000)]
    assert 0.72 < picks.count("fomm") / len(picks) < 0.78
    assert mix.pick(0, "blink/x") == mix.pick(0, "blink/x")
    plan = build_plan(sources(), driving(), ["blink", "yaw"], 8, 1.0, 0, mix, 2)
    assert set(plan["generator"]) == {"landmark_warp", "fomm"}
    for name, identity in (("landmark_warp", warp), ("fomm", fomm)):
        alone = build_plan(sources(), driving(), ["blink", "yaw"], 8, 1.0, 0, identity, 2)
        mine = plan.filter(pl.col("generator") == name)
        same = mine.join(alone, on="candidate_id")
        assert same.height == mine.height and (same["key"] == same["key_right"]).all()
    with pytest.raises(ValueError, match="positive"):
        GeneratorMix({"fomm": fomm}, {"fomm": 0})
    with pytest.raises(ValueError, match="one share per generator"):
        GeneratorMix({"fomm": fomm}, {"landmark_warp": 1})

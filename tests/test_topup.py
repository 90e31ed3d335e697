"""Top-up rounds: fresh candidates for the actions that fell short, and the round files."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from dfmnist.liveness.acceptance import accept
from dfmnist.liveness.topup import rounds_inputs, shortfalls, topup_plan
from dfmnist.plan import build_plan

GEN = {"name": "landmark_warp", "weights_sha256": None, "params": {"relative": True}}


def sources() -> pl.DataFrame:
    ids = [f"id{i}/v/00001" for i in range(3)]
    return pl.DataFrame({"clip_id": ids, "identity": [c.split("/")[0] for c in ids],
                         "image_path": [f"/img/{i}.png" for i in range(3)],
                         "image_sha256": [f"sha{i}" for i in range(3)],
                         "landmarks": [[0.0] * 10 for _ in ids]})


def driving() -> pl.DataFrame:
    rows = [{"action": a, "take": f"take{k:02d}", "video_path": f"/d/{a}/{k}.mp4",
             "video_sha256": f"v-{a}-{k}", "track_path": f"/d/{a}/{k}.parquet",
             "track_sha256": f"t-{a}-{k}"} for a in ("blink", "yaw") for k in range(2)]
    return pl.DataFrame(rows)


def test_topup_plans_unused_pairs_until_they_run_out():
    plan = build_plan(sources(), driving(), ["blink", "yaw"], 2, 1.0, 0, GEN, 2)
    # blink: both candidates fail; yaw: one passes
    fakes = plan.select("candidate_id", "action", "rank")
    verdicts = fakes.select("candidate_id", "action").with_columns(
        provider=pl.lit("baidu"), passed=pl.col("candidate_id") == plan.filter(
            pl.col("action") == "yaw")["candidate_id"][0])
    _, summary = accept(fakes, verdicts, {"blink": ["baidu"], "yaw": ["baidu"]}, 2)
    missing = shortfalls(summary)
    assert missing == {"blink": 2, "yaw": 1}
    new = topup_plan(sources(), driving(), plan, missing, 1.5, 0, GEN, 2)
    assert dict(new.group_by("action").len().iter_rows()) == {"blink": 3, "yaw": 2}
    assert new.filter(pl.col("action") == "blink")["rank"].to_list() == [2, 3, 4]
    assert not set(new["candidate_id"]) & set(plan["candidate_id"])
    assert new["candidate_id"].n_unique() == new.height and new.schema == plan.schema
    assert new.equals(topup_plan(sources(), driving(), plan, missing, 1.5, 0, GEN, 2))
    # keys and shards as the plan computes them for the same pair
    row = new.row(0, named=True)
    src = sources().filter(pl.col("clip_id") == row["source_id"])
    take = driving().filter((pl.col("action") == row["action"]) & (pl.col("take") == row["take"]))
    same = build_plan(src, take, [row["action"]], 1, 1.0, 0, GEN, 2).row(0, named=True)
    assert (same["key"], same["shard"]) == (row["key"], row["shard"])
    # 3 sources x 2 takes = 6 pairs per action: a second top-up gets only the one left
    both = pl.concat([plan, new])
    last = topup_plan(sources(), driving(), both, {"blink": 5}, 1.0, 0, GEN, 2)
    assert last["rank"].to_list() == [5]
    everything = pl.concat([both, last])
    assert everything.filter(pl.col("action") == "blink")["candidate_id"].n_unique() == 6
    assert topup_plan(sources(), driving(), everything, {"blink": 5}, 1.0, 0, GEN, 2).height == 0
    assert topup_plan(sources(), driving(), plan, {}, 1.5, 0, GEN, 2).height == 0


def test_rounds_inputs_stop_at_the_first_empty_round(tmp_path: Path):
    plans = {1: pl.DataFrame({"shard": [1, 1]}), 2: pl.DataFrame({"shard": []},
                                                                  schema={"shard": pl.Int64})}
    asked = []

    def round_plan(r: int) -> str:
        asked.append(r)
        path = tmp_path / f"{r}.parquet"
        plans[r].write_parquet(path)
        return str(path)

    # the workflow's templates (rules/generators.smk, rules/liveness.smk)
    paths = dict(plan="res/plan/plan.parquet",
                 fakes=("res/fake/raw/shards/{shard}.parquet",
                        "res/fake/raw/rounds/{round}/{shard}.parquet"),
                 verdicts=("res/liveness/{provider}/{shard}.parquet",
                           "res/liveness/{provider}/rounds/{round}/{shard}.parquet"))
    files = rounds_inputs(3, ["baidu", "tianyan"], [0, 1], round_plan, **paths)
    assert asked == [1, 2]  # round 3 is never planned: round 2 had nothing to do
    assert files["fakes"] == ["res/fake/raw/shards/0.parquet", "res/fake/raw/shards/1.parquet",
                              "res/fake/raw/rounds/1/1.parquet"]
    assert files["verdicts"][-2:] == ["res/liveness/baidu/rounds/1/1.parquet",
                                      "res/liveness/tianyan/rounds/1/1.parquet"]
    assert files["plans"] == ["res/plan/plan.parquet", str(tmp_path / "1.parquet")]
    assert rounds_inputs(0, ["local"], [0], round_plan, **paths)["plans"] == [
        "res/plan/plan.parquet"]


def test_pair_indices_are_distinct_seeded_and_cover_small_ranges():
    import numpy as np

    from dfmnist.liveness.topup import pair_indices

    dense = list(pair_indices(50, 3, np.random.default_rng(1)))
    assert sorted(dense) == list(range(50))
    sparse = pair_indices(10**12, 5, np.random.default_rng(1))
    drawn = [next(sparse) for _ in range(2000)]
    assert len(set(drawn)) == 2000 and all(0 <= k < 10**12 for k in drawn)
    again = pair_indices(10**12, 5, np.random.default_rng(1))
    assert [next(again) for _ in range(2000)] == drawn
    assert max(drawn) > 10**11  # drawn over the whole range, not its start


def test_topup_at_scale_draws_few_pairs_from_many():
    """20,000 sources x 5,000 takes = 10^8 pairs per action: the round touches only what it
    plans (materialising the pairs would take gigabytes)."""
    n = 20_000
    ids = [f"id{i // 100:04d}/v/{i % 100:05d}" for i in range(n)]
    many = pl.DataFrame({"clip_id": ids, "identity": [c.split("/")[0] for c in ids],
                         "image_path": [f"/img/{i}.png" for i in range(n)],
                         "image_sha256": [f"sha{i}" for i in range(n)],
                         "landmarks": [[0.0] * 10] * n})
    takes = pl.DataFrame([{"action": "blink", "take": f"take{k:05d}",
                           "video_path": f"/d/{k}.mp4", "video_sha256": f"v{k}",
                           "track_path": f"/d/{k}.parquet", "track_sha256": f"t{k}"}
                          for k in range(5_000)])
    plan = build_plan(many, takes, ["blink"], 30, 1.0, 0, GEN, 4)
    new = topup_plan(many, takes, plan, {"blink": 40}, 1.5, 0, GEN, 4)
    assert new.height == 60 and new["rank"].to_list() == list(range(30, 90))
    assert new["candidate_id"].n_unique() == 60
    assert not set(new["candidate_id"]) & set(plan["candidate_id"])
    assert new["source_id"].n_unique() > 50  # spread over the sources, not the first few
    assert new.equals(topup_plan(many, takes, plan, {"blink": 40}, 1.5, 0, GEN, 4))

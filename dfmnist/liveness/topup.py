"""Top-up rounds: new candidates for the actions that fell short of their target.

Round 0 is the plan. After each round the acceptance policy runs over every candidate so far;
each action still short of `per_action` gets ceil(shortfall x oversample) new candidates:
(source, take) pairs it has not used yet, in a seeded order, ranked after the earlier ones so
those keep priority. A round without shortfall, or with no unused pair left, plans nothing and
ends the rounds.

Pairs are drawn lazily: sources x takes grows past memory at scale (10,000 sources x 1,000
takes is 10^7 pairs per action), while a round needs a few thousand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import polars as pl

from dfmnist.plan import GeneratorMix, build_plan, candidate_id, stable_int


def shortfalls(summary: pl.DataFrame) -> dict[str, int]:
    """Action -> accepted fakes still missing, from `acceptance.accept`'s summary."""
    return {r["action"]: int(r["shortfall"]) for r in summary.iter_rows(named=True)
            if r["shortfall"] > 0}


#: Below this many pairs per needed one, a round shuffles every pair index instead of drawing.
DENSE_FACTOR = 4


def pair_indices(pairs: int, needed: int, rng: np.random.Generator) -> Iterator[int]:
    """Distinct indices in [0, pairs) in a seeded random order, drawn lazily.

    `needed`: how many the caller may consume (those it wants plus those it may skip). When
    pairs are plentiful (more than DENSE_FACTOR x needed) indices are drawn uniformly and
    repeats rejected, so memory and time grow with what is consumed, not with `pairs`, and
    each index costs fewer than 1 + 1/(DENSE_FACTOR - 1) draws. Otherwise `pairs` is small
    (bounded by DENSE_FACTOR x needed) and one permutation of them is cheap.
    """
    if pairs <= DENSE_FACTOR * needed + 1024:
        yield from (int(k) for k in rng.permutation(pairs))
        return
    seen: set[int] = set()
    while len(seen) < pairs:
        k = int(rng.integers(pairs))
        if k not in seen:
            seen.add(k)
            yield k


def topup_plan(sources: pl.DataFrame, driving: pl.DataFrame, planned: pl.DataFrame,
               missing: dict[str, int], oversample: float, seed: int,
               generator: dict | GeneratorMix, shards: int) -> pl.DataFrame:
    """New candidates (the plan's schema) for every action in `missing`.

    `planned`: every candidate of the earlier rounds. Each action gets up to
    ceil(shortfall x oversample) (source, take) pairs it has never used, in a seeded order
    (pair index i x takes + j, see `pair_indices`), ranked after its earlier candidates; rows
    (content key, shard) come from `build_plan`.
    """
    src = sources.sort("clip_id")
    clip_ids = src["clip_id"].to_list()
    empty = build_plan(src, driving, [], 0, 1.0, seed, generator, shards)
    parts = [empty]
    for action, short in sorted(missing.items()):
        takes = driving.filter(pl.col("action") == action).sort("take")
        take_ids = takes["take"].to_list()
        done = planned.filter(pl.col("action") == action)
        used = set(done["candidate_id"])
        next_rank = int(done["rank"].max()) + 1 if done.height else 0
        want = math.ceil(short * oversample)
        rng = np.random.default_rng(stable_int(seed, action, "topup"))
        for k in pair_indices(len(clip_ids) * len(take_ids), want + len(used), rng):
            if want == 0:
                break
            i, j = divmod(k, len(take_ids))
            if candidate_id(action, clip_ids[i], take_ids[j]) in used:
                continue
            row = build_plan(src[i], takes[j], [action], 1, 1.0, seed, generator, shards)
            parts.append(row.with_columns(rank=pl.lit(next_rank, dtype=pl.Int64)))
            next_rank += 1
            want -= 1
    return pl.concat(parts)


def rounds_inputs(last: int, providers: list[str], shards: list[int],
                  round_plan: Callable[[int], str], plan: str, fakes: tuple[str, str],
                  verdicts: tuple[str, str]) -> dict[str, list[str]]:
    """Fakes, verdicts and plans of rounds 0..`last`, up to the first round that planned none.

    `shards`: round 0's generation shards; `plan`: round 0's plan; `round_plan(r)`: the path
    of round r's top-up plan (in the workflow, the checkpoint's output, so asking for it
    schedules the round). `fakes` and `verdicts`: the path templates (the rules' outputs) of
    round 0 and of a top-up round, with {round}, {shard} and (verdicts) {provider}.
    """
    files: dict[str, list[str]] = {"fakes": [], "verdicts": [], "plans": []}
    for r in range(last + 1):
        if r == 0:
            used, round_file = list(shards), plan
        else:
            round_file = round_plan(r)
            used = sorted(set(pl.read_parquet(round_file, columns=["shard"])["shard"].to_list()))
        if not used:
            break
        fakes_path, verdicts_path = fakes[r > 0], verdicts[r > 0]
        files["fakes"] += [fakes_path.format(round=r, shard=s) for s in used]
        files["verdicts"] += [verdicts_path.format(round=r, shard=s, provider=p)
                              for p in providers for s in used]
        files["plans"].append(round_file)
    return files

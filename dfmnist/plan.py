"""Pairing sources with driving takes: a seeded, stable plan of candidates with content keys."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from dfmnist.storage.store import content_key


def stable_int(*parts: object) -> int:
    """A process-independent integer hash (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def candidate_id(action: str, clip_id: str, take: str) -> str:
    """The id of the candidate that animates source `clip_id` with driving `take`."""
    return f"{action}/{clip_id}/{take}"


def shard_of(candidate_id: str, shards: int) -> int:
    return stable_int("shard", candidate_id) % shards


@dataclass(frozen=True)
class GeneratorMix:
    """The animation generators of a dataset and their shares of the fakes: `identities`
    maps each name to its {name, weights_sha256, params} (part of its fakes' content keys),
    `shares` each name to a positive weight."""

    identities: dict[str, dict]
    shares: dict[str, float]

    def __post_init__(self) -> None:
        if not self.identities or set(self.identities) != set(self.shares):
            raise ValueError("a generator mix needs one share per generator, and one at least")
        bad = {k: v for k, v in self.shares.items() if not v > 0}
        if bad:
            raise ValueError(f"generator shares must be positive, got {bad}")

    @classmethod
    def single(cls, identity: dict) -> GeneratorMix:
        return cls({identity["name"]: identity}, {identity["name"]: 1.0})

    def pick(self, seed: int, candidate: str) -> dict:
        """The generator of `candidate`: a seeded draw by the shares, from the candidate's id
        alone, so a top-up round's candidates and a re-run draw as the first plan did."""
        names = sorted(self.identities)
        if len(names) == 1:
            return self.identities[names[0]]
        total = sum(self.shares[n] for n in names)
        point = stable_int(seed, "generator", candidate) / 2**64 * total
        for name in names:
            point -= self.shares[name]
            if point < 0:
                return self.identities[name]
        return self.identities[names[-1]]


def build_plan(
    sources: pl.DataFrame,
    driving: pl.DataFrame,
    actions: list[str],
    per_action: int,
    oversample: float,
    seed: int,
    generator: dict | GeneratorMix,
    shards: int,
) -> pl.DataFrame:
    """Candidates per action: seeded source order, driving takes round robin.

    `sources`: selected sources (clip_id, identity, image_path, image_sha256, landmarks).
    A candidate's key covers every value its generator reads, the landmarks included.
    `driving`: one row per cropped take (action, take, video_path, video_sha256, track_path,
    track_sha256). `generator`: {name, weights_sha256, params}, all part of the content key,
    or a `GeneratorMix` that draws each candidate's generator (`GeneratorMix.pick`).
    Pairing depends on ids only, never on file contents, so replacing a photo changes the
    keys of exactly the candidates that use it and nothing else.
    """
    mix = generator if isinstance(generator, GeneratorMix) else GeneratorMix.single(generator)
    src = sources.sort("clip_id")
    rows = []
    for action in actions:
        takes = driving.filter(pl.col("action") == action).sort("take")
        if takes.height == 0 or src.height == 0:
            continue
        wanted = math.ceil(per_action * oversample)
        n = min(wanted, src.height * takes.height)
        order = np.random.default_rng(stable_int(seed, action)).permutation(src.height)
        for rank in range(n):
            s = src.row(int(order[rank % src.height]), named=True)
            # source i of round q gets take (i + q): every (source, take) pair once
            d = takes.row((rank % src.height + rank // src.height) % takes.height, named=True)
            candidate = candidate_id(action, s["clip_id"], d["take"])
            maker = mix.pick(seed, candidate)
            # everything the generator reads: the source image and its landmarks (on the
            # detector's grid, dfmnist.vision.faces), the driving crop and its track
            key = content_key("fake", s["image_sha256"], s["landmarks"], d["video_sha256"],
                              d["track_sha256"], maker)
            rows.append({
                "candidate_id": candidate, "action": action, "rank": rank,
                "source_id": s["clip_id"], "identity": s["identity"],
                "source_image": s["image_path"], "source_sha256": s["image_sha256"],
                "source_landmarks": s["landmarks"], "take": d["take"],
                "driving_video": d["video_path"], "driving_sha256": d["video_sha256"],
                "driving_track": d["track_path"], "generator": maker["name"],
                "key": key, "shard": shard_of(candidate, shards),
            })
    schema = {"candidate_id": pl.String, "action": pl.String, "rank": pl.Int64,
              "source_id": pl.String, "identity": pl.String, "source_image": pl.String,
              "source_sha256": pl.String, "source_landmarks": pl.List(pl.Float64),
              "take": pl.String, "driving_video": pl.String, "driving_sha256": pl.String,
              "driving_track": pl.String, "generator": pl.String, "key": pl.String,
              "shard": pl.Int64}
    return pl.DataFrame(rows, schema=schema)

"""Which identities swap faces, which of their clips are converted, and what each fake is named.

DFDM trains one autoencoder per pair of identities and model; the pair's two decoders let one
training serve both directions (A's video with B's face, and B's with A's). A *couple* is such
an unordered pair; couples are disjoint, so each identity trains in at most one couple and the
identity-disjoint splits can keep a couple's two identities together (`split_groups`).
"""

from __future__ import annotations

import polars as pl

from dfmnist.plan import stable_int

#: DFDM's five autoencoders (shared/seeds/dfdm-model-attribution-readme.txt), in its order.
DFDM_MODELS = ("faceswap", "lightweight", "iae", "dfaker", "dfl_h128")
#: The generator family recorded in the dataset for face-swap fakes (the `model` column says
#: which autoencoder).
FACE_SWAP = "face_swap"
#: Joins a couple's two identities in its id (identity names never hold it, see `check`).
COUPLE_SEP = "+"
#: How a model trains (`dfmnist.faceswap.training`): faceswap's defaults, or the quick MAE one.
RECIPES = ("faceswap", "simple")


def couple_id(a: str, b: str) -> str:
    return f"{a}{COUPLE_SEP}{b}"


def couple_members(couple: str) -> tuple[str, str]:
    a, b = couple.split(COUPLE_SEP)
    return a, b


def plan_couples(identities: list[str], pairs: int, seed: int) -> list[str]:
    """Disjoint couples of identities: a seeded order, paired off two by two; `pairs` couples
    at most (0 = as many as the identities allow). Stable: the same identities and seed give
    the same couples, and adding an identity changes only the couples after it in the order."""
    bad = [i for i in identities if COUPLE_SEP in i]
    if bad:
        raise ValueError(f"identity names must not contain {COUPLE_SEP!r} (face swap pairs "
                         f"are named by it): {', '.join(sorted(bad))}")
    order = sorted(identities, key=lambda i: (stable_int(seed, "couple", i), i))
    couples = [couple_id(*sorted(order[k:k + 2])) for k in range(0, len(order) - 1, 2)]
    return couples[:pairs] if pairs else couples


def split_groups(couples: list[str]) -> dict[str, str]:
    """identity -> group: a couple's identities share a split (its fakes show both faces)."""
    return {member: couple for couple in couples for member in couple_members(couple)}


def scene_name(clip_id: str) -> str:
    """DFDM's scene: the clip within its identity ('video/clip' -> 'video-clip')."""
    return "-".join(clip_id.split("/")[1:])


def fake_name(target: str, donor: str, clip_id: str, model: str) -> str:
    """DFDM's file name: id{A}_id{B}_{scene}_{model}.mp4 (A's video, B's face)."""
    return f"id{target}_id{donor}_{scene_name(clip_id)}_{model}.mp4"


def target_clips(sources: pl.DataFrame, identity: str, scenes: int) -> pl.DataFrame:
    """The clips of `identity` whose faces are swapped: its selected sources, best first
    (the sources stage's rank), `scenes` of them (0 = all)."""
    mine = sources.filter(pl.col("selected") & (pl.col("identity") == identity))
    mine = mine.sort(["identity_rank", "clip_id"])
    return mine.head(scenes) if scenes else mine


def train_settings(faceswap: dict, model: str) -> dict:
    """The training settings of one model: `faceswap.train`, overridden by
    `faceswap.per_model[model]` (so changing one model's iterations retrains only it)."""
    return {**faceswap["train"], **(faceswap.get("per_model") or {}).get(model, {})}

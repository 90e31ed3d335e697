"""The dataset manifest: one row per (video, variant), everything a detector or auditor needs."""

from __future__ import annotations

import hashlib
import json

import polars as pl

#: Real is the positive class, as in the DeepFake MNIST+ paper.
LABEL_REAL, LABEL_FAKE = 1, 0
#: What made a fake (null for reals): the generator family (landmark_warp, fomm, face_swap),
#: the model (the class a model-attribution task predicts: the animation generator's name or
#: the face-swap autoencoder), the donor identity of a face swap, and the weights' sha256.
MADE_BY = ("generator", "model", "donor", "weights_sha256")


def video_table(reals: pl.DataFrame, fakes: pl.DataFrame) -> pl.DataFrame:
    """The videos entering compression: selected real clips and accepted fakes.

    reals: sources manifest rows (clip_id, identity, path, sha256); fakes: accepted fakes
    (candidate_id, action, identity, source_id, take, key, video_path, sha256 and `MADE_BY`).
    """
    none = pl.lit(None, pl.String)
    real_rows = reals.select(
        ("real/" + pl.col("clip_id")).alias("video_id"), pl.lit("real").alias("label"),
        none.alias("action"), "identity", "path", "sha256",
        pl.col("clip_id").alias("source_id"), none.alias("take"), none.alias("key"),
        *(none.alias(c) for c in MADE_BY),
    )
    fake_rows = fakes.select(
        ("fake/" + pl.col("candidate_id")).alias("video_id"), pl.lit("fake").alias("label"),
        "action", "identity", pl.col("video_path").alias("path"), "sha256", "source_id",
        "take", "key", *MADE_BY,
    )
    return pl.concat([real_rows, fake_rows]).sort("video_id")


def liveness_table(verdicts: pl.DataFrame) -> pl.DataFrame:
    """Per fake video: every provider's verdict as JSON, and whether all of them passed."""
    if verdicts.height == 0:
        return pl.DataFrame(schema={"video_id": pl.String, "liveness": pl.String,
                                    "liveness_passed": pl.Boolean})
    per = verdicts.sort("provider").group_by("candidate_id", maintain_order=True).agg(
        pl.col("passed").all().alias("liveness_passed"),
        pl.struct("provider", "passed", "score").alias("verdicts"),
    )
    return per.select(
        ("fake/" + pl.col("candidate_id")).alias("video_id"),
        pl.col("verdicts").map_elements(
            lambda vs: json.dumps({v["provider"]: {"passed": v["passed"], "score": v["score"]}
                                   for v in vs}, sort_keys=True), return_dtype=pl.String,
        ).alias("liveness"),
        "liveness_passed",
    )


#: Where a video's frames are: its shard's frames tar and its members' prefix there.
FRAMES_AT = ("frames_tar", "frames_prefix")


def build_manifest(videos: pl.DataFrame, compressed: pl.DataFrame, frames: pl.DataFrame,
                   assignment: dict[str, str], verdicts: pl.DataFrame | None = None
                   ) -> pl.DataFrame:
    """Join videos, their variants and frames, liveness verdicts and the identity splits."""
    split = pl.DataFrame({"identity": list(assignment), "split": list(assignment.values())})
    base = videos.rename({"path": "raw_path", "sha256": "raw_sha256", "key": "content_key"})
    live = liveness_table(verdicts if verdicts is not None else pl.DataFrame())
    is_fake = pl.col("label") == "fake"
    table = (
        compressed.select("video_id", "variant", "path", "sha256", "size_bytes", "bitrate_kbps",
                          "psnr_db", "ssim")
        .join(base, on="video_id", how="inner")
        .join(frames.select("video_id", "variant", *FRAMES_AT, "frame_indices"),
              on=["video_id", "variant"], how="left")
        .join(split, on="identity", how="left")
        .join(live, on="video_id", how="left")
        .with_columns(
            pl.when(is_fake).then(LABEL_FAKE).otherwise(LABEL_REAL).alias("target"),
            pl.col("frame_indices").list.len().alias("n_frames"),
        )
    )
    if table["split"].null_count():
        raise ValueError("some identities have no split")
    return table.select(
        "video_id", "variant", "label", "target", "action", "identity", "split", "path",
        "sha256", "size_bytes", "bitrate_kbps", "psnr_db", "ssim", *FRAMES_AT,
        "frame_indices", "n_frames", "source_id", "take", "content_key", *MADE_BY,
        "liveness", "liveness_passed", "raw_path", "raw_sha256",
    ).sort(["variant", "video_id"])


def _face_swap_lines(faceswap: dict) -> list[str]:
    """How the face swaps were made: each model's training recipe and the blend mask."""
    if not faceswap.get("models"):
        return []
    from dfmnist.faceswap.pairs import train_settings

    recipes = []
    for model in faceswap["models"]:
        settings = train_settings(faceswap, model)
        mask = " + learned mask" if settings.get("learn_mask") else ""
        recipes.append(f"`{model}`: {settings.get('recipe', 'faceswap')}{mask}")
    return [f"- face swaps: blend mask `{faceswap['blend']['mask']}`, crops at coverage "
            f"{faceswap['coverage']:g} of faceswap's face-centred square; training recipe per "
            "model: "
            + ", ".join(recipes)]


def dataset_card(manifest: pl.DataFrame, spoof_rates: pl.DataFrame, config: dict,
                 generators: list[dict], encodes: dict[str, str]) -> str:
    """A markdown card: counts per action, split and variant, and how the data was made
    (`generators`: the identities of the animation generators, one line each)."""
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    one_variant = manifest.filter(pl.col("variant") == manifest["variant"].min())
    counts = (one_variant.with_columns(pl.col("action").fill_null("(real)"))
              .group_by(["action", "split"]).len()
              .pivot(on="split", index="action", values="len").fill_null(0).sort("action"))
    splits = [s for s in ("train", "val", "test") if s in counts.columns]
    lines = [
        f"# Dataset card: {config['targets'].get('dataset_name', 'DFMNIST')}",
        "",
        f"- config sha256: `{config_hash.hexdigest()}`",
        f"- videos: {one_variant.height} "
        f"({(one_variant['label'] == 'real').sum()} real, "
        f"{(one_variant['label'] == 'fake').sum()} fake), each in "
        f"{manifest['variant'].n_unique()} variants ({', '.join(sorted(encodes))})",
        f"- identities: {manifest['identity'].n_unique()}, split identity-disjoint "
        f"({', '.join(f'{k} {v:g}' for k, v in config['targets']['splits'].items())})",
        "- labels: real = 1 (the positive class, as in DeepFake MNIST+), fake = 0",
        *(f"- animation generator: `{g['name']}`, weights sha256 "
          f"`{g.get('weights_sha256') or 'none (no weights)'}`, params "
          f"`{json.dumps(g.get('params', {}), sort_keys=True)}`" for g in generators),
        "- fakes per model: " + (", ".join(
            f"`{m}` {n}" for m, n in one_variant.filter(pl.col("label") == "fake")
            .group_by("model").len().sort("model").iter_rows()) or "none"),
        *_face_swap_lines(config.get("faceswap") or {}),
        f"- liveness policy: `{json.dumps(config['liveness']['policy'], sort_keys=True)}`"
        + (" (face swaps are not liveness-filtered, as DFDM)"
           if (config.get("faceswap") or {}).get("models") else ""),
        "",
        "## Videos per action and split",
        "",
        "| action | " + " | ".join(splits) + " |",
        "|---|" + "---|" * len(splits),
    ]
    for row in counts.iter_rows(named=True):
        lines.append(f"| {row['action']} | " + " | ".join(str(row[s]) for s in splits) + " |")
    lines += ["", "## Variants", "", "| variant | videos | mean kbps | mean PSNR dB | mean SSIM "
              "| ffmpeg arguments |", "|---|---|---|---|---|---|"]
    for variant, group in manifest.group_by("variant", maintain_order=True):
        finite = group.filter(pl.col("psnr_db").is_finite())
        psnr = f"{finite['psnr_db'].mean():.2f}" if finite.height else "lossless"
        lines.append(f"| {variant[0]} | {group.height} | {group['bitrate_kbps'].mean():.0f} | "
                     f"{psnr} | {group['ssim'].mean():.4f} | `{encodes[variant[0]]}` |")
    lines += ["", "## Liveness (spoof rate per action)", "",
              "| action | providers | candidates | passed | spoof rate | accepted | shortfall |",
              "|---|---|---|---|---|---|---|"]
    for r in spoof_rates.iter_rows(named=True):
        lines.append(f"| {r['action']} | {r['providers']} | {r['candidates']} | {r['passed']} | "
                     f"{r['spoof_rate']:.2f} | {r['accepted']} | {r['shortfall']} |")
    lines += ["", "Frames: one tar per shard (`frames_tar`), in WebDataset layout (a video's "
              "members `{frames_prefix}/{frame:04d}.{size}.png`; `dfmnist.train.data.FrameDataset` "
              "reads it); paths are relative to the workflow directory.", ""]
    return "\n".join(lines)

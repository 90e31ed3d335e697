"""The dataset manifest: one row per (video, variant), everything a detector or auditor needs."""

from __future__ import annotations

import polars as pl

#: Real is the positive class, as in the DeepFake MNIST+ paper.
LABEL_REAL, LABEL_FAKE = 1, 0


def video_table(reals: pl.DataFrame, fakes: pl.DataFrame) -> pl.DataFrame:
    """The videos entering compression: selected real clips and accepted fakes.

    reals: sources manifest rows (clip_id, identity, path, sha256); fakes: accepted fakes
    (candidate_id, action, identity, source_id, take, key, video_path, sha256).
    """
    real_rows = reals.select(
        ("real/" + pl.col("clip_id")).alias("video_id"), pl.lit("real").alias("label"),
        pl.lit(None, pl.String).alias("action"), "identity", "path", "sha256",
        pl.col("clip_id").alias("source_id"), pl.lit(None, pl.String).alias("take"),
        pl.lit(None, pl.String).alias("key"),
    )
    fake_rows = fakes.select(
        ("fake/" + pl.col("candidate_id")).alias("video_id"), pl.lit("fake").alias("label"),
        "action", "identity", pl.col("video_path").alias("path"), "sha256", "source_id",
        "take", "key",
    )
    return pl.concat([real_rows, fake_rows]).sort("video_id")


def build_manifest(videos: pl.DataFrame, compressed: pl.DataFrame, frames: pl.DataFrame,
                   assignment: dict[str, str], generator: str) -> pl.DataFrame:
    """Join videos, their variants and frames, and the identity splits."""
    split = pl.DataFrame({"identity": list(assignment), "split": list(assignment.values())})
    base = videos.rename({"path": "raw_path", "sha256": "raw_sha256", "key": "content_key"})
    table = (
        compressed.select("video_id", "variant", "path", "sha256", "size_bytes", "bitrate_kbps")
        .join(base, on="video_id", how="inner")
        .join(frames.select("video_id", "variant", "frames_dir",
                            pl.col("frame_paths").list.len().alias("n_frames")),
              on=["video_id", "variant"], how="left")
        .join(split, on="identity", how="left")
        .with_columns(
            pl.when(pl.col("label") == "real").then(LABEL_REAL).otherwise(LABEL_FAKE)
            .alias("target"),
            pl.when(pl.col("label") == "fake").then(pl.lit(generator)).otherwise(None)
            .alias("generator"),
        )
    )
    if table["split"].null_count():
        raise ValueError("some identities have no split")
    return table.select(
        "video_id", "variant", "label", "target", "action", "identity", "split", "path",
        "sha256", "size_bytes", "bitrate_kbps", "frames_dir", "n_frames", "source_id", "take",
        "content_key", "generator", "raw_path", "raw_sha256",
    ).sort(["variant", "video_id"])

"""Compression variants: every real and fake video re-encoded with libx264 per named variant."""

from __future__ import annotations

import json
import logging

import polars as pl

from dfmnist.io import Encoding, ffmpeg_version, probe_video, sha256_file, transcode
from dfmnist.store import Store, content_key

log = logging.getLogger(__name__)

COMPRESSED = "compressed"


def encoding_for(variant: dict) -> Encoding:
    return Encoding(codec="libx264", crf=int(variant["crf"]),
                    preset=variant.get("preset", "medium"),
                    pix_fmt=variant.get("pix_fmt", "yuv420p"), gop=variant.get("gop"))


def compress_shard(videos: pl.DataFrame, variant: str, encoding: Encoding, store: Store
                   ) -> pl.DataFrame:
    """Encode each video (columns video_id, label, path, sha256) into the store."""
    version = ffmpeg_version()
    rows = []
    for i, video in enumerate(videos.iter_rows(named=True), start=1):
        key = content_key(COMPRESSED, video["sha256"], encoding.__dict__, version)
        computed = not store.has(COMPRESSED, key)
        if computed:
            with store.build(COMPRESSED, key, {"video_id": video["video_id"],
                                               "variant": variant}) as tmp:
                args = transcode(video["path"], tmp / "video.mp4", encoding)
                (tmp / "ffmpeg.json").write_text(json.dumps({"version": version, "args": args}))
        out = store.item_dir(COMPRESSED, key) / "video.mp4"
        info = probe_video(out)
        size = out.stat().st_size
        log.info("[%d/%d] %s %s %s (%d bytes)", i, videos.height, variant, video["video_id"],
                 "encoded" if computed else "reused", size)
        rows.append({"video_id": video["video_id"], "variant": variant, "key": key,
                     "path": str(out), "sha256": sha256_file(out), "size_bytes": size,
                     "duration_s": info.duration,
                     "bitrate_kbps": size * 8 / 1000 / info.duration if info.duration else None,
                     "computed": computed})
    return pl.DataFrame(rows, schema={
        "video_id": pl.String, "variant": pl.String, "key": pl.String, "path": pl.String,
        "sha256": pl.String, "size_bytes": pl.Int64, "duration_s": pl.Float64,
        "bitrate_kbps": pl.Float64, "computed": pl.Boolean,
    })

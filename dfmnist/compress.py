"""Compression variants: every real and fake video re-encoded with libx264 per named variant."""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess

import polars as pl

from dfmnist.storage.files import sha256_file
from dfmnist.storage.store import Store, content_key
from dfmnist.storage.video import Encoding, ffmpeg_exe, ffmpeg_version, probe_video, transcode

log = logging.getLogger(__name__)

COMPRESSED = "compressed"
#: Bump when what is stored beside each encode changes.
QUALITY_VERSION = 1

#: Named variant sets. `paper`: DeepFake MNIST+ (raw, H.264 c23 light, c40 heavy compression);
#: `dfdm`: the DFDM attribution dataset's lossless, high and low quality (crf 0, 10, 23).
PRESETS: dict[str, dict[str, dict]] = {
    "paper": {
        "raw": {"crf": 0, "preset": "medium", "pix_fmt": "yuv420p"},
        "c23": {"crf": 23, "preset": "medium", "pix_fmt": "yuv420p"},
        "c40": {"crf": 40, "preset": "medium", "pix_fmt": "yuv420p"},
    },
    "dfdm": {
        "crf0": {"crf": 0, "preset": "medium", "pix_fmt": "yuv420p"},
        "crf10": {"crf": 10, "preset": "medium", "pix_fmt": "yuv420p"},
        "crf23": {"crf": 23, "preset": "medium", "pix_fmt": "yuv420p"},
    },
}


def variants_from_config(compress: dict) -> dict[str, dict]:
    """The named variants to build: `compress.variants` when given, else the preset's."""
    return dict(compress.get("variants") or PRESETS[compress["preset"]])


_SSIM_RE = re.compile(r"SSIM .*All:([\d.]+)")
_PSNR_RE = re.compile(r"PSNR .*average:(inf|[\d.]+)")


def quality_against(reference: str, distorted: str) -> tuple[float, float]:
    """(PSNR dB, SSIM) of `distorted` against `reference`, from ffmpeg's own filters.

    PSNR of identical videos is infinite; it is reported as math.inf.
    """
    graph = ("[0:v]split=2[d1][d2];[1:v]split=2[r1][r2];"
             "[d1][r1]ssim;[d2][r2]psnr")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(distorted), "-i", str(reference),
         "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True,
    )
    ssim, psnr = _SSIM_RE.search(proc.stderr), _PSNR_RE.search(proc.stderr)
    if proc.returncode != 0 or not ssim or not psnr:
        raise RuntimeError(f"ffmpeg could not compare {distorted} with {reference}: "
                           f"{proc.stderr[-500:]}")
    return (math.inf if psnr.group(1) == "inf" else float(psnr.group(1))), float(ssim.group(1))


def encoding_for(variant: dict) -> Encoding:
    """The encoding of one variant (`compress.variants` entry); a key it leaves out takes
    Encoding's default, which is the schema's (tests/test_config_defaults.py)."""
    given = {k: variant[k] for k in ("preset", "pix_fmt", "gop") if k in variant}
    return Encoding(codec="libx264", crf=int(variant["crf"]), **given)


def compress_shard(videos: pl.DataFrame, variant: str, encoding: Encoding, store: Store
                   ) -> pl.DataFrame:
    """Encode each video (columns video_id, label, path, sha256) into the store."""
    version = ffmpeg_version()
    rows = []
    for i, video in enumerate(videos.iter_rows(named=True), start=1):
        key = content_key(COMPRESSED, video["sha256"], encoding.__dict__, version, QUALITY_VERSION)
        computed = not store.has(COMPRESSED, key)
        if computed:
            with store.build(COMPRESSED, key, {"video_id": video["video_id"],
                                               "variant": variant}) as tmp:
                args = transcode(video["path"], tmp / "video.mp4", encoding)
                psnr, ssim = quality_against(video["path"], tmp / "video.mp4")
                (tmp / "encode.json").write_text(json.dumps({
                    "ffmpeg_version": version, "ffmpeg_args": args, "psnr_db": psnr,
                    "ssim": ssim}))
        item = store.item_dir(COMPRESSED, key)
        out = item / "video.mp4"
        encode = json.loads((item / "encode.json").read_text())
        info = probe_video(out)
        size = out.stat().st_size
        log.info("[%d/%d] %s %s %s (%d bytes)", i, videos.height, variant, video["video_id"],
                 "encoded" if computed else "reused", size)
        rows.append({"video_id": video["video_id"], "variant": variant, "key": key,
                     "path": str(out), "sha256": sha256_file(out), "size_bytes": size,
                     "duration_s": info.duration,
                     "bitrate_kbps": size * 8 / 1000 / info.duration if info.duration else None,
                     "psnr_db": encode["psnr_db"], "ssim": encode["ssim"],
                     "ffmpeg_version": encode["ffmpeg_version"],
                     "ffmpeg_args": " ".join(encode["ffmpeg_args"]), "computed": computed})
    return pl.DataFrame(rows, schema={
        "video_id": pl.String, "variant": pl.String, "key": pl.String, "path": pl.String,
        "sha256": pl.String, "size_bytes": pl.Int64, "duration_s": pl.Float64,
        "bitrate_kbps": pl.Float64, "psnr_db": pl.Float64, "ssim": pl.Float64,
        "ffmpeg_version": pl.String, "ffmpeg_args": pl.String, "computed": pl.Boolean,
    })

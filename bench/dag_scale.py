"""How the workflow's orchestration grows with the number of inputs.

    python bench/dag_scale.py [--sizes 1k,20k,150k] [--real 1k,20k] [--keep DIR]

For each size (source clips / driving takes: 1k/50, 20k/2,000, 150k/10,000) it builds a
VoxCeleb-style tree of symlinks ({identity}/{video}/{clip}.mp4, 100 clips per identity) and a
driving tree ({action}/{take}.mp4), all pointing at one small real clip of a real face, and
prints for `snakemake -n` (the whole default target): wall time (parse + discovery + DAG),
job count and peak RSS.

`--real` sizes also run the item-scale stages for real (`manifests/sources.parquet` and
`manifests/driving.parquet`: every clip scored, every take cropped, as one item each). Every
link points at the same bytes, so the content-addressed store computes one clip and one take
and every other item is a store hit: what is timed is the per-item work the workflow does
besides the science (hashing each input, store look-ups, one row per item, job scheduling),
i.e. the orchestration. Then a no-op rerun of the same targets. Run times should grow
linearly with the item count.

`--scheduler-jobs N` times Snakemake's two job selectors on N independent trivial jobs
(`echo` into a file) that are all ready at once, the shape of a large shard stage.

`--build DIR` (the work directory of a finished demo build) prints the file count a
paper-scale build would leave, from the build's own per-item counts (`file_count_estimate`).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SIZES = {"1k": (1_000, 50), "20k": (20_000, 2_000), "150k": (150_000, 10_000)}
CLIPS_PER_IDENTITY = 100
CLIPS_PER_VIDEO = 10


def make_clip(path: Path, seconds: float = 1.0, fps: int = 12, side: int = 256) -> None:
    """A small real clip: a real photo of a face (skimage's astronaut), slowly zooming."""
    import cv2
    import numpy as np
    from skimage import data

    from dfmnist.storage.video import VideoWriter

    photo = data.astronaut()[:300, 100:400]
    frames = []
    for i in range(int(seconds * fps)):
        crop = 6 + i
        frames.append(cv2.resize(photo[crop:-crop, crop:-crop], (side, side)))
    with VideoWriter(path, side, side, fps) as writer:
        writer.write(np.stack(frames))


def build_tree(root: Path, clips: int, takes: int, actions: list[str], clip: Path,
               take: Path) -> None:
    """Symlinked source and driving trees (the same bytes behind every link)."""
    sources = root / "voxceleb"
    for c in range(clips):
        identity, rest = divmod(c, CLIPS_PER_IDENTITY)
        video, k = divmod(rest, CLIPS_PER_VIDEO)
        folder = sources / f"id{identity:05d}" / f"v{video:02d}"
        if k == 0:
            folder.mkdir(parents=True, exist_ok=True)
        os.symlink(clip, folder / f"{k:05d}.mp4")
    driving = root / "driving"
    for t in range(takes):
        action = actions[t % len(actions)]
        folder = driving / action
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(take, folder / f"take{t:05d}.mp4")


def write_config(workdir: Path, root: Path, clips: int, takes: int, clips_per_shard: int,
                 takes_per_shard: int) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["demo"]["enabled"] = False
    config["data"] = {"sources_dir": str(root / "voxceleb"), "driving_dir": str(root / "driving")}
    config["sources"].update(shards=math.ceil(clips / clips_per_shard), count=0, min_frames=8)
    config["driving"].update(shards=math.ceil(takes / takes_per_shard), min_frames=8)
    config["liveness"]["cache"] = str(workdir / "liveness.sqlite")
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return config


def timed(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MB) and output of one command, under /usr/bin/time -v."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out[-4000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out).group(1)) // 1024
    return wall, rss, out


def snakemake(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
            str(workdir), "--cores", "2", *args]


def job_count(out: str) -> int:
    """Total of the 'Job stats' table of a dry run."""
    match = re.search(r"^total\s+(\d+)", out, flags=re.MULTILINE)
    return int(match.group(1)) if match else 0


SCHEDULER_SNAKEFILE = """
import os
rule all:
    input: expand("out/{i}.txt", i=range(int(os.environ["JOBS"])))
rule one:
    output: "out/{i}.txt"
    shell: "echo {wildcards.i} > {output}"
"""


def compare_schedulers(base: Path, jobs: int) -> None:
    """Wall time of N ready trivial jobs under the greedy and the ILP job selector."""
    folder = base / "schedulers"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Snakefile").write_text(SCHEDULER_SNAKEFILE)
    os.environ["JOBS"] = str(jobs)
    for scheduler in ("greedy", "ilp"):
        shutil.rmtree(folder / "out", ignore_errors=True)
        shutil.rmtree(folder / ".snakemake", ignore_errors=True)
        wall, rss, _ = timed([sys.executable, "-m", "snakemake", "--cores", "2", "--quiet",
                              "all", "--scheduler", scheduler], folder)
        print(f"{jobs} trivial jobs, --scheduler {scheduler}: {wall:.1f} s, peak {rss} MB",
              flush=True)


#: Paper-scale item counts (DeepFake MNIST+): every VoxCeleb1 clip scored in `source_shards`
#: scoring shards (1,000 clips each, `--paper-clips-per-shard`), at most one selected source
#: per generated fake (`sources`: an upper bound, the paper does not say how many), 5 takes x
#: 10 actions, 10,000 accepted fakes generated at plan.oversample 1.5, and 10,000 fakes +
#: 10,000 reals in 3 compression variants (raw, c23, c40), 8 frames per video
#: (targets.frames.count) at 2 sizes; `shards` (variant, compress shard) pairs hold the frames,
#: at `compress.shards` 100 (200 videos, 1,600 frames per shard tar; `--paper-compress-shards`).
PAPER = {"clips": 153_516, "source_shards": 154, "sources": 15_000, "takes": 50,
         "generated": 15_000, "videos": 60_000, "frames": 8, "sizes": 2, "shards": 3 * 100}
#: What each store kind's item count grows with (paper-scale items of that kind); the files
#: unpacked for the DeepfakeBench export grow with its frames and count as the export's. A
#: scoring shard's best frames are one item; only selected sources' frames are files
#: (`source_image`), and only a selected frame-folder clip is made a video (`source_video`).
KIND_GROWS_WITH = {"source_frame": "source_shards", "source_image": "sources",
                   "source_video": "sources", "driving_take": "takes",
                   "fake": "generated", "compressed": "videos", "frames": "shards",
                   "face_annotations": "shards"}
EXPORT_KINDS = ("unpacked_tar",)


def count_files(folder: Path, seen: set[tuple[int, int]] | None = None) -> int:
    """Files under `folder` that hold an inode not in `seen` (a hard link into the store
    costs a volume no inode), adding theirs to `seen`."""
    seen = set() if seen is None else seen
    count = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            info = os.lstat(os.path.join(dirpath, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                count += 1
    return count


def file_count_estimate(workdir: Path) -> None:
    """Files per item of each store kind in a finished build, and files per exported frame,
    scaled to the paper's counts (a store keeps older items too: per item is what counts)."""
    import polars as pl

    results = workdir / "results"
    dataset = pl.read_parquet(results / "dataset" / "dataset.parquet")
    exported_frames = int(dataset["n_frames"].sum())
    paper_frames = PAPER["videos"] * PAPER["frames"]
    print(f"build {workdir}: {dataset.height} videos, {exported_frames} frames in the dataset, "
          f"paper scale {PAPER['clips']:,} clips scored in {PAPER['source_shards']} shards, "
          f"{PAPER['videos']:,} videos in {PAPER['shards']} frame shards")
    total = 0
    seen: set[tuple[int, int]] = set()
    for kind_dir in sorted(p for p in (results / "store").iterdir()
                           if p.name != ".staging" and p.name not in EXPORT_KINDS):
        items = len(list(kind_dir.glob("*/*")))
        files = count_files(kind_dir, seen)
        grows = KIND_GROWS_WITH.get(kind_dir.name)
        paper = files if grows is None else round(files / max(items, 1) * PAPER[grows])
        total += paper
        print(f"  store/{kind_dir.name:<16} {items:>5} items {files:>6} files "
              f"({files / max(items, 1):.1f} per item) -> paper scale {paper:>10,}")
    exports = 0
    for name in ("deepfakebench", "faceforensics"):
        # new inodes only (not the store's links). DeepfakeBench's LMDB export (the default)
        # is a file per variant; its folder export has frames, masks and landmarks as files
        # per frame, unpacked into the store (linked from the export). FaceForensics++'s
        # videos are links, its new files the few split lists
        files = count_files(results / name, seen)
        per_frame = name == "deepfakebench" and not (results / name / "lmdb").is_dir()
        if per_frame:
            files += sum(count_files(results / "store" / k, seen) for k in EXPORT_KINDS)
        paper = round(files / max(exported_frames, 1) * paper_frames) if per_frame else files
        exports += paper
        grows = (f"{files / max(exported_frames, 1):.2f} per frame" if per_frame
                 else "not growing with the frames")
        print(f"  {name:<22} {files:>6} new files ({grows}) -> paper scale {paper:>10,}")
    # outside the store: shard tables and logs grow with shards; the demo's own inputs
    # (results/demo) stand in for the user's data and are not counted
    for name in ("store", "deepfakebench", "faceforensics", "demo"):
        count_files(results / name, seen)
    rest = count_files(results, seen)
    meta = count_files(workdir / ".snakemake" / "metadata")
    print(f"  other results files {rest}, .snakemake/metadata {meta} (grow with shards)")
    print(f"paper-scale build: about {total + exports + rest + meta:,} files (inodes), "
          f"{total + rest + meta:,} without the exports")
    png = PAPER["videos"] * (1 + PAPER["frames"] * PAPER["sizes"])
    ann = PAPER["videos"] * (1 + 2 * PAPER["frames"])
    print(f"  (a file per frame: store/frames {png:,} and store/face_annotations {ann:,} files; "
          f"a tar per video: {PAPER['videos'] * 2:,} each; a tar per shard: "
          f"{PAPER['shards'] * 2:,} each; source scores as a store item per scored clip: "
          f"{PAPER['clips'] * 3:,})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1k,20k,150k")
    ap.add_argument("--real", default="1k,20k", help="sizes also run for real ('' = none)")
    ap.add_argument("--clips-per-shard", type=int, default=1000)
    ap.add_argument("--takes-per-shard", type=int, default=100)
    ap.add_argument("--scheduler", default=None, help="override the profile's scheduler")
    ap.add_argument("--keep", type=Path, help="build the trees here and keep them")
    ap.add_argument("--build", type=Path, help="a finished build's work directory: estimate "
                    "the file count of a paper-scale build from it, then stop")
    ap.add_argument("--paper-compress-shards", type=int, default=100,
                    help="compress.shards of the paper-scale build (--build)")
    ap.add_argument("--paper-clips-per-shard", type=int, default=1000,
                    help="source clips per scoring shard of the paper-scale build (--build)")
    ap.add_argument("--scheduler-jobs", type=int, default=0,
                    help="also time greedy vs ILP on this many ready trivial jobs")
    args = ap.parse_args()
    if args.build:
        PAPER["shards"] = 3 * args.paper_compress_shards
        PAPER["source_shards"] = -(-PAPER["clips"] // args.paper_clips_per_shard)
        file_count_estimate(args.build)
        return
    base = args.keep or Path(tempfile.mkdtemp(prefix="dag_scale_"))
    base.mkdir(parents=True, exist_ok=True)
    if args.scheduler_jobs:
        compare_schedulers(base, args.scheduler_jobs)
    actions = yaml.safe_load((REPO / "config.yaml").read_text())["actions"]
    clip, take = base / "clip.mp4", base / "take.mp4"
    if not clip.exists():
        make_clip(clip)
        make_clip(take, seconds=2.0, side=360)
    extra = ["--scheduler", args.scheduler] if args.scheduler else []
    real = [s for s in args.real.split(",") if s]
    print(f"{'size':>6} {'clips':>8} {'takes':>6} {'what':<14} {'jobs':>6} {'wall s':>8} "
          f"{'peak MB':>8}")
    for size in [s for s in args.sizes.split(",") if s]:
        clips, takes = SIZES[size]
        root = base / size
        workdir = root / "work"
        if not (root / "driving").exists():
            shutil.rmtree(root, ignore_errors=True)
            build_tree(root, clips, takes, actions, clip, take)
        if size in real:  # a real run starts from nothing built
            shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True, exist_ok=True)
        config = write_config(workdir, root, clips, takes, args.clips_per_shard,
                              args.takes_per_shard)
        print(f"{size}: {config['sources']['shards']} scoring shards, "
              f"{config['driving']['shards']} driving shards", flush=True)
        rows = [("dry run", snakemake(workdir, "-n", "--quiet", "rules", *extra))]
        if size in real:
            targets = ["results/manifests/sources.parquet", "results/manifests/driving.parquet"]
            rows += [("real run", snakemake(workdir, *targets, *extra)),
                     ("no-op rerun", snakemake(workdir, *targets, *extra)),
                     ("no-op dry run", snakemake(workdir, "-n", "--quiet", "rules", *extra))]
        for what, cmd in rows:
            wall, rss, out = timed(cmd, workdir)
            print(f"{size:>6} {clips:>8} {takes:>6} {what:<14} {job_count(out):>6} "
                  f"{wall:>8.1f} {rss:>8}", flush=True)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

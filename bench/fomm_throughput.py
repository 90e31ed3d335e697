"""FOMM rendering throughput: the original demo's frame-by-frame loop vs our batched renderer.

Random weights (throughput does not depend on them), the vox-256 architecture at 256x256 by
default. Configurations, all timed in the same run on the same frames:

* ``demo loop``: as the original ``demo.py`` renders: per frame, keypoints of that frame, then
  the full generator forward (which re-encodes the source every frame);
* ``batch 1``: `FommGenerator.render` with batch_size=1 (source encoded once and shared,
  batch norms folded into the convolutions unless ``--no-fold-bn``);
* ``batch B``: the same with batch_size=B (driving keypoints and frames in batches of B);
* with ``--channels-last``, the same again in channels_last memory format.

Each line gives the median wall-clock frames/s over ``--repeats`` interleaved runs, its
range, and the process CPU time per frame (steadier than wall time on a shared machine; with
several threads it includes their spin-waiting). Ratios compare medians from the same run.

With ``--shards K`` it then also starts K processes at once, each a generator shard rendering
the frames batched on the same device (as K generate jobs sharing one GPU would), and prints
their aggregate frames/s against one process alone.

Example: ``python bench/fomm_throughput.py --frames 16 --batch 8 16 --threads 2``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch

from dfmnist.generators.fomm import FommGenerator, build_networks, relative_keypoints
from dfmnist.generators.fomm.checkpoint import get_config
from dfmnist.generators.fomm.model import adapt_movement_scale, tf32_mode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16", "fp16"],
                        help="precision of the batched runs (all but fp32: CUDA only)")
    parser.add_argument("--frames", type=int, default=16, help="driving frames (default 16)")
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 16],
                        help="batch sizes to time (default 8 16)")
    parser.add_argument("--config", default="vox-256", help="vox-256 (default) or small")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--channels-last", action="store_true",
                        help="also time the batched runs in channels_last memory format")
    parser.add_argument("--no-fold-bn", action="store_true",
                        help="keep the batch norms unfolded in our renderer")
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="let cuDNN pick convolution algorithms by timing them in the demo "
                             "loop too (our renderer does by default)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up frames")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per configuration, interleaved (default 3)")
    parser.add_argument("--shards", type=int, default=0,
                        help="also time this many concurrent shard processes on the device, "
                             "each rendering --frames batched at the largest --batch")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


DEMO = "demo loop (batch 1, fp32)"


def demo_loop(kp_detector: torch.nn.Module, generator: torch.nn.Module, source: np.ndarray,
              driving: np.ndarray, device: torch.device) -> None:
    """The original demo's rendering loop (relative, adapt_scale), one frame at a time."""

    def tensor(images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div(255.0)
        return x.contiguous()

    math = tf32_mode(False) if device.type == "cuda" else nullcontext()
    with torch.inference_mode(), math:  # float32 as in 2019: no TF32
        src = tensor(source[None])
        kp_source = kp_detector(src)
        kp_initial = kp_detector(tensor(driving[:1]))
        scale = adapt_movement_scale(kp_source.value[0].cpu().numpy(),
                                     kp_initial.value[0].cpu().numpy())
        for t in range(len(driving)):
            kp_norm = relative_keypoints(kp_source, kp_detector(tensor(driving[t:t + 1])),
                                         kp_initial, scale=scale)
            frame = generator(src, kp_norm, kp_source)
            frame.cpu()  # the demo copies every frame back to the host


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """Wall and process CPU seconds of one call (synchronising CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu


def shard_worker(args: argparse.Namespace, barrier, results) -> None:
    """One shard process: build, warm up, wait for the others, render, report its span."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = get_config(args.config)
    size = config.frame_size
    torch.manual_seed(args.seed)
    kp_detector, generator = build_networks(config)
    fomm = FommGenerator.from_networks(kp_detector, generator, config=config.name,
                                       device=str(device), batch_size=max(args.batch),
                                       precision=args.precision)
    rng = np.random.default_rng(args.seed)
    source = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    driving = rng.integers(0, 256, (args.frames, size, size, 3), dtype=np.uint8)
    fomm.render(source, driving)  # warm-up
    barrier.wait()
    start = time.perf_counter()
    for _ in range(args.repeats):
        fomm.render(source, driving)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    results.put((start, time.perf_counter(), args.frames * args.repeats))


def time_shards(args: argparse.Namespace, count: int) -> float:
    """Aggregate frames/s of `count` shard processes started together."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(count), ctx.Queue()
    workers = [ctx.Process(target=shard_worker, args=(args, barrier, results))
               for _ in range(count)]
    for worker in workers:
        worker.start()
    spans = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    wall = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
    return sum(n for _, _, n in spans) / wall


def main(argv: list[str] | None = None) -> None:
    """Time every configuration and print one line each, then the ratios."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    device = torch.device(args.device)
    config = get_config(args.config)
    size = config.frame_size
    torch.manual_seed(args.seed)
    kp_detector, generator = build_networks(config)
    kp_detector, generator = kp_detector.to(device).eval(), generator.to(device).eval()
    rng = np.random.default_rng(args.seed)
    source = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    driving = rng.integers(0, 256, (args.frames, size, size, 3), dtype=np.uint8)
    print(f"# FOMM {config.name} {size}x{size}, {args.frames} frames, device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.repeats} interleaved repeats (median; min-max)")

    runners: dict[str, Callable[[np.ndarray], object]] = {
        DEMO: lambda frames: demo_loop(kp_detector, generator, source, frames, device),
    }
    for channels_last in [False, True] if args.channels_last else [False]:
        for batch in [1, *args.batch]:
            precision = "fp32" if batch == 1 else args.precision
            fomm = FommGenerator.from_networks(
                kp_detector, generator, config=config.name, device=str(device),
                batch_size=batch, precision=precision, channels_last=channels_last,
                fold_bn=not args.no_fold_bn)
            label = f"batch {batch} ({precision}{', channels_last' if channels_last else ''})"
            runners[label] = lambda frames, f=fomm: f.render(source, frames)
    for run in runners.values():  # warm-up: kernels, allocator, oneDNN primitives
        run(driving[: max(args.warmup, 1)])
        if device.type == "cuda":  # and the CUDA kernels for the full batch shapes
            run(driving[: max(args.batch)])
    walls: dict[str, list[float]] = {label: [] for label in runners}
    cpus: dict[str, list[float]] = {label: [] for label in runners}
    for _ in range(args.repeats):  # interleaved, so load changes hit every configuration
        for label, run in runners.items():
            wall, cpu = timed(lambda r=run: r(driving), device)
            walls[label].append(wall)
            cpus[label].append(cpu)
    fps = {label: args.frames / float(np.median(ts)) for label, ts in walls.items()}
    cpu_fps = {label: args.frames / float(np.median(ts)) for label, ts in cpus.items()}
    for label, ts in walls.items():
        print(f"{label:34s} {fps[label]:9.3f} frames/s  (median {np.median(ts):.2f} s; "
              f"{args.frames / max(ts):.3f}-{args.frames / min(ts):.3f} frames/s; "
              f"CPU time {np.median(cpus[label]) / args.frames:.3f} s/frame)")
    base, ours_1 = fps[DEMO], fps["batch 1 (fp32)"]
    for label, value in fps.items():
        if label == DEMO:
            continue
        print(f"ratio {label} / demo loop: {value / base:.2f}x wall, "
              f"{cpu_fps[label] / cpu_fps[DEMO]:.2f}x CPU time; "
              f"/ batch 1 (fp32): {value / ours_1:.2f}x wall, "
              f"{cpu_fps[label] / cpu_fps['batch 1 (fp32)']:.2f}x CPU time")
    if args.shards > 1:
        one = time_shards(args, 1)
        many = time_shards(args, args.shards)
        print(f"shards (batch {max(args.batch)}, {args.precision}): 1 process {one:.3f} "
              f"frames/s, {args.shards} processes {many:.3f} frames/s together: "
              f"{many / one:.2f}x")


if __name__ == "__main__":
    main()

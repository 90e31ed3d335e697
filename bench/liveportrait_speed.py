"""CPU frames per second of our LivePortrait renderer against the original's own loop.

    python bench/liveportrait_speed.py --original DIR [--threads 1 2] [--frames 4]
        [--batch-size 4] [--checkpoint CKPT]

DIR is a checkout of KwaiVGI/LivePortrait. Both sides get the same seeded random five-file
checkpoint (the published configuration; written to CKPT, default a folder under the system's
temporary directory, when it is not there yet), the same 256x256 source crop and driving
frames (a real photo, turned and shifted), fp16 off (the original's CUDA default; on the CPU
it is off), stitching on, 'expression-friendly' driving. Timed, after the networks are
loaded: ours, `LivePortraitGenerator.render` (the source encoded once, frames in batches,
every default CPU speed-up); the original, the pipeline's ``make_motion_template`` and
animation loop (`dfmnist.generators.liveportrait.original`) frame by frame. Each
implementation and thread count runs in a process of its own. Prints frames/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZE = 256


def inputs(frames: int):
    """A real face crop and `frames` driving frames of it, turned, scaled and shifted."""
    import cv2
    import matplotlib.cbook
    import numpy as np

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        image = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR)
    face = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[60:380, 100:420], (SIZE, SIZE),
                      interpolation=cv2.INTER_AREA)
    out = []
    for t in range(frames):
        a = np.sin(np.pi * t / max(frames - 1, 1))
        m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 12.0 * a, 1.0 + 0.08 * a)
        m[:, 2] += (12.0 * a, -8.0 * a)
        out.append(cv2.warpAffine(face, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT))
    return face, np.stack(out)


def measure(which: str, args: argparse.Namespace) -> dict[str, float]:
    """One implementation at one thread count, in this process."""
    import torch

    torch.set_num_threads(args.threads[0])
    source, driving = inputs(args.frames)
    if which == "ours":
        from dfmnist.generators.liveportrait import LivePortraitGenerator

        generator = LivePortraitGenerator(args.checkpoint, batch_size=args.batch_size,
                                          threads=args.threads[0])
        generator.networks()
        start = time.perf_counter()
        generator.render(source, driving)
    else:
        from dfmnist.generators.liveportrait.checkpoint import checkpoint_files
        from dfmnist.generators.liveportrait.original import load_original

        original = load_original(args.original)
        wrapper = original.wrapper(checkpoint_files(args.checkpoint))
        start = time.perf_counter()
        frames = original.animate(wrapper, source, driving)
        original.parse_output(wrapper, frames)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "fps": args.frames / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original", required=True, help="KwaiVGI/LivePortrait checkout")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--checkpoint", type=Path,
                        default=Path(tempfile.gettempdir()) / "liveportrait_bench_ckpt")
    parser.add_argument("--measure", choices=["ours", "original"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.measure:
        print(json.dumps(measure(args.measure, args)))
        return
    if not (args.checkpoint / "spade_generator.pth").is_file():
        import numpy as np

        from dfmnist.generators.liveportrait.random_weights import write_random_checkpoint

        source, driving = inputs(max(args.frames, 2))
        write_random_checkpoint(args.checkpoint, "human", seed=0,
                                calibration=np.concatenate([source[None], driving[:3]]))
    print(f"{args.frames} frames 256x256 -> 512x512, batch {args.batch_size}, "
          f"checkpoint {args.checkpoint}")
    for threads in args.threads:
        fps = {}
        for which in ("original", "ours"):
            command = [sys.executable, __file__, "--measure", which, "--original",
                       str(args.original), "--threads", str(threads), "--frames",
                       str(args.frames), "--batch-size", str(args.batch_size),
                       "--checkpoint", str(args.checkpoint)]
            result = subprocess.run(command, check=True, capture_output=True, text=True)
            fps[which] = json.loads(result.stdout.strip().splitlines()[-1])["fps"]
            print(f"threads {threads}: {which:8s} {fps[which]:.4f} frames/s "
                  f"({1 / fps[which]:.1f} s/frame)", flush=True)
        print(f"threads {threads}: ours / original = {fps['ours'] / fps['original']:.2f}x",
              flush=True)


if __name__ == "__main__":
    main()

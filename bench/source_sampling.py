"""Decoding only the frames source scoring samples: three ways, one process, same clips.

    python bench/source_sampling.py [--frames 8] [--repeat 3]

Clips: a VoxCeleb-like 256x256 clip (8 s at 25 fps, H.264 yuv420p, crf 23, x264's default
keyframe interval) and a long one (2 min, same encoding), both of a real face moving. Ways:
- stream: every frame decoded, converted and piped, the sampled ones kept (the code before:
  `dfmnist.sources.selection._stream_sample`);
- select: one ffmpeg whose `select` filter hands over only the sampled frames (what
  `sample_clip` does now; ffmpeg still decodes every frame, so damage anywhere is reported);
- seek: one ffmpeg per sampled frame with an input `-ss` (decodes from the previous keyframe;
  damage between samples goes unseen).
Prints the best of `--repeat` wall times per clip and way, and checks the frames are equal.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from dfmnist.sources.selection import _stream_sample, sample_clip
from dfmnist.storage.video import VideoReader, ffmpeg_exe


def make_clip(path: Path, seconds: float, fps: int = 25, side: int = 256) -> None:
    photo = cv2.resize(data.astronaut()[:300, 100:400], (side + 64, side + 64))
    proc = subprocess.Popen(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-s", f"{side}x{side}", "-r", str(fps), "-i", "pipe:",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "23", str(path)],
        stdin=subprocess.PIPE)
    for t in range(int(seconds * fps)):
        dx, dy = int(32 + 30 * np.sin(t / 20)), int(32 + 30 * np.cos(t / 27))
        proc.stdin.write(np.ascontiguousarray(photo[dy:dy + side, dx:dx + side]).tobytes())
    proc.stdin.close()
    if proc.wait():
        raise SystemExit("ffmpeg failed to make the clip")


def seek_sample(path: Path, count: int) -> np.ndarray:
    reader = VideoReader(path)
    idx = np.unique(np.linspace(0, reader.expected_frames - 1, count).round().astype(int))
    frames = []
    for i in idx:
        out = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-ss",
             f"{i / reader.fps:.6f}", "-i", str(path), "-map", "0:V:0", "-frames:v", "1",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"], capture_output=True, check=True)
        frames.append(np.frombuffer(out.stdout, np.uint8).reshape(reader.height,
                                                                 reader.width, 3))
    return np.stack(frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    ways = {
        "stream": lambda p: _stream_sample(VideoReader(p), args.frames)[0],
        "select": lambda p: sample_clip(p, args.frames)[0],
        "seek": lambda p: seek_sample(p, args.frames),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, seconds in (("voxceleb-like 8 s", 8.0), ("long 120 s", 120.0)):
            path = Path(tmp) / f"{seconds:.0f}.mp4"
            make_clip(path, seconds)
            reference = ways["stream"](path)
            for way, sample in ways.items():
                best = float("inf")
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    frames = sample(path)
                    best = min(best, time.perf_counter() - start)
                same = "same frames" if np.array_equal(frames, reference) else "FRAMES DIFFER"
                print(f"{name:<18} {way:<7} {best * 1000:8.0f} ms  {same}", flush=True)


if __name__ == "__main__":
    main()

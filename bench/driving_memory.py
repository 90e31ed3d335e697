"""Peak memory of tracking and cropping one large driving take: a 3840x2160, 60 fps, 20 s
phone-like take (1,200 frames; 30 GB if decoded whole) through the driving stage's code.

    python bench/driving_memory.py [--seconds 20] [--fps 60] [--keep DIR]

Makes the take with ffmpeg (a real photo on a 4K canvas, moving), then runs the tracking and
the cropping each in a fresh process under `/usr/bin/time -v` and prints wall time and peak
RSS (goal: under 1.5 GiB for each; GNU time reports the largest process of the tree, so the
ffmpeg decoder beside Python is also measured alone). For comparison it prints what holding
the decoded take in memory would need.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

TRACK = """
import sys, polars as pl
from dfmnist.driving.crop import track_take
from dfmnist.vision.faces import FaceDetector
track, info = track_take(sys.argv[1], FaceDetector(batch_size=8), min_frames=16)
track.to_frame().write_parquet(sys.argv[2])
print(f"tracked {info.frames} frames {info.width}x{info.height}: face in {info.faces_found}")
"""

CROP = """
import sys, polars as pl
from dfmnist.driving.crop import write_crop
from dfmnist.vision.faces import FaceTrack
track = FaceTrack.from_frame(pl.read_parquet(sys.argv[2]))
crop = write_crop(sys.argv[1], track, sys.argv[3], size=256)
print(f"cropped to {sys.argv[3]}, jitter {crop.jitter_raw:.2f} -> {crop.jitter:.2f} px")
"""


def make_take(path: Path, seconds: float, fps: int, width: int = 3840, height: int = 2160
              ) -> None:
    """A real face (matplotlib's Grace Hopper photo) drifting across a 4K canvas."""
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        face = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR)
    face = cv2.resize(face, (900, 1050), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((height + 200, width + 400, 3), 96, np.uint8)
    y, x = (canvas.shape[0] - face.shape[0]) // 2, (canvas.shape[1] - face.shape[1]) // 2
    canvas[y : y + face.shape[0], x : x + face.shape[1]] = face
    still = path.with_suffix(".png")
    cv2.imwrite(str(still), canvas)
    # crop a moving 4K window out of the larger still: the face drifts like a hand-held shot
    motion = f"crop={width}:{height}:200+150*sin(t):100+80*cos(1.3*t)"
    from dfmnist.storage.video import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-loop", "1",
                    "-framerate", str(fps), "-i", str(still), "-vf", motion, "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-pix_fmt",
                    "yuv420p", str(path)], check=True)


def measured(code: str, *args: str) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of a fresh Python process running `code`."""
    proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code, *args],
                          capture_output=True, text=True, check=True)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)",
                     proc.stderr).group(1)
    seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
    return seconds, rss / 1024, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=int, default=60)
    parser.add_argument("--keep", type=Path, help="folder to keep the take and outputs in")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="driving-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    take = folder / "take_4k.mp4"
    if not take.exists():
        make_take(take, args.seconds, args.fps)
    frames = int(round(args.seconds * args.fps))
    print(f"take: {take} ({take.stat().st_size / 2**20:.0f} MiB, 3840x2160, {args.fps} fps, "
          f"{frames} frames); decoded whole it would need {frames * 3840 * 2160 * 3 / 2**30:.1f}"
          f" GiB")
    # the ffmpeg decoder is a process of its own beside Python's: its peak, measured alone
    from dfmnist.storage.video import ffmpeg_exe

    proc = subprocess.run(["/usr/bin/time", "-v", ffmpeg_exe(), "-hide_banner", "-loglevel",
                           "error", "-nostdin", "-i", str(take), "-map", "0:V:0", "-f",
                           "rawvideo", "-pix_fmt", "rgb24", "-y", "/dev/null"],
                          capture_output=True, text=True, check=True)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    print(f"{'decoder':10s} peak RSS {rss / 1024:7.0f} MiB (the ffmpeg process that streams "
          f"frames to either step, measured alone)")
    for name, code, extra in (("track_take", TRACK, []),
                              ("write_crop", CROP, [str(folder / "crop.mp4")])):
        wall, rss, out = measured(code, str(take), str(folder / "track.parquet"), *extra)
        verdict = "under" if rss < 1536 else "OVER"
        print(f"{name:10s} wall {wall:7.1f} s  peak RSS {rss:7.0f} MiB ({verdict} the 1.5 GiB "
              f"goal)  {out}")


if __name__ == "__main__":
    main()

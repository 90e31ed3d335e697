"""Video and file I/O: decoding and encoding through ffmpeg, hashing, atomic writes."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ffmpeg
import numpy as np


class VideoError(RuntimeError):
    """A video could not be read or written."""


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary: $DFMNIST_FFMPEG, else ffmpeg on PATH, else imageio-ffmpeg's."""
    override = os.environ.get("DFMNIST_FFMPEG")
    if override:
        return override
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """First line of `ffmpeg -version`, recorded in manifests so encodes are traceable."""
    out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].strip()


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    rotation: int
    codec: str
    duration: float

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) after applying the rotation side data."""
        if self.rotation % 180:
            return self.height, self.width
        return self.width, self.height


_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})")
_FPS_RE = re.compile(r"([\d.]+) (?:fps|tbr)")
_ROTATION_RE = re.compile(r"rotation of (-?[\d.]+) degrees")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")


def probe_video(path: str | Path) -> VideoInfo:
    """Read stream facts from `ffmpeg -i` (the imageio-ffmpeg build ships no ffprobe)."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    text = proc.stderr
    stream = _STREAM_RE.search(text)
    if not stream:
        raise VideoError(f"no video stream in {path}")
    line_end = text.find("\n", stream.start())
    stream_line = text[stream.start() : line_end if line_end > 0 else None]
    fps_match = _FPS_RE.search(stream_line)
    rot_match = _ROTATION_RE.search(text)
    rotation = int(round(float(rot_match.group(1)))) % 360 if rot_match else 0
    dur = _DURATION_RE.search(text)
    duration = 0.0
    if dur:
        duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3))
    return VideoInfo(
        width=int(stream.group(2)),
        height=int(stream.group(3)),
        fps=float(fps_match.group(1)) if fps_match else 0.0,
        rotation=rotation,
        codec=stream.group(1),
        duration=duration,
    )


@dataclass
class Video:
    """Decoded frames, RGB uint8 of shape (T, H, W, 3), with their frame rate."""

    frames: np.ndarray
    fps: float

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[2]), int(self.frames.shape[1])


def read_video(path: str | Path, fps: float | None = None, max_frames: int | None = None) -> Video:
    """Decode a video to RGB frames, upright (rotation side data applied), audio ignored.

    With `fps`, frames are resampled to that constant rate (variable-rate phone footage).
    """
    info = probe_video(path)
    width, height = info.display_size
    stream = ffmpeg.input(str(path))
    video = stream.video
    if fps:
        video = video.filter("fps", fps=fps)
    out_kwargs = {"format": "rawvideo", "pix_fmt": "rgb24"}
    if max_frames:
        out_kwargs["vframes"] = int(max_frames)
    cmd = video.output("pipe:", **out_kwargs).global_args("-loglevel", "error", "-nostdin")
    try:
        raw, _ = cmd.run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as exc:
        raise VideoError(f"cannot decode {path}: {exc.stderr.decode(errors='replace')}") from exc
    frame_bytes = width * height * 3
    if len(raw) % frame_bytes:
        raise VideoError(f"{path}: decoded size does not match {width}x{height}")
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    if frames.shape[0] == 0:
        raise VideoError(f"{path}: no frames decoded")
    return Video(frames=frames, fps=float(fps or info.fps))


@dataclass(frozen=True)
class Encoding:
    """How a video is encoded; every field goes into content keys and manifests."""

    codec: str = "libx264"
    crf: int = 23
    preset: str = "medium"
    pix_fmt: str = "yuv420p"
    gop: int | None = None

    def output_args(self) -> dict:
        args: dict = {"vcodec": self.codec, "crf": self.crf, "preset": self.preset}
        args["pix_fmt"] = self.pix_fmt
        if self.gop:
            args["g"] = self.gop
        if self.codec.startswith("libx264"):
            # Deterministic output: the same frames always give the same bytes.
            args["threads"] = 1
        return args


#: Bit-exact RGB storage for intermediate videos (generated fakes, crops).
LOSSLESS_RGB = Encoding(codec="libx264rgb", crf=0, preset="veryfast", pix_fmt="rgb24")


def write_video(
    path: str | Path, frames: np.ndarray, fps: float, encoding: Encoding = LOSSLESS_RGB
) -> Path:
    """Encode RGB frames (T, H, W, 3) to `path` atomically."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise VideoError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    _, height, width, _ = frames.shape
    if encoding.pix_fmt.startswith("yuv420") and (width % 2 or height % 2):
        raise VideoError(f"{encoding.pix_fmt} needs even sizes, got {width}x{height}")
    path = Path(path)
    with atomic_path(path) as tmp:
        cmd = (
            ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=fps)
            .output(str(tmp), format=_container(path), **encoding.output_args())
            .global_args("-loglevel", "error", "-nostdin")
            .overwrite_output()
        )
        try:
            cmd.run(cmd=ffmpeg_exe(), input=frames.tobytes(), capture_stderr=True)
        except ffmpeg.Error as exc:
            detail = exc.stderr.decode(errors="replace")
            raise VideoError(f"cannot encode {path}: {detail}") from exc
    return path


def transcode(src: str | Path, dst: str | Path, encoding: Encoding) -> list[str]:
    """Re-encode `src` into `dst` (file to file, no Python decode).

    Returns the ffmpeg arguments with the paths as {input} and {output}, for provenance.
    """
    dst = Path(dst)
    with atomic_path(dst) as tmp:
        cmd = (
            ffmpeg.input(str(src))
            .video.output(str(tmp), format=_container(dst), **encoding.output_args())
            .global_args("-loglevel", "error", "-nostdin")
            .overwrite_output()
        )
        args = cmd.get_args()
        try:
            cmd.run(cmd=ffmpeg_exe(), capture_stderr=True)
        except ffmpeg.Error as exc:
            detail = exc.stderr.decode(errors="replace")
            raise VideoError(f"cannot transcode {src}: {detail}") from exc
    names = {str(src): "{input}", str(tmp): "{output}"}
    return [names.get(a, a) for a in args]


def _container(path: Path) -> str:
    return {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}.get(
        path.suffix.lower(), "mp4"
    )


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

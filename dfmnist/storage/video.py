"""Video and file I/O: decoding and encoding through ffmpeg, hashing, atomic writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ffmpeg
import numpy as np

from dfmnist.storage.damage import first_error_line, unreadable_reason
from dfmnist.storage.files import atomic_path


class VideoError(RuntimeError):
    """A video could not be read or written. `reason` says why in a user's words (no path)."""

    def __init__(self, message: str, reason: str | None = None, facts: dict | None = None
                 ) -> None:
        super().__init__(message)
        self.reason = reason or message
        #: what was measured before the problem showed (stream facts, frames decoded)
        self.facts = facts or {}


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
    """Read stream facts from `ffmpeg -i` (the imageio-ffmpeg build ships no ffprobe).

    A file that is not a readable video raises VideoError whose `reason` says what is wrong
    (empty, not a video, truncated container, no video stream; see dfmnist.storage.damage).
    """
    path = Path(path)
    if not path.is_file():
        reason = unreadable_reason(path)
        raise VideoError(f"{path}: {reason}", reason)
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
        text=True, errors="replace",
    )
    text = proc.stderr
    if "Error opening input" in text or "Input #0" not in text:
        reason = unreadable_reason(path, text)
        raise VideoError(f"{path}: {reason}", reason)
    # the first video stream that is not cover art
    stream = next((m for m in _STREAM_RE.finditer(text)
                   if "(attached pic)" not in text[m.start():text.find("\n", m.start())]), None)
    if not stream:
        reason = "no video stream (only audio or data)" if "Stream #" in text else \
            "no streams at all"
        raise VideoError(f"{path}: {reason}", reason)
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


class VideoReader:
    """A video decoded by one ffmpeg process and handed out in chunks of frames, so memory
    holds one chunk, whatever the video's length or resolution.

    Frames are RGB uint8, upright (rotation side data applied), audio ignored; with `fps`,
    resampled to that constant rate (variable-rate phone footage). After the last chunk the
    decode is checked: decoder errors or a stream that ends early raise VideoError with the
    reason ("damaged or truncated video data: decoded 28 of about 100 frames").
    """

    def __init__(self, path: str | Path, fps: float | None = None,
                 max_frames: int | None = None) -> None:
        self.path = Path(path)
        self.info = probe_video(self.path)
        self.width, self.height = self.info.display_size
        self.fps = float(fps or self.info.fps)
        self.max_frames = int(max_frames) if max_frames else None
        self.frames_read = 0

    @property
    def expected_frames(self) -> int:
        """The frame count the container's duration promises (0 when it gives none)."""
        n = int(round(self.info.duration * self.fps)) if self.fps else 0
        return min(n, self.max_frames) if self.max_frames else n

    def _command(self, select: Sequence[int] | None = None) -> list[str]:
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
               "-i", str(self.path), "-map", "0:V:0", "-an", "-sn", "-dn"]
        filters = [f"fps={self.fps}"] if self.fps and self.fps != self.info.fps else []
        if select is not None:
            # ffmpeg still decodes every frame (so damage anywhere is still reported), but
            # only the selected ones are converted and piped
            filters.append("select='" + "+".join(f"eq(n\\,{int(i)})" for i in select) + "'")
            cmd += ["-fps_mode", "passthrough"]
        if filters:
            cmd += ["-vf", ",".join(filters)]
        if self.max_frames:
            cmd += ["-frames:v", str(self.max_frames)]
        return cmd + ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]

    def chunks(self, size: int = 32, select: Sequence[int] | None = None
               ) -> Iterator[np.ndarray]:
        """Frames (n <= size, H, W, 3) in order; raises VideoError at the end if damaged.

        `select`: only the frames with these indices (fewer if the stream ends first)."""
        frame_bytes = self.width * self.height * 3
        want = max(1, int(size)) * frame_bytes
        self.frames_read = 0
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(self._command(select), stdout=subprocess.PIPE, stderr=errors)
            try:
                while True:
                    buf = _read_exactly(proc.stdout, want)
                    n = len(buf) // frame_bytes
                    if n:
                        self.frames_read += n
                        yield np.frombuffer(buf[: n * frame_bytes], np.uint8).reshape(
                            n, self.height, self.width, 3)
                    if len(buf) < want:
                        leftover = len(buf) - n * frame_bytes
                        break
            finally:
                proc.stdout.close()
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
            errors.seek(0)
            message = errors.read().decode(errors="replace")
        self._check(proc.returncode, message, leftover)

    def _check(self, returncode: int, message: str, leftover: int) -> None:
        expected = self.expected_frames
        about = f" of about {expected}" if expected else ""
        if self.frames_read == 0:
            about = f" (about {expected} expected)" if expected else ""
        detail = first_error_line(message)
        if self.frames_read == 0:
            reason = (f"damaged or truncated video data: no frame could be decoded{about}"
                      + (f" (ffmpeg: {detail})" if detail else ""))
        elif returncode != 0 or detail or leftover:
            reason = (f"damaged or truncated video data: decoded {self.frames_read}{about} "
                      f"frames" + (f" (ffmpeg: {detail})" if detail else ""))
        else:
            return
        width, height = self.info.display_size
        facts = {"frames": self.frames_read, "fps": self.fps, "width": width, "height": height,
                 "codec": self.info.codec, "source_fps": self.info.fps,
                 "rotation": self.info.rotation}
        raise VideoError(f"{self.path}: {reason}", reason, facts)

    def read(self) -> Video:
        """Every frame at once (for short videos; long ones should use `chunks`)."""
        parts = list(self.chunks(256))
        return Video(frames=np.concatenate(parts), fps=self.fps)


def _read_exactly(stream, size: int) -> memoryview:
    """Up to `size` bytes read into one new buffer (no copies): fewer only at the end."""
    buf = memoryview(bytearray(size))
    got = 0
    while got < size:
        n = stream.readinto(buf[got:])
        if not n:
            break
        got += n
    return buf[:got]


def read_video(path: str | Path, fps: float | None = None, max_frames: int | None = None) -> Video:
    """Decode a whole video to RGB frames, upright, audio ignored (see VideoReader). A store
    file is first checked against its item's sha256 (dfmnist.storage.integrity.StoreDamage)."""
    from dfmnist.storage.integrity import check_store_file

    check_store_file(path)
    return VideoReader(path, fps=fps, max_frames=max_frames).read()


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


class VideoWriter:
    """Encode RGB frames as they come (one ffmpeg process fed through a pipe), atomically:
    `path` appears, complete and fsynced, only when the block exits without an error."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float,
                 encoding: Encoding = LOSSLESS_RGB) -> None:
        if encoding.pix_fmt.startswith("yuv420") and (width % 2 or height % 2):
            raise VideoError(f"{encoding.pix_fmt} needs even sizes, got {width}x{height}")
        self.path, self.size, self.fps, self.encoding = Path(path), (width, height), fps, encoding
        self.frames_written = 0

    def __enter__(self) -> VideoWriter:
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        width, height = self.size
        cmd = (
            ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}",
                         r=self.fps)
            .output(str(self._tmp), format=_container(self.path), **self.encoding.output_args())
            .global_args("-loglevel", "error", "-nostdin")
            .overwrite_output()
        )
        self._errors = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([ffmpeg_exe(), *cmd.get_args()], stdin=subprocess.PIPE,
                                      stderr=self._errors)
        return self

    def write(self, frames: np.ndarray) -> None:
        """Append frames (T, H, W, 3) or one frame (H, W, 3)."""
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[2:0:-1] != self.size:
            raise VideoError(f"expected frames of shape (T, {self.size[1]}, {self.size[0]}, 3), "
                             f"got {frames.shape}")
        try:
            self._proc.stdin.write(frames.tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped; its message is read on exit
        self.frames_written += len(frames)

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        if exc_type is not None:
            self._proc.kill()
        code = self._proc.wait()
        self._errors.seek(0)
        detail = self._errors.read().decode(errors="replace")
        self._errors.close()
        if exc_type is None and (code != 0 or self.frames_written == 0):
            why = detail.strip() or "no frames written"
            error = VideoError(f"cannot encode {self.path}: {why}")
            self._atomic.__exit__(VideoError, error, None)
            raise error
        return bool(self._atomic.__exit__(exc_type, exc, tb))


def write_video(
    path: str | Path, frames: np.ndarray, fps: float, encoding: Encoding = LOSSLESS_RGB
) -> Path:
    """Encode RGB frames (T, H, W, 3) to `path` atomically."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise VideoError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    _, height, width, _ = frames.shape
    with VideoWriter(path, width, height, fps, encoding) as writer:
        writer.write(frames)
    return Path(path)


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

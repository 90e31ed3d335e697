import subprocess
from pathlib import Path

import numpy as np
import pytest

from dfmnist.storage.files import atomic_path, sha256_file
from dfmnist.storage.video import (
    LOSSLESS_RGB,
    Encoding,
    VideoError,
    ffmpeg_exe,
    probe_video,
    read_video,
    transcode,
    write_video,
)


@pytest.fixture(scope="module")
def face_frames(astronaut) -> np.ndarray:
    """24 frames of a real face panning slowly: real image content, real motion."""
    crop = astronaut[40:296, 100:356]
    return np.stack([np.roll(crop, shift=t, axis=1) for t in range(24)])


def test_lossless_rgb_roundtrip_is_bit_exact(tmp_path: Path, face_frames):
    path = write_video(tmp_path / "v.mp4", face_frames, 25.0, LOSSLESS_RGB)
    video = read_video(path)
    assert video.frames.shape == face_frames.shape
    assert video.fps == pytest.approx(25.0)
    assert np.array_equal(video.frames, face_frames)


def test_encoding_is_deterministic(tmp_path: Path, face_frames):
    enc = Encoding(crf=23, preset="veryfast")
    a = write_video(tmp_path / "a.mp4", face_frames, 25.0, enc)
    b = write_video(tmp_path / "b.mp4", face_frames, 25.0, enc)
    assert sha256_file(a) == sha256_file(b)


def test_probe_and_transcode_lower_bitrate(tmp_path: Path, face_frames):
    src = write_video(tmp_path / "src.mp4", face_frames, 25.0, LOSSLESS_RGB)
    info = probe_video(src)
    assert (info.width, info.height, info.rotation) == (256, 256, 0)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(24 / 25, abs=0.05)
    light = transcode(src, tmp_path / "c23.mp4", Encoding(crf=23))
    transcode(src, tmp_path / "c40.mp4", Encoding(crf=40))
    assert "-crf" in light and "23" in light
    sizes = [(tmp_path / n).stat().st_size for n in ("src.mp4", "c23.mp4", "c40.mp4")]
    assert sizes[0] > sizes[1] > sizes[2]
    decoded = read_video(tmp_path / "c40.mp4").frames.astype(float)
    assert 0 < np.abs(decoded - face_frames).mean() < 20


def test_read_resamples_fps(tmp_path: Path, face_frames):
    src = write_video(tmp_path / "src.mp4", face_frames, 24.0)
    assert len(read_video(src, fps=12.0)) == 12


def test_rotated_phone_video_is_read_upright(tmp_path: Path, face_frames):
    landscape = write_video(tmp_path / "l.mp4", face_frames[:, :, :128], 25.0,
                            Encoding(crf=18, preset="veryfast"))
    rotated = tmp_path / "rot.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-display_rotation", "90", "-i",
                    str(landscape), "-c", "copy", str(rotated)], check=True)
    info = probe_video(rotated)
    assert info.rotation in (90, 270)
    assert info.display_size == (256, 128)
    assert read_video(rotated).frames.shape[1:3] == (128, 256)


def test_bad_inputs_raise_clear_errors(tmp_path: Path):
    with pytest.raises(VideoError, match="not found"):
        read_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    with pytest.raises(VideoError, match="not a video file"):
        probe_video(junk)
    with pytest.raises(VideoError, match="even sizes"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 15, 16, 3), np.uint8), 25.0, Encoding())
    with pytest.raises(VideoError, match="shape"):
        write_video(tmp_path / "flat.mp4", np.zeros((15, 16, 3), np.uint8), 25.0)


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path):
    target = tmp_path / "out.parquet"
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise ValueError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("rate", [None, 12.0])
def test_selected_frames_are_the_streamed_frames(tmp_path: Path, face_frames, rate):
    """`select` hands over exactly the frames a full decode has at those indices (also after
    resampling to a constant rate), and sample_clip's seek path agrees with streaming."""
    from dfmnist.sources.selection import _stream_sample, sample_clip
    from dfmnist.storage.video import VideoReader

    path = write_video(tmp_path / "v.mp4", face_frames, 25.0, Encoding(crf=23))
    everything = read_video(path, fps=rate).frames
    picked = [0, 5, 6, len(everything) - 1]
    got = np.concatenate(list(VideoReader(path, fps=rate).chunks(3, select=picked)))
    assert np.array_equal(got, everything[picked])
    frames, idx, total = sample_clip(path, 8)
    s_frames, s_idx, s_total = _stream_sample(VideoReader(path), 8)
    assert (total, idx.tolist()) == (s_total, s_idx.tolist()) == (24, s_idx.tolist())
    assert np.array_equal(frames, s_frames)

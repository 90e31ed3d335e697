"""VoxCeleb1-style 256x256 face-cropped source clips: a photo with a slow seeded drift of head
pose and framing, or smoothed crops of a real video's frames."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np

from dfmnist.demo.photos import find_face
from dfmnist.demo.pose import FacePose
from dfmnist.demo.render import DEMO_ENCODING, coarse_step, drift, render_pose, single_blas_thread
from dfmnist.demo.rig import FaceRig
from dfmnist.storage.video import write_video
from dfmnist.vision.faces import FaceDetector, crop_affine, crop_frames, crop_windows

#: Source-clip framing: the detector box widened by this fraction on each side (face ~50% wide).
VOX_MARGIN = 0.3


def vox_window(box: np.ndarray, margin: float = VOX_MARGIN) -> np.ndarray:
    """Square VoxCeleb-like crop window (cx, cy, side) around a detector box."""
    side = max(box[2] - box[0], box[3] - box[1]) * (1 + 2 * margin)
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, side])


def render_photo_clip(photo: np.ndarray, box: np.ndarray, landmarks: np.ndarray, n: int,
                      fps: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """(n, size, size, 3) crops of the photo with a slow seeded drift of head pose and framing."""
    window = vox_window(box)
    scale = size / window[2]
    if scale < 0.8:  # downscale once with area averaging, then crop at about 1:1
        k = scale * 1.1
        photo = cv2.resize(photo, (max(1, round(photo.shape[1] * k)),
                                   max(1, round(photo.shape[0] * k))), interpolation=cv2.INTER_AREA)
        window = window * k
        landmarks = landmarks * k
    t = np.arange(n) / fps
    dx = drift(rng, t, 0.025, 0.1, 0.5)
    dy = drift(rng, t, 0.02, 0.1, 0.5)
    ds = drift(rng, t, 0.03, 0.1, 0.4)
    yaw = drift(rng, t, 6.0, 0.1, 0.5)
    pitch = drift(rng, t, 4.0, 0.1, 0.5)
    roll = drift(rng, t, 3.5, 0.1, 0.5)
    out = np.empty((n, size, size, 3), np.uint8)
    with single_blas_thread():
        for i in range(n):
            win = np.array([window[0] + dx[i] * window[2], window[1] + dy[i] * window[2],
                            window[2] * (1 + ds[i])])
            m = crop_affine(win, size)
            crop = cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT101)
            rig = FaceRig.from_landmarks(landmarks * m[0, 0] + m[:, 2])
            pose = FacePose(yaw=float(yaw[i]), pitch=float(pitch[i]), roll=float(roll[i]))
            out[i] = render_pose(crop, rig, pose, step=coarse_step(rig.iod))
    return out


def _clip_indices(start: int, n: int, total: int) -> np.ndarray:
    """n consecutive frame indices from `start`, bouncing back and forth if the video is short."""
    idx = np.arange(start, start + n)
    if total <= 1:
        return np.zeros(n, dtype=int)
    period = 2 * (total - 1)
    idx = idx % period
    return np.where(idx < total, idx, period - idx)


def make_source_clips(photo: np.ndarray | None, identity: str, paths: list[str | Path],
                      detector: FaceDetector, videos: int = 1, clips_per_video: int = 2,
                      seconds: float = 2.0, fps: float = 25.0, size: int = 256, seed: int = 0,
                      real_frames: np.ndarray | None = None) -> list[Path]:
    """VoxCeleb1-style clips, size x size, written to `paths`: `videos` x `clips_per_video`
    paths in video, clip order (the workflow's demo rule names them).

    From a photo: each clip is a seeded slow drift of head pose (roll and yaw of a few degrees,
    slight pitch) and of the crop window (translation, scale), the face about half the width.
    From `real_frames` (T, H, W, 3; `photo` is then unused): the face is tracked and each clip
    is a smoothed square crop of consecutive frames (windows spread evenly over the video,
    overlapping if it is short, bouncing back and forth if it is shorter than a clip; played
    at `fps`). Encoded H.264 CRF 18, yuv420p.
    Returns the paths; the same inputs and seed give the same bytes.
    """
    if size % 2:
        raise ValueError(f"clip size must be even, got {size}")
    n = max(1, int(round(seconds * fps)))
    keys = [(v, c) for v in range(videos) for c in range(clips_per_video)]
    paths = [Path(p) for p in paths]
    if len(paths) != len(keys):
        raise ValueError(f"{identity}: {len(paths)} paths for {videos} x {clips_per_video} clips")
    if real_frames is not None:
        real_frames = np.asarray(real_frames)
        track = detector.track(real_frames)
        if not track.found.any():
            raise ValueError(f"{identity}: no face found in any of the {len(real_frames)} frames")
        windows = crop_windows(track, margin=VOX_MARGIN)
        total = len(real_frames)
        starts = np.linspace(0, max(total - n, 0), len(keys)).round().astype(int)
        for path, start in zip(paths, starts, strict=True):
            idx = _clip_indices(int(start), n, total)
            write_video(path, crop_frames(real_frames[idx], windows[idx], size), fps,
                        DEMO_ENCODING)
        return paths
    if photo is None:
        raise ValueError(f"{identity}: make_source_clips needs a photo or real_frames")
    box, lms = find_face(photo, detector)
    ident = zlib.crc32(identity.encode())
    for path, (v, c) in zip(paths, keys, strict=True):
        rng = np.random.default_rng([int(seed), ident, v, c])
        frames = render_photo_clip(photo, box, lms, n, fps, size, rng)
        write_video(path, frames, fps, DEMO_ENCODING)
    return paths

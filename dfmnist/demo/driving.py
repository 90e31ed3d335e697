"""Raw phone-like portrait driving videos: the photo's face off-centre on a blurred cover of the
photo, one action performed, a hand-held camera wobble."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dfmnist import ACTIONS
from dfmnist.demo.actions import ACTION_POSES
from dfmnist.demo.photos import find_face
from dfmnist.demo.render import (
    DEMO_ENCODING,
    camera_shake,
    coarse_step,
    fine_step,
    render_pose,
    single_blas_thread,
)
from dfmnist.demo.rig import FaceRig
from dfmnist.storage.video import write_video
from dfmnist.vision.faces import FaceDetector

# Driving-video layout: face centre as a fraction of the canvas, face width / canvas width.
FACE_CENTRE = (0.38, 0.40)
FACE_WIDTH = 0.30


def compose_canvas(photo: np.ndarray, box: np.ndarray, landmarks: np.ndarray, width: int,
                   height: int, rng: np.random.Generator | None = None,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A portrait canvas with the photo's face off-centre, over a blurred cover of the photo.

    Returns the canvas (height, width, 3) and the landmarks mapped onto it.
    """
    rng = rng or np.random.default_rng(0)
    ph, pw = photo.shape[:2]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    k = FACE_WIDTH * width / max(box[2] - box[0], 1.0)
    gx = (FACE_CENTRE[0] + rng.uniform(-0.02, 0.02)) * width
    gy = (FACE_CENTRE[1] + rng.uniform(-0.02, 0.02)) * height
    m = np.array([[k, 0.0, gx - k * cx], [0.0, k, gy - k * cy]])
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    placed = cv2.warpAffine(photo, m, (width, height), flags=interp,
                            borderMode=cv2.BORDER_CONSTANT)
    feather = max(3, int(0.03 * width))
    mask = np.zeros((ph, pw), np.float32)
    mask[1:-1, 1:-1] = 1.0
    mask = cv2.warpAffine(mask, m, (width, height), flags=cv2.INTER_LINEAR)
    mask = cv2.erode(mask, np.ones((feather, feather), np.uint8))
    mask = cv2.GaussianBlur(mask, (0, 0), feather / 2)[..., None]
    # Background: the photo scaled to cover the frame, heavily blurred and a little darker.
    cover = max(width / pw, height / ph)
    small = cv2.resize(photo, (max(2, int(pw * cover / 8)), max(2, int(ph * cover / 8))),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 3.0)
    bg = cv2.resize(small, (int(np.ceil(pw * cover)), int(np.ceil(ph * cover))),
                    interpolation=cv2.INTER_LINEAR)
    oy, ox = (bg.shape[0] - height) // 2, (bg.shape[1] - width) // 2
    bg = bg[oy:oy + height, ox:ox + width].astype(np.float32) * 0.85
    canvas = placed.astype(np.float32) * mask + bg * (1.0 - mask)
    canvas = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return canvas, landmarks * k + m[:, 2]


def render_driving_frames(photo: np.ndarray, box: np.ndarray, landmarks: np.ndarray,
                          action: str, width: int = 720, height: int = 1280, fps: float = 30.0,
                          seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """The frames (T, height, width, 3) of a driving video of `action` (see make_driving_video)."""
    if action not in ACTION_POSES:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    rng = np.random.default_rng([int(seed), ACTIONS.index(action)])
    canvas, lms = compose_canvas(photo, box, landmarks, width, height, rng)
    rig = FaceRig.from_landmarks(lms)
    roi = rig.roi(width, height)
    step, fine = coarse_step(rig.iod), fine_step(rig.iod)
    n = max(1, int(round(seconds * fps)))
    t = np.linspace(0.0, 1.0, n)
    shake = camera_shake(rng, n, fps, width, height)
    frames = np.empty((n, height, width, 3), np.uint8)
    with single_blas_thread():
        for i, pose in enumerate(ACTION_POSES[action](t)):
            frame = render_pose(canvas, rig, pose, step=step, roi=roi, fine_step=fine)
            cv2.warpAffine(frame, shake[i], (width, height), dst=frames[i],
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    return frames


def make_driving_video(photo: np.ndarray, action: str, out_path: str | Path,
                       detector: FaceDetector, width: int = 720, height: int = 1280,
                       fps: float = 30.0, seconds: float = 2.0, seed: int = 0) -> Path:
    """A raw phone-like portrait video (width x height) of the photo's person performing `action`.

    The face sits off-centre (about 38% across, 40% down, 30% of the width) over a blurred cover
    of the photo, the camera wobbles a few pixels (seeded), and the action follows an ease-in /
    hold / ease-out profile. right_slope gives dfmnist.vision.motion.roll_degrees > 0 (head tilted
    clockwise on screen, toward the image right), left_slope < 0; yaw first turns toward the
    image right (yaw_proxy > 0), then the left. Encoded as H.264 CRF 18, yuv420p.
    """
    if width % 2 or height % 2:
        raise ValueError(f"driving video size must be even, got {width}x{height}")
    if action not in ACTION_POSES:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    box, lms = find_face(photo, detector)
    frames = render_driving_frames(photo, box, lms, action, width, height, fps, seconds, seed)
    return write_video(out_path, frames, fps, DEMO_ENCODING)

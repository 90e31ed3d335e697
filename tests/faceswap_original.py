"""Runs faceswap's own colour augmentation from a checkout, in its own process (faceswap's
``lib`` package must not meet ours): ``python faceswap_original.py CHECKOUT IN.npz OUT.npz``.

IN.npz holds ``faces`` (B, S, S, 3) uint8 RGB, ``seed`` and ``rounds``. The checkout's
``ImageAugmentation.color_adjust`` (lib/training/augmentation.py) runs `rounds` times on the
batch (BGR, as faceswap reads images), its numpy draws served in its order from one
``numpy.random.Generator(PCG64(seed))``, so that ours, given the same generator, must give the
same bytes. OUT.npz gets ``faces`` (rounds, B, S, S, 3) uint8 RGB. Needs tqdm on the path;
FACESWAP_BACKEND=cpu keeps faceswap from asking for a backend.
"""

from __future__ import annotations

import os
import sys

import numpy as np


def main(checkout: str, source: str, target: str) -> None:
    os.environ.setdefault("FACESWAP_BACKEND", "cpu")
    sys.path.insert(0, checkout)
    import lib.logger  # noqa: F401  (faceswap's loggers need its trace level)
    from lib.training.augmentation import ImageAugmentation

    data = np.load(source)
    faces, rounds = data["faces"], int(data["rounds"])
    generator = np.random.Generator(np.random.PCG64(int(data["seed"])))
    # faceswap draws with numpy's global functions: serve them from the generator
    np.random.rand = lambda *shape: generator.random(shape)
    np.random.uniform = lambda low=0.0, high=1.0, size=None: generator.uniform(low, high, size)
    config = {"color_lightness": 30, "color_ab": 8, "color_clahe_chance": 50,
              "color_clahe_max_size": 4}
    size = faces.shape[1]
    augment = ImageAugmentation(len(faces), False, size, [(None, size, size, 3)], 1.0, config)
    augment.initialize(size)
    out = []
    for _ in range(rounds):
        bgr = np.ascontiguousarray(faces[..., ::-1])
        out.append(augment.color_adjust(bgr)[..., ::-1])
    np.savez(target, faces=np.stack(out))


if __name__ == "__main__":
    main(*sys.argv[1:4])

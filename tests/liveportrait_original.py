"""Animate with the original LivePortrait code, in a process of its own.

    python tests/liveportrait_original.py --checkout DIR --checkpoint CKPT --inputs I.npz \
        --out O.npz [--dtypes float32 float64] [--driving-option OPTION] [--keys]

DIR is a checkout of KwaiVGI/LivePortrait (its code is a top-level package ``src``, hence a
process of its own); CKPT a folder with the five checkpoint files, which its own
``load_model`` loads (strictly). I.npz holds ``source`` (256, 256, 3) and ``driving``
(T, 256, 256, 3) uint8 face crops. For each DTYPE the pipeline's loop runs
(`dfmnist.generators.liveportrait.original`, fp16 off, stitching on): float32 with the
pipeline's own calls, float64 on its networks cast to double. O.npz gets, per DTYPE,
``DTYPE:frames`` (T, 512, 512, 3) float, ``DTYPE:KEY`` for every traced intermediate
(keypoints, warped features, occlusion, deformation, appearance volume) and, for float32,
``float32:uint8`` (the wrapper's ``parse_output``). With ``--keys``: ``keys``, the original
networks' state-dict keys and shapes per file as JSON. Extra packages the original needs and
the environment lacks may be put on the path by DFMNIST_LIVEPORTRAIT_LIBS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    parser.add_argument("--driving-option", default="expression-friendly")
    parser.add_argument("--keys", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    for extra in filter(None, os.environ.get("DFMNIST_LIVEPORTRAIT_LIBS", "").split(os.pathsep)):
        sys.path.append(extra)

    import numpy as np
    import torch

    from dfmnist.generators.liveportrait.checkpoint import checkpoint_files
    from dfmnist.generators.liveportrait.original import load_original

    if args.threads:
        torch.set_num_threads(args.threads)
    original = load_original(args.checkout)
    files = checkpoint_files(args.checkpoint)
    inputs = np.load(args.inputs)
    out: dict[str, np.ndarray] = {}
    for name in args.dtypes:
        dtype = getattr(torch, name)
        wrapper = original.wrapper(files)
        if dtype == torch.float64:
            original.to_double(wrapper)
        trace: dict[str, list] = {}
        frames = original.animate(wrapper, inputs["source"], inputs["driving"],
                                  driving_option=args.driving_option, dtype=dtype, trace=trace)
        out[f"{name}:frames"] = frames.transpose(0, 2, 3, 1)
        for key, values in trace.items():
            out[f"{name}:{key}"] = np.stack(values)
        if dtype == torch.float32:
            out[f"{name}:uint8"] = original.parse_output(wrapper, frames)
    if args.keys:
        wrapper = original.wrapper(files)
        keys = {name: {k: list(v.shape) for k, v in getattr(wrapper, name).state_dict().items()}
                for name in ("appearance_feature_extractor", "motion_extractor",
                             "warping_module", "spade_generator")}
        for part, net in wrapper.stitching_retargeting_module.items():
            keys[f"stitching_retargeting_module:{part}"] = {
                k: list(v.shape) for k, v in net.state_dict().items()}
        out["keys"] = np.array(json.dumps(keys))
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()

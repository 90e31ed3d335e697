"""Animate with the original Thin-Plate-Spline-Motion-Model code, in a process of its own.

    python tests/tpsmm_original.py --checkout DIR --config NAME [--checkpoint C.pth.tar] \
        [--inputs I.npz] --out O.npz [--runs RUN ...] [--keys]

DIR is a checkout of yoyo-nb/Thin-Plate-Spline-Motion-Model. Its ``demo.load_checkpoints``
builds the networks from the checkout's ``config/NAME.yaml`` (or, for configs of ours such
as 'small', a YAML written from our `TpsmmConfig` with the same parameter names) and loads
the checkpoint with ``load_state_dict`` (strict); the ``bg_predictor`` is built from its
``modules`` and loaded strictly too when the checkpoint has one. I.npz holds ``source``
(H, W, 3) and ``driving`` (T, H, W, 3) uint8 frames. Each RUN is ``MODE:DTYPE[:OPTION]``:

* ``relative:float32`` (``standard``, ``avd``): the demo's ``make_animation`` itself;
* ``relative:float32:best=I``: the demo's ``--find_best_frame`` scheme with frame I as the
  best frame: ``make_animation`` forward from I and backward from I, joined;
* ``MODE:float64[...]``: the same calls the demo makes (``kp_detector``, ``relative_kp``,
  ``avd_network``, ``dense_motion_network``, ``inpainting_network``) frame by frame on the
  networks cast to float64 (``make_animation`` itself casts its inputs to float32);
* ``...:background``: that loop with ``bg_param`` from the ``bg_predictor`` per frame, as the
  original's ``reconstruction.py`` does;
* ``...:contiguous``: that loop with contiguous input tensors instead of ``make_animation``'s
  permuted ones: the same function, other convolution kernels (the original's own rounding
  spread).

O.npz gets one (T, H, W, 3) array per RUN (named by the RUN) and, with ``--keys``, the
original networks' state-dict keys and shapes as JSON (``keys``); without ``--checkpoint``
the networks are only built (for ``--keys``). tests/test_tpsmm_original.py
runs this; the original has a top-level package named ``modules``, hence a process of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def frame_loop(original: Any, nets: dict[str, torch.nn.Module], source: np.ndarray,
               driving: np.ndarray, mode: str, dtype: torch.dtype, background: bool,
               initial: int = 0, contiguous: bool = False) -> np.ndarray:
    """The demo's per-frame calls on the original networks in `dtype` (see the docstring).
    Its input tensors are permuted numpy arrays, as in ``make_animation`` (channels-last
    strides, which the convolutions keep); `contiguous` makes them contiguous instead."""

    def tensor(image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(image[None].astype(np.float64)).permute(0, 3, 1, 2).to(dtype)
        return x.contiguous() if contiguous else x

    src = tensor(source)
    kp_detector = nets["kp_detector"]
    with torch.no_grad():
        kp_source = kp_detector(src)
        kp_initial = kp_detector(tensor(driving[initial]))
        frames = []
        for frame in driving:
            drv = tensor(frame)
            kp_driving = kp_detector(drv)
            if mode == "relative":
                kp_norm = original.demo.relative_kp(kp_source=kp_source, kp_driving=kp_driving,
                                                    kp_driving_initial=kp_initial)
            elif mode == "avd":
                kp_norm = nets["avd_network"](kp_source, kp_driving)
            else:
                kp_norm = kp_driving
            bg_param = nets["bg_predictor"](src, drv) if background else None
            motion = nets["dense_motion_network"](source_image=src, kp_driving=kp_norm,
                                                  kp_source=kp_source, bg_param=bg_param,
                                                  dropout_flag=False)
            out = nets["inpainting_network"](src, motion)["prediction"]
            frames.append(out[0].permute(1, 2, 0).numpy())
    return np.stack(frames)


def run(original: Any, nets: dict[str, torch.nn.Module], source: np.ndarray,
        driving: np.ndarray, spec: str) -> np.ndarray:
    """One RUN (``MODE:DTYPE[:OPTION]``) on uint8 inputs: frames (T, H, W, 3)."""
    mode, dtype, *options = spec.split(":")
    best = next((int(o.split("=")[1]) for o in options if o.startswith("best=")), None)
    background = "background" in options
    contiguous = "contiguous" in options
    if dtype == "float32" and not (background or contiguous):
        unit = np.float32(255.0)
        src = source.astype(np.float32) / unit
        drv = list(driving.astype(np.float32) / unit)
        order = (nets["inpainting_network"], nets["kp_detector"],
                 nets["dense_motion_network"], nets["avd_network"])
        if best is None:
            return np.stack(original.make_animation(src, drv, order, mode=mode))
        forward = original.make_animation(src, drv[best:], order, mode=mode)
        backward = original.make_animation(src, drv[:best + 1][::-1], order, mode=mode)
        return np.stack(backward[::-1] + forward[1:])
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    for net in nets.values():
        net.to(torch_dtype)
    try:
        # uint8 / 255 in float64, then the working dtype: the float32 division's result
        return frame_loop(original, nets, source / 255.0, driving / 255.0, mode, torch_dtype,
                          background, initial=best or 0, contiguous=contiguous)
    finally:
        for net in nets.values():
            net.float()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", required=True, type=Path)
    parser.add_argument("--config", required=True)
    parser.add_argument("--checkpoint", type=Path, help="omitted: --keys of fresh networks")
    parser.add_argument("--inputs", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--runs", nargs="*", default=[])
    parser.add_argument("--keys", action="store_true")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))  # dfmnist: the config and the checkout loader only
    from dfmnist.generators.tpsmm.checkpoint import get_config
    from dfmnist.generators.tpsmm.original import load_original

    original = load_original(args.checkout)
    config_path = original.root / "config" / f"{args.config}.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        if not config_path.is_file():
            config_path = original.write_config(get_config(args.config), Path(tmp) / "c.yaml")
        if args.checkpoint is None:  # the layout only: built as load_checkpoints builds them
            if args.runs:
                parser.error("--runs needs --checkpoint")
            inpainting, kp_detector, dense_motion, avd = original.build_networks(config_path)
        else:
            inpainting, kp_detector, dense_motion, avd = original.load_checkpoints(
                config_path, args.checkpoint)
    nets = {"inpainting_network": inpainting, "kp_detector": kp_detector,
            "dense_motion_network": dense_motion, "avd_network": avd,
            "bg_predictor": original.bg_predictor()}
    if args.checkpoint is not None:
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        if "bg_predictor" in state:
            nets["bg_predictor"].load_state_dict(state["bg_predictor"])
    nets["bg_predictor"].eval()
    out = {}
    if args.keys:
        out["keys"] = np.array(json.dumps({
            name: [[k, list(v.shape)] for k, v in net.state_dict().items()]
            for name, net in nets.items()}))
    if args.runs:
        with np.load(args.inputs) as data:
            source, driving = data["source"], data["driving"]
        torch.set_num_threads(1)  # its float32 kernels as in the test process
        for spec in args.runs:
            out[spec] = run(original, nets, source, driving, spec)
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()

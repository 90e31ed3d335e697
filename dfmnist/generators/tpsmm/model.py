"""`TpsmmGenerator`: the Thin-Plate Spline Motion Model (Zhao & Zhang, CVPR 2022) as a
`dfmnist` generator, inference as in the original ``demo.py`` (``make_animation``).

The source keypoints, the source's inpainting encoder levels and its downscaled copy for the
dense motion network are computed once per video; the driving frames are rendered in batches
of `batch_size` under ``torch.inference_mode`` (the original renders frame by frame and
re-encodes the source for every frame: same function, more work), by networks rewritten for
inference (`dfmnist.generators.tpsmm.inference`). Motion modes as the demo's ``--mode``
(`dfmnist.generators.tpsmm.modes`).

Sizes: the model works at its config's frame size (256 for vox-256); inputs of another size
are resized to it (OpenCV, area when shrinking, bicubic when enlarging) and the frames come
back at the source's size; ``resize=False`` makes that an error instead. The landmarks are
used only by ``find_best_frame``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dfmnist.generators.base import check_inputs
from dfmnist.generators.fomm.precision import tf32_mode
from dfmnist.generators.fomm.winograd import TILES
from dfmnist.generators.network import NetworkGenerator, resize_frame, state_sha256
from dfmnist.generators.tpsmm.checkpoint import (
    CheckpointError,
    TpsmmConfig,
    TpsmmNetworks,
    checkpoint_missing_message,
    get_config,
    load_checkpoint,
)
from dfmnist.generators.tpsmm.inference import speed_up
from dfmnist.generators.tpsmm.modes import (
    MODES,
    adapt_movement_scale,
    best_frame,
    relative_keypoints,
)

__all__ = ["PRECISIONS", "TpsmmGenerator"]

#: Bump when the rendering changes, so content keys change with it.
ALGORITHM_VERSION = 1
#: 'fp32' (float32, TF32 off), 'fp64' (every weight and activation in float64: slow, for
#: equivalence checks), 'tf32' (CUDA only: float32 with TF32 convolutions and matmuls).
PRECISIONS = ("fp32", "fp64", "tf32")


class TpsmmGenerator(NetworkGenerator):
    """TPSMM animation with a checkpoint in the original format.

    Options:

    * `checkpoint`: path to the original ``vox.pth.tar`` or a file of the same layout
      (required unless `networks`; loaded on first use); `sha256`: its expected hash;
      `config`: 'vox-256' or 'small'; `networks`: a `TpsmmNetworks` already in memory instead
      (used and modified in place; see `from_networks`);
    * `mode`: 'relative' (the demo's default), 'standard' or 'avd' (needs the checkpoint's
      ``avd_network``); `find_best_frame`: relative motion against the driving frame whose
      landmarks best match the source's (the demo's ``--find_best_frame``, here on the
      pipeline's 5 landmarks instead of face-alignment's 68); `background`: warp the
      background by the checkpoint's ``bg_predictor`` (as the original's
      ``reconstruction.py``; its demo does not);
    * `precision`: see `PRECISIONS`; `resize`: resize inputs of another size (else raise);
    * `device`, `batch_size` (frames per forward pass; default 1 on the CPU, where batches
      of 2 and 4 measured 3-6% slower, 8 on CUDA), `channels_last` (memory format;
      default off: slower on the CPU, where the instance norms convert layouts),
      `fold_bn` (fold the ResNets' batch norms), `transposed_up` (up blocks as transposed
      convolutions, see `inference`), `winograd` (tile m of Winograd's F(m x m, 3 x 3) for
      the residual blocks' 3x3 convolutions of `winograd_min_channels` or more channels,
      see `winograd_nchw`: 2, 4 (default on CPU), or 0 (default on CUDA) for the direct
      convolutions; F(4x4) measured on vox-256 at 1 thread: the decoder's residual blocks
      1.8x faster, 826 -> 466 ms a frame; its float32 rounding left the frames' max error
      against float64 as it was, other operations dominate it), `row_split` (7x7
      convolutions with 1-3 outputs as row convolutions; default on CPU), `threads`
      (``torch.set_num_threads`` before rendering: the cores the job really has; more
      threads than free cores is many times slower),
      `unsafe_load` (full unpickling, trusted files only). These change the output only by
      float rounding and are not in `params()`.
    """

    name = "tpsmm"
    label = "TPSMM"
    kernel_options = ("batch_size", "channels_last", "fold_bn", "transposed_up", "winograd",
                      "winograd_min_channels", "row_split")

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        config: str = "vox-256",
        sha256: str | None = None,
        device: str = "cpu",
        batch_size: int | None = None,
        precision: str = "fp32",
        mode: str = "relative",
        find_best_frame: bool = False,
        background: bool = False,
        resize: bool = True,
        channels_last: bool | None = None,
        fold_bn: bool = True,
        transposed_up: bool = True,
        winograd: int | None = None,
        winograd_min_channels: int = 256,
        row_split: bool | None = None,
        threads: int | None = None,
        unsafe_load: bool = False,
        networks: TpsmmNetworks | None = None,
    ) -> None:
        if batch_size is None:  # measured on the CPU: batches only enlarge the working set
            batch_size = 1 if torch.device(device).type == "cpu" else 8
        self._setup(checkpoint=checkpoint, networks=networks, sha256=sha256,
                    missing=checkpoint_missing_message, device=device, batch_size=batch_size,
                    precision=precision, precisions=PRECISIONS, threads=threads,
                    resize=resize)
        self.config: TpsmmConfig = get_config(config)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.find_best_frame = bool(find_best_frame)
        self.background = bool(background)
        cpu = self.device.type == "cpu"
        self.channels_last = False if channels_last is None else bool(channels_last)
        self.fold_bn = bool(fold_bn)
        self.transposed_up = bool(transposed_up)
        winograd = (4 if cpu else 0) if winograd is None else int(winograd)
        if winograd and winograd not in TILES:
            raise ValueError(f"winograd must be 0 or one of {TILES}, got {winograd}")
        self.winograd = winograd
        self.winograd_min_channels = int(winograd_min_channels)
        self.row_split = cpu if row_split is None else bool(row_split)
        self.unsafe_load = bool(unsafe_load)
        self._nets: TpsmmNetworks | None = None
        if networks is not None:
            self.weights_sha256 = state_sha256(*networks.present().values())
            self._nets = self._place(networks)

    @classmethod
    def from_networks(cls, networks: TpsmmNetworks, **options: Any) -> TpsmmGenerator:
        """A generator around networks in memory (benchmarks, experiments); its
        `weights_sha256` hashes their state dicts. The networks are copied, not modified."""
        return cls(networks=TpsmmNetworks(*copy.deepcopy(tuple(networks))), **options)

    def params(self) -> dict[str, Any]:
        return {
            "version": ALGORITHM_VERSION,
            "config": self.config.name,
            "mode": self.mode,
            "find_best_frame": self.find_best_frame,
            "background": self.background,
            "precision": self.precision,
            "resize": self.resize,
        }

    def networks(self) -> TpsmmNetworks:
        """The networks this generator uses (the AVD network only in 'avd' mode, the background
        predictor only with `background`), rewritten for inference, on `device` (loaded on
        first use)."""
        if self._nets is None:
            assert self.checkpoint is not None
            self._nets = self._place(load_checkpoint(self.checkpoint, self.config,
                                                     unsafe_load=self.unsafe_load))
        return self._nets

    def _place(self, networks: TpsmmNetworks) -> TpsmmNetworks:
        """The networks in eval mode, in the working dtype, rewritten, on the device, in the
        chosen memory format (modifies them)."""
        self._check_device()
        if self.precision == "tf32" and self.device.type != "cuda":
            raise ValueError(f"precision='tf32' is only supported on CUDA devices, got "
                             f"device={str(self.device)!r}; use 'fp32' or 'fp64'")
        if self.mode == "avd" and networks.avd_network is None:
            raise CheckpointError("mode='avd' needs the checkpoint's 'avd_network' (written by "
                                  "the original's train_avd.py); this checkpoint has none")
        if self.background and networks.bg_predictor is None:
            raise CheckpointError("background=True needs the checkpoint's 'bg_predictor'; "
                                  "this checkpoint has none")
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        unused = {"avd_network": self.mode != "avd", "bg_predictor": not self.background}
        placed = {}
        for entry, net in networks.present().items():
            if unused.get(entry, False):
                continue  # loaded (and checked) with the checkpoint, not needed here
            net = net.eval().to(self.dtype)  # fold in the working dtype's precision
            speed_up(net, fold_bn=self.fold_bn, transposed_up=self.transposed_up,
                     winograd=self.winograd,
                     winograd_min_channels=self.winograd_min_channels,
                     row_split=self.row_split)
            placed[entry] = net.to(self.device, memory_format=fmt)
        return TpsmmNetworks(**placed)

    @contextmanager
    def _math_mode(self) -> Iterator[None]:
        if self.device.type != "cuda":
            yield
            return
        with tf32_mode(self.precision == "tf32"):
            yield

    def initial_frame(self, source: np.ndarray, source_landmarks: np.ndarray,
                      driving: np.ndarray, driving_landmarks: np.ndarray) -> int:
        """The driving frame relative motion starts from: 0, or with `find_best_frame` the
        best match of the landmarks (each set scaled to the model's square frame first, as
        the demo compares landmarks of the resized frames)."""
        if not self.find_best_frame:
            return 0
        size = self.frame_size

        def square(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
            return np.asarray(points, np.float64) * [size / shape[1], size / shape[0]]

        return best_frame(square(source_landmarks, source.shape),
                          square(driving_landmarks, driving.shape[1:]))

    def render(
        self,
        source: np.ndarray,
        driving: np.ndarray,
        initial: int = 0,
        sink: Callable[[int, torch.Tensor], None] | None = None,
    ) -> np.ndarray | None:
        """Animate at the model's resolution: frames (T, S, S, 3) in [0, 1], float32 (float64
        with ``precision='fp64'``). `initial` is the driving frame of relative motion's
        reference. With `sink`, each batch (N, 3, S, S), a tensor on the device, goes to
        ``sink(start, frames)`` instead and None is returned."""
        size = (self.frame_size, self.frame_size)
        self._check_size("source", source.shape)
        self._check_size("driving", driving.shape[1:])
        if not 0 <= initial < len(driving):
            raise ValueError(f"initial frame {initial} outside the {len(driving)} driving frames")
        nets = self.networks()
        self._use_threads()
        out = None
        if sink is None:  # collect the frames as arrays
            out, sink = self._collector(len(driving), size)
        with torch.inference_mode(), self._math_mode():
            src = self._to_tensor(resize_frame(source, size)[None])
            kp_source = nets.kp_detector(src)
            levels = nets.inpainting_network.encode_source(src)
            small = nets.dense_motion_network.downscale(src)
            kp_initial, scale = None, 1.0
            if self.mode == "relative":  # detected on its own, as the demo does
                kp_initial = nets.kp_detector(self._to_tensor(resize_frame(driving[initial],
                                                                      size)[None]))
                scale = adapt_movement_scale(kp_source[0].cpu().numpy(),
                                             kp_initial[0].cpu().numpy())
            for start in range(0, len(driving), self.batch_size):
                _, frames = self._frames_at(driving, start)
                kp_driving = nets.kp_detector(frames)
                if kp_initial is not None:
                    kp_driving = relative_keypoints(kp_source, kp_driving, kp_initial, scale)
                elif self.mode == "avd":
                    assert nets.avd_network is not None
                    kp_driving = nets.avd_network(kp_source, kp_driving)
                bg_param = None
                if self.background:
                    assert nets.bg_predictor is not None
                    bg_param = nets.bg_predictor(src, frames)
                motion = nets.dense_motion_network(small, kp_driving, kp_source,
                                                   bg_param=bg_param, downscaled=True)
                sink(start, nets.inpainting_network.render(src, levels, motion))
        return out

    def animate(
        self,
        source: np.ndarray,
        source_landmarks: np.ndarray,
        driving: np.ndarray,
        driving_landmarks: np.ndarray,
    ) -> np.ndarray:
        """Animate `source` with `driving`'s motion: (T, H, W, 3) uint8 at the source's size."""
        source, src_lms, driving, drv_lms = check_inputs(source, source_landmarks, driving,
                                                         driving_landmarks)
        initial = self.initial_frame(source, src_lms, driving, drv_lms)
        result = np.empty((len(driving), *source.shape[:2], 3), dtype=np.uint8)
        self.render(source, driving, initial=initial, sink=self._quantiser(result))
        return result

"""`FommGenerator`: the First Order Motion Model (Siarohin et al., NeurIPS 2019) as a
`dfmnist` generator, inference as in the original ``demo.py``.

The source keypoints are detected once; each driving frame's keypoints are taken relative to
the first driving frame (``relative``): ``kp = kp_src + s (kp_drv - kp_drv0)`` and
``J = J_drv J_drv0^-1 J_src``, with ``s`` the square root of the ratio of the keypoints'
convex-hull areas (source over first driving frame) when ``adapt_scale``, else 1. Frames are
rendered in batches under ``torch.inference_mode``; the source is encoded once and shared by
every frame (the original re-encodes it per frame: same result, more work).

Sizes: the model works at its config's frame size (256 for vox-256). Inputs of another size
are resized to it (OpenCV, area interpolation when shrinking, bicubic when enlarging) and the
frames come back at the source's size; ``resize=False`` turns this into an error instead.
The driving clip may have any size (it is resized on its own). Landmarks are ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dfmnist.generators.base import check_inputs
from dfmnist.generators.fomm.blocks import full_precision, full_width
from dfmnist.generators.fomm.checkpoint import (
    FommConfig,
    checkpoint_missing_message,
    get_config,
    load_checkpoint,
)
from dfmnist.generators.fomm.generator import OcclusionAwareGenerator
from dfmnist.generators.fomm.inference import (
    fold_batch_norms,
    row_split_convolutions,
    subpixel_upsampling,
)
from dfmnist.generators.fomm.keypoint_detector import KeypointDetector, Keypoints
from dfmnist.generators.fomm.precision import PRECISIONS, tf32_mode
from dfmnist.generators.fomm.relative import (
    adapt_movement_scale,
    hull_area,
    relative_keypoints,
)
from dfmnist.generators.fomm.winograd import TILES, winograd_convolutions
from dfmnist.generators.network import (
    NetworkGenerator,
    resize_frame,
    state_sha256,
)

__all__ = [
    "FommGenerator",
    "adapt_movement_scale",
    "hull_area",
    "relative_keypoints",
    "resize_frame",
    "state_sha256",
]

#: Bump when the rendering changes, so content keys change with it.
ALGORITHM_VERSION = 1

class FommGenerator(NetworkGenerator):
    """First Order Motion Model animation with a checkpoint in the original format.

    Options:

    * `checkpoint`: path to the original ``vox-cpk.pth.tar`` or a file of the same layout
      (required; the weights are loaded on first use); `sha256`: its expected hash
      (checked); `config`: 'vox-256' or 'small'; `networks`: (kp_detector, generator)
      already in memory instead of a checkpoint (used and modified in place; see
      `from_networks`);
    * `relative`, `adapt_scale`: the demo's ``--relative --adapt_scale``;
    * `precision`: 'fp32' (true float32, TF32 off); 'fp64' (every weight and activation in
      float64, batch norms folded in float64: several times slower; its frames are the
      model's function up to ~1e-12, for checking equivalence with other implementations);
      CUDA only: 'tf32' (float32 with TF32 convolutions), 'bf16'/'fp16' (autocast of the
      generator; the keypoint detector, flows and sampling stay float32);
    * `align_corners`: grid-sampling convention; True reproduces PyTorch < 1.3, under which
      the published model was trained;
    * `resize`: resize inputs of another size (else raise);
    * `device` ('cpu', 'cuda', 'cuda:N'), `batch_size` (frames per forward pass),
      `channels_last` (memory format of the convolutions; default: on for CPU and for
      CUDA bf16/fp16, where it was measured faster, off for CUDA fp32/tf32), `fold_bn`
      (fold the batch norms that follow convolutions into them: fewer passes over memory),
      `subpixel` (decoder blocks as 2x2 convolutions per output phase on the input instead
      of a 3x3 convolution of the upsampled input: 2.25x fewer multiply-adds; see
      `inference`), `winograd` (the output tile side of Winograd's F(m x m, 3 x 3) for the
      3x3 convolutions of `winograd_min_channels` or more on the CPU, 2 or 4, or 0 for
      oneDNN's direct kernel;
      default 2 on the CPU (as accurate as the direct kernel, 0.44x its multiply-adds), 0 on
      CUDA, whose cuDNN chooses its own algorithms; see `winograd`), `winograd_min_channels`
      (narrower 3x3 convolutions stay direct: with few channels the transforms cost more
      than they save; default 128), `row_split` (the final 7x7 convolutions to 1-3 channels as
      a 1x7 convolution per kernel row, summed: about 2x faster on the CPU; default on the
      CPU only),
      `cudnn_benchmark` (let cuDNN time its convolution algorithms per shape while
      rendering), `threads`
      (``torch.set_num_threads`` before rendering: set it to the cores the job really has;
      more threads than free cores makes PyTorch's CPU kernels dramatically slower),
      `unsafe_load` (full unpickling, for a trusted checkpoint only). These do not change
      the output (up to float rounding) and are not in `params()`.
    """

    name = "fomm"
    label = "FOMM"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        config: str = "vox-256",
        sha256: str | None = None,
        device: str = "cpu",
        batch_size: int = 8,
        precision: str = "fp32",
        relative: bool = True,
        adapt_scale: bool = True,
        align_corners: bool = True,
        resize: bool = True,
        channels_last: bool | None = None,
        fold_bn: bool = True,
        subpixel: bool = True,
        winograd: int | None = None,
        winograd_min_channels: int = 128,
        row_split: bool | None = None,
        cudnn_benchmark: bool = True,
        threads: int | None = None,
        unsafe_load: bool = False,
        networks: tuple[KeypointDetector, OcclusionAwareGenerator] | None = None,
    ) -> None:
        self._setup(checkpoint=checkpoint, networks=networks, sha256=sha256,
                    missing=checkpoint_missing_message, device=device, batch_size=batch_size,
                    precision=precision, precisions=tuple(PRECISIONS), threads=threads,
                    resize=resize)
        self.config: FommConfig = get_config(config)
        self.relative = bool(relative)
        self.adapt_scale = bool(adapt_scale)
        self.align_corners = bool(align_corners)
        if channels_last is None:  # measured: faster on CPU and for CUDA bf16/fp16 only
            channels_last = self.device.type == "cpu" or precision in ("bf16", "fp16")
        self.channels_last = bool(channels_last)
        self.fold_bn = bool(fold_bn)
        self.subpixel = bool(subpixel)
        if winograd is None:
            winograd = 2 if self.device.type == "cpu" else 0
        if winograd and int(winograd) not in TILES:
            raise ValueError(f"winograd must be 0 or one of {TILES}, got {winograd}")
        self.winograd = int(winograd or 0)
        self.winograd_min_channels = int(winograd_min_channels)
        self.row_split = self.device.type == "cpu" if row_split is None else bool(row_split)
        self.cudnn_benchmark = bool(cudnn_benchmark)
        self.unsafe_load = bool(unsafe_load)
        self._nets: tuple[KeypointDetector, OcclusionAwareGenerator] | None = None
        if networks is not None:
            self.weights_sha256 = state_sha256(*networks)
            self._nets = self._place(*networks)

    @classmethod
    def from_networks(
        cls, kp_detector: KeypointDetector, generator: OcclusionAwareGenerator, **options: Any
    ) -> FommGenerator:
        """A generator around networks already in memory (benchmarks, experiments); its
        `weights_sha256` hashes their state dicts (not a checkpoint file). The networks are
        copied, not modified."""
        return cls(networks=(copy.deepcopy(kp_detector), copy.deepcopy(generator)), **options)

    def params(self) -> dict[str, Any]:
        return {
            "version": ALGORITHM_VERSION,
            "config": self.config.name,
            "relative": self.relative,
            "adapt_scale": self.adapt_scale,
            "precision": self.precision,
            "align_corners": self.align_corners,
            "resize": self.resize,
        }

    def networks(self) -> tuple[KeypointDetector, OcclusionAwareGenerator]:
        """The loaded (kp_detector, generator), in eval mode on `device` (loaded on first use)."""
        if self._nets is None:
            assert self.checkpoint is not None
            self._nets = self._place(*load_checkpoint(
                self.checkpoint, self.config, unsafe_load=self.unsafe_load,
                align_corners=self.align_corners,
            ))
        return self._nets

    def _place(
        self, kp_detector: KeypointDetector, generator: OcclusionAwareGenerator
    ) -> tuple[KeypointDetector, OcclusionAwareGenerator]:
        """The networks in eval mode on the device, in the chosen memory format, batch norms
        folded with `fold_bn` (modifies them)."""
        self._check_device()
        if self.precision not in ("fp32", "fp64") and self.device.type != "cuda":
            raise ValueError(f"precision={self.precision!r} is only supported on CUDA devices, "
                             f"got device={str(self.device)!r}; use 'fp32' or 'fp64'")
        for net in (kp_detector, generator):
            for module in net.modules():  # the grid convention is an option of ours
                if hasattr(module, "align_corners"):
                    module.align_corners = self.align_corners
        # the working dtype before folding: the fp64 model's folded weights are float64 sums
        kp_detector = kp_detector.eval().to(self.dtype)
        generator = generator.eval().to(self.dtype)
        if self.fold_bn:
            fold_batch_norms(kp_detector)
            fold_batch_norms(generator)
        if self.subpixel:
            subpixel_upsampling(kp_detector)
            subpixel_upsampling(generator)
        for net in (kp_detector, generator):
            if self.row_split:
                row_split_convolutions(net)
            if self.winograd:
                winograd_convolutions(net, tile=self.winograd,
                                      min_channels=self.winograd_min_channels)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        kp_detector = kp_detector.to(self.device, memory_format=fmt)
        generator = generator.to(self.device, memory_format=fmt)
        return kp_detector, generator

    def _autocast(self) -> Any:
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    @contextmanager
    def _math_mode(self) -> Iterator[None]:
        if self.device.type != "cuda":
            yield
            return
        saved = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        try:
            with tf32_mode(self.precision == "tf32"):
                yield
        finally:
            torch.backends.cudnn.benchmark = saved

    def render(
        self,
        source: np.ndarray,
        driving: np.ndarray,
        sink: Callable[[int, torch.Tensor], None] | None = None,
    ) -> np.ndarray | None:
        """Animate at the model's resolution: float32 frames (T, S, S, 3) in [0, 1] (float64
        with ``precision='fp64'``).

        `source` (H, W, 3) and `driving` (T, H', W', 3) are uint8. With `sink`, each batch of
        frames (N, 3, S, S), a float tensor on the device, is passed to ``sink(start, frames)``
        instead and None is returned.
        """
        size = (self.frame_size, self.frame_size)
        self._check_size("source", source.shape)
        self._check_size("driving", driving.shape[1:])
        kp_detector, generator = self.networks()
        self._use_threads()
        out = None
        if sink is None:  # collect the frames as arrays
            out, sink = self._collector(len(driving), size)
        src = self._to_tensor(resize_frame(source, size)[None])

        def keypoints(images: torch.Tensor) -> Keypoints:
            # at least float32: the temperature-0.1 softmax amplifies logit errors 10x
            with full_precision(images):
                return kp_detector(images).full_width()

        with torch.inference_mode(), self._math_mode(), self._autocast():
            kp_source = keypoints(src)
            encoding = generator.encode_source(src)
            kp_initial = None
            scale = 1.0
            for start in range(0, len(driving), self.batch_size):
                _, frames = self._frames_at(driving, start)
                kp_driving = keypoints(frames)
                if kp_initial is None:
                    kp_initial = kp_driving.select(0)
                    if self.relative and self.adapt_scale:
                        scale = adapt_movement_scale(kp_source.value[0].cpu().numpy(),
                                                     kp_initial.value[0].cpu().numpy())
                kp_norm = relative_keypoints(kp_source, kp_driving, kp_initial,
                                             relative=self.relative, scale=scale)
                sink(start, full_width(generator.render(encoding, kp_norm, kp_source)))
        return out

    def animate(
        self,
        source: np.ndarray,
        source_landmarks: np.ndarray,
        driving: np.ndarray,
        driving_landmarks: np.ndarray,
    ) -> np.ndarray:
        """Animate `source` with `driving`'s motion: (T, H, W, 3) uint8 at the source's size.

        The landmarks are validated but not used (FOMM finds its own keypoints).
        """
        source, _, driving, _ = check_inputs(source, source_landmarks, driving,
                                             driving_landmarks)
        result = np.empty((len(driving), *source.shape[:2], 3), dtype=np.uint8)
        self.render(source, driving, sink=self._quantiser(result))
        return result

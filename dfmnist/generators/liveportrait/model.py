"""`LivePortraitGenerator`: LivePortrait (Guo et al., 2024; KwaiVGI/LivePortrait) as a
`dfmnist` generator, inference as the original pipeline's image-source, video-driving path
with ``flag_do_crop=False`` (inputs already face crops), relative motion (always: the
pipeline's default; its absolute mode is not implemented) and stitching.

Per video: the source's appearance volume, keypoint information, implicit keypoints and the
dense motion's source-only inputs are computed once; the driving frames' keypoint
information in batches; then, per batch of frames, the relative motion
(`camera.relative_keypoints`; with 'expression-friendly' driving, the command line's default,
motion relative to frame 0's keypoints scaled by the convex-hull ratio), the stitching MLP,
the warping module and the SPADE decoder, under ``torch.inference_mode``. The original
recomputes nothing of this differently; it runs it frame by frame.

Not used: eye/lip retargeting and lip normalisation. They take eye and lip opening ratios
computed from InsightFace's 203-point landmarks, which we do not have; five MTCNN points
cannot give them. The original leaves them off by default too (``flag_eye_retargeting``,
``flag_lip_retargeting``, and on the command line ``flag_normalize_lip``, all False).

Sizes: the networks take 256x256 frames. Inputs of another size are resized to it as the
original does (``cv2.resize``, bilinear). The decoder renders 512x512; `animate` quantises
as the original's ``parse_output`` (``uint8(clip(255 x, 0, 255))``: truncation) and resizes
the frames to the source's size (area interpolation when shrinking: 512 -> 256 is the
mean of each 2x2 block; bicubic when enlarging).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from dfmnist.generators.base import check_inputs
from dfmnist.generators.liveportrait.camera import (
    KeypointInfo,
    hull_volume,
    keypoint_info,
    relative_keypoints,
    source_keypoints,
)
from dfmnist.generators.liveportrait.checkpoint import (
    CheckpointError,
    LivePortraitConfig,
    LivePortraitNetworks,
    checkpoint_files,
    checkpoint_missing_message,
    checkpoint_sha256,
    get_config,
    load_checkpoint,
)
from dfmnist.generators.liveportrait.fft_conv import FFTConv3d
from dfmnist.generators.liveportrait.fft_conv import supported as fft_supported
from dfmnist.generators.liveportrait.inference import (
    depth_chunked_conv3d,
    fold_batch_norms,
    phase_up_blocks,
    plain_convolutions,
)
from dfmnist.generators.liveportrait.stitching import apply_stitching
from dfmnist.generators.liveportrait.upsampled_conv import fast_spade as use_fast_spade
from dfmnist.generators.network import NetworkGenerator, state_sha256
from dfmnist.generators.tpsmm.winograd_nchw import nchw_winograd_convolutions

__all__ = ["DRIVING_OPTIONS", "PRECISIONS", "LivePortraitGenerator"]

#: Bump when the rendering changes, so content keys change with it.
ALGORITHM_VERSION = 1
#: 'fp16' is CUDA autocast around the networks, as the original's flag_use_half_precision.
PRECISIONS = ("fp32", "fp64", "fp16")
DRIVING_OPTIONS = ("expression-friendly", "pose-friendly")

_SHA_CACHE: dict[tuple[str, ...], str] = {}


def _resize(image: np.ndarray, size: tuple[int, int], linear: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 to `size` = (height, width): bilinear (the original's input resize)
    with `linear`, else area when shrinking and bicubic when enlarging."""
    h, w = image.shape[:2]
    if (h, w) == size:
        return image
    if linear:
        mode = cv2.INTER_LINEAR
    else:
        mode = cv2.INTER_AREA if size[0] * size[1] < h * w else cv2.INTER_CUBIC
    return cv2.resize(image, (size[1], size[0]), interpolation=mode)


class LivePortraitGenerator(NetworkGenerator):
    """LivePortrait animation with weights in the original five-file layout.

    Options:

    * `checkpoint`: the folder of the five original files (flat or the published
      ``base_models``/``retargeting_models`` layout; loaded on first use, strictly);
      `networks`: `LivePortraitNetworks` in memory instead (copied); `config`: 'human'
      (published) or 'small' (tests);
    * `stitching` (default on, as the original), `driving_option` ('expression-friendly',
      the original command line's default, or 'pose-friendly', its InferenceConfig
      default), `driving_multiplier` (1.0);
    * `precision`: 'fp32' (default; the original's default is fp16 autocast on CUDA),
      'fp64' (everything in float64: slow; for equivalence checks), 'fp16' (CUDA only:
      autocast around the networks as the original; keypoint arithmetic stays float32);
    * `device`, `batch_size` (frames per forward), `threads` (``torch.set_num_threads``),
      `fold_bn`, `winograd` (F(4x4, 3x3) in NCHW for the 3x3 convolutions of 256+
      channels, `tpsmm.winograd_nchw`: default on for CPU float32/float64, off on CUDA),
      `fft_mask` (the dense motion's 7x7x7 mask convolution by 2D FFTs, `fft_conv`:
      default as `winograd`), `fast_spade` (SPADE's shared convolution at the segmentation
      map's resolution, gamma and beta as one convolution, `upsampled_conv`: default on),
      `flush_subnormal` (zero the dense motion's subnormal heatmap values, at most 1.2e-38
      each: 3-4x faster hourglass convolutions on the CPU; default on), `phase_up` (the
      dense motion hourglass's upsampling blocks convolved at the low resolution, one
      output phase at a time: 2.25x fewer multiply-adds; needs `fold_bn`; default on).
      These do not change the output beyond float rounding and are not in `params()`.
    """

    name = "liveportrait"
    label = "LivePortrait"
    kernel_options = ("batch_size", "fold_bn", "winograd", "fft_mask", "fast_spade",
                      "flush_subnormal", "phase_up")

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        config: str | LivePortraitConfig = "human",
        networks: LivePortraitNetworks | None = None,
        stitching: bool = True,
        driving_option: str = "expression-friendly",
        driving_multiplier: float = 1.0,
        precision: str = "fp32",
        device: str = "cpu",
        batch_size: int = 4,
        threads: int | None = None,
        fold_bn: bool = True,
        winograd: bool | None = None,
        fft_mask: bool | None = None,
        fast_spade: bool = True,
        flush_subnormal: bool = True,
        phase_up: bool = True,
    ) -> None:
        if driving_option not in DRIVING_OPTIONS:
            raise ValueError(f"driving_option must be one of {', '.join(DRIVING_OPTIONS)}, "
                             f"got {driving_option!r}")
        self._setup(checkpoint=checkpoint, networks=networks, sha256=None,
                    missing=checkpoint_missing_message, device=device, batch_size=batch_size,
                    precision=precision, precisions=PRECISIONS, threads=threads, resize=True)
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision='fp16' is CUDA autocast, as the original's "
                             f"flag_use_half_precision; got device={device!r}")
        self.config = get_config(config)
        self.stitching = bool(stitching)
        self.driving_option = driving_option
        self.driving_multiplier = float(driving_multiplier)
        self.fold_bn = bool(fold_bn)
        on_cpu = self.device.type == "cpu" and precision != "fp16"
        self.winograd = on_cpu if winograd is None else bool(winograd)
        self.fft_mask = on_cpu if fft_mask is None else bool(fft_mask)
        self.fast_spade = bool(fast_spade)
        self.flush_subnormal = bool(flush_subnormal)
        self.phase_up = bool(phase_up)
        self._nets: LivePortraitNetworks | None = None
        if networks is not None:
            self.weights_sha256 = state_sha256(*networks.modules().values(),
                                               names=list(networks.modules()))
            self._nets = self._place(copy.deepcopy(networks))

    @staticmethod
    def _checkpoint_sha256(path: Path, missing: Callable[[str | Path], str]) -> str:
        """One sha256 of the five files (`checkpoint.checkpoint_sha256`), remembered per
        (path, size, mtime) of each."""
        if not path.is_dir():
            raise FileNotFoundError(missing(path))
        files = checkpoint_files(path)
        key = tuple(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                    for p in files.values())
        if key not in _SHA_CACHE:
            _SHA_CACHE[key] = checkpoint_sha256(files)
        return _SHA_CACHE[key]

    def params(self) -> dict[str, Any]:
        return {"version": ALGORITHM_VERSION, "config": self.config.name,
                "stitching": self.stitching,
                "driving_option": self.driving_option,
                "driving_multiplier": self.driving_multiplier, "precision": self.precision}

    def networks(self) -> LivePortraitNetworks:
        """The inference networks on the device (loaded and rewritten on first use)."""
        if self._nets is None:
            assert self.checkpoint is not None
            self._nets = self._place(load_checkpoint(self.checkpoint, self.config))
        return self._nets

    def _place(self, nets: LivePortraitNetworks) -> LivePortraitNetworks:
        self._check_device()
        for module in nets.modules().values():
            module.eval().to(self.dtype)
            plain_convolutions(module)
            if self.fold_bn:
                fold_batch_norms(module)
        if self.fold_bn and self.phase_up:
            phase_up_blocks(nets.warping_module)
        dense_motion = nets.warping_module.dense_motion_network
        dense_motion.flush_subnormal = self.flush_subnormal
        if self.fft_mask and fft_supported(dense_motion.mask):
            dense_motion.mask = FFTConv3d(dense_motion.mask)
            side = self.config.frame_size // 2 ** self.config.appearance["num_down_blocks"]
            dense_motion.mask.prepare(side, side, self.dtype)
        if self.dtype == torch.float64 and self.device.type == "cpu":
            depth_chunked_conv3d(nets.warping_module)
        if self.fast_spade:
            use_fast_spade(nets.spade_generator)
        if self.winograd:
            # 256+ channels, measured on the published model, 2 frames, interleaved, in one
            # process: the decoder and warping head's 16 such convolutions by F(4x4) in NCHW
            # made the whole render 1.21x faster at 1 thread and 1.12x at 2 than oneDNN's
            # direct kernel (F(2x2) in channels-last: slower than direct below 256 channels,
            # and 3x slower with 2 threads on a busy machine: many small parallel steps)
            for module in (nets.spade_generator, nets.warping_module):
                nchw_winograd_convolutions(module, tile=4, min_channels=256)
        for module in nets.modules().values():
            module.to(self.device)
        return nets

    def _autocast(self) -> Any:
        if self.precision != "fp16":
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=torch.float16)

    def _info(self, nets: LivePortraitNetworks, images: torch.Tensor) -> KeypointInfo:
        with self._autocast():
            raw = nets.motion_extractor(images)
        return keypoint_info({k: v.to(self.dtype) for k, v in raw.items()})

    def render(self, source: np.ndarray, driving: np.ndarray,
               sink: Callable[[int, torch.Tensor], None] | None = None,
               trace: dict[str, list[np.ndarray]] | None = None) -> np.ndarray | None:
        """Animate at the decoder's resolution: frames (T, 512, 512, 3) in [0, 1] for the
        published model, float32 (float64 with 'fp64'). With `sink`, each batch
        (N, 3, 512, 512) on the device goes to ``sink(start, frames)`` and None is returned.
        With `trace`, intermediate values are appended to it as numpy arrays, per frame:
        'kp_driving' (final keypoints), 'warped', 'occlusion', 'deformation'; per video:
        'feature', 'kp_source', 'source_pitch' ... 'source_kp' (equivalence checks)."""
        size = (self.frame_size, self.frame_size)
        nets = self.networks()
        self._use_threads()
        out: np.ndarray | None = None
        with torch.inference_mode():
            src = self._to_tensor(_resize(source, size, linear=True)[None])
            with self._autocast():
                feature = nets.appearance_feature_extractor(src).to(self.dtype)
            info_s = self._info(nets, src)
            kp_s = source_keypoints(info_s)
            warping = nets.warping_module
            prepared = warping.prepare(feature, kp_s)
            if trace is not None:
                trace["feature"], trace["kp_source"] = [_np(feature[0])], [_np(kp_s[0])]
                for key in ("pitch", "yaw", "roll", "exp", "t", "scale", "kp"):
                    trace[f"source_{key}"] = [_np(getattr(info_s, key)[0])]
            infos = []
            for start in range(0, len(driving), self.batch_size):
                chunk = driving[start:start + self.batch_size]
                infos.append(self._info(nets, self._to_tensor(
                    np.stack([_resize(f, size, linear=True) for f in chunk]))))
            info_d = KeypointInfo(**{k: torch.cat([getattr(i, k) for i in infos])
                                     for k in KeypointInfo.__dataclass_fields__})
            initial = info_d[0]
            multiplier, kp_0 = None, None
            if self.driving_option == "expression-friendly":
                kp_0 = relative_keypoints(info_s, initial, initial)
                multiplier = math.sqrt(hull_volume(kp_s[0].cpu().numpy())) \
                    / math.sqrt(hull_volume(kp_0[0].cpu().numpy()))
            stitcher = nets.stitching_retargeting_module["stitching"]
            for start in range(0, len(driving), self.batch_size):
                info = info_d[start:start + self.batch_size]
                kp_d = relative_keypoints(info_s, info, initial)
                if multiplier is not None:
                    kp_d = (kp_d - kp_0) * multiplier + kp_s
                if self.stitching:
                    kp_d = apply_stitching(stitcher, kp_s, kp_d)
                kp_d = kp_s + (kp_d - kp_s) * self.driving_multiplier
                with self._autocast():
                    result = warping(feature, prepared, kp_d)
                    frames = nets.spade_generator(result["out"]).to(self.dtype)
                if trace is not None:
                    for key, value in (("kp_driving", kp_d), ("warped", result["out"]),
                                       ("occlusion", result["occlusion_map"]),
                                       ("deformation", result["deformation"])):
                        trace.setdefault(key, []).extend(_np(v) for v in value)
                if sink is not None:
                    sink(start, frames)
                    continue
                if out is None:
                    out = np.empty((len(driving), *frames.shape[2:], 3),
                                   np.float64 if self.dtype == torch.float64 else np.float32)
                out[start:start + len(frames)] = frames.permute(0, 2, 3, 1).cpu().numpy()
        return out

    def animate(self, source: np.ndarray, source_landmarks: np.ndarray, driving: np.ndarray,
                driving_landmarks: np.ndarray) -> np.ndarray:
        """Animate `source` with `driving`'s motion: (T, H, W, 3) uint8 at the source's size.
        The landmarks are validated but not used (LivePortrait finds its own keypoints)."""
        source, _, driving, _ = check_inputs(source, source_landmarks, driving,
                                             driving_landmarks)
        h, w = source.shape[:2]
        result = np.empty((len(driving), h, w, 3), dtype=np.uint8)

        def store(start: int, frames: torch.Tensor) -> None:
            # the original's parse_output: clip to [0, 1], x255, truncate to uint8
            frames = frames.float().clamp(0, 1).mul(255).clamp(0, 255).to(torch.uint8)
            for i, frame in enumerate(frames.permute(0, 2, 3, 1).cpu().numpy()):
                result[start + i] = _resize(frame, (h, w))

        self.render(source, driving, sink=store)
        return result


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy() if tensor.dtype == torch.float16 \
        else tensor.detach().cpu().numpy()


__all__ += ["CheckpointError"]

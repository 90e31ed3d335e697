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

from dfmnist.generators.base import Generator, check_inputs
from dfmnist.generators.fomm.winograd import winograd_convolutions
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
    checkpoint_sha256,
    get_config,
    load_checkpoint,
)
from dfmnist.generators.liveportrait.inference import (
    depth_chunked_conv3d,
    fold_batch_norms,
    plain_convolutions,
)
from dfmnist.generators.liveportrait.stitching import apply_stitching

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


class LivePortraitGenerator(Generator):
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
      `fold_bn`, `winograd` (F(2x2, 3x3) for 3x3 convolutions of 128+ channels on the CPU:
      default on for CPU float32/float64, off on CUDA). These do not change the output
      beyond float rounding and are not in `params()`.
    """

    name = "liveportrait"
    float_kernels = True  # float32 kernels decide the bytes: keys carry dfmnist.numerics

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
    ) -> None:
        if (checkpoint is None) == (networks is None):
            raise ValueError("LivePortraitGenerator needs exactly one of checkpoint=<folder of "
                             "the five original .pth files> or networks=")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {precision!r}")
        if driving_option not in DRIVING_OPTIONS:
            raise ValueError(f"driving_option must be one of {', '.join(DRIVING_OPTIONS)}, "
                             f"got {driving_option!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.config = get_config(config)
        self.device = torch.device(device)
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision='fp16' is CUDA autocast, as the original's "
                             f"flag_use_half_precision; got device={device!r}")
        self.precision = precision
        self.dtype = torch.float64 if precision == "fp64" else torch.float32
        self.stitching = bool(stitching)
        self.driving_option = driving_option
        self.driving_multiplier = float(driving_multiplier)
        self.batch_size = int(batch_size)
        self.threads = None if threads is None else int(threads)
        self.fold_bn = bool(fold_bn)
        self.winograd = (self.device.type == "cpu" and precision != "fp16"
                         if winograd is None else bool(winograd))
        self._nets: LivePortraitNetworks | None = None
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        if networks is not None:
            self.weights_sha256 = _state_sha256(networks)
            self._nets = self._place(copy.deepcopy(networks))
            return
        files = checkpoint_files(self.checkpoint)
        key = tuple(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                    for p in files.values())
        if key not in _SHA_CACHE:
            _SHA_CACHE[key] = checkpoint_sha256(files)
        self.weights_sha256 = _SHA_CACHE[key]

    def params(self) -> dict[str, Any]:
        return {"version": ALGORITHM_VERSION, "config": self.config.name,
                "stitching": self.stitching,
                "driving_option": self.driving_option,
                "driving_multiplier": self.driving_multiplier, "precision": self.precision}

    @property
    def frame_size(self) -> int:
        """The networks' square input side in pixels."""
        return self.config.frame_size

    def networks(self) -> LivePortraitNetworks:
        """The inference networks on the device (loaded and rewritten on first use)."""
        if self._nets is None:
            assert self.checkpoint is not None
            self._nets = self._place(load_checkpoint(self.checkpoint, self.config))
        return self._nets

    def _place(self, nets: LivePortraitNetworks) -> LivePortraitNetworks:
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device={str(self.device)!r} requested but CUDA is not available")
        for module in nets.modules().values():
            module.eval().to(self.dtype)
            plain_convolutions(module)
            if self.fold_bn:
                fold_batch_norms(module)
        if self.dtype == torch.float64 and self.device.type == "cpu":
            depth_chunked_conv3d(nets.warping_module)
        if self.winograd:
            for module in (nets.spade_generator, nets.warping_module):
                winograd_convolutions(module, tile=2, min_channels=128)
        for module in nets.modules().values():
            module.to(self.device)
        return nets

    def _autocast(self) -> Any:
        if self.precision != "fp16":
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=torch.float16)

    def _to_tensor(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        return x.permute(0, 3, 1, 2).to(self.dtype).div_(255.0).contiguous()

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
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
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


def _state_sha256(nets: LivePortraitNetworks) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, module in nets.modules().items():
        for key, value in module.state_dict().items():
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{name}.{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


__all__ += ["CheckpointError"]

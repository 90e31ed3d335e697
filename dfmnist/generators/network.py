"""What the generators built on an original's networks share (`fomm`, `tpsmm`,
`liveportrait`): hashing their weights, checking the options every one of them takes
(checkpoint or networks in memory, device, batch size, precision, threads, frame size), and
moving frames between uint8 arrays and tensors on the device.

Each model's `model` module keeps what is its own: its networks, its inference rewrites, its
motion arithmetic and its `params()`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
from torch import nn

from dfmnist.generators.base import Generator
from dfmnist.generators.state_files import CheckpointError
from dfmnist.storage.files import sha256_file

__all__ = ["NetworkGenerator", "config_by_name", "file_sha256", "resize_frame", "state_sha256"]

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime): hashing a published checkpoint
    takes seconds, and a job builds its generator more than once."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def state_sha256(*modules: nn.Module, names: Sequence[str] | None = None) -> str:
    """sha256 over the modules' state dicts (key names, dtypes, shapes and bytes, in order);
    with `names`, each key is prefixed by its module's name."""
    digest = hashlib.sha256()
    for index, module in enumerate(modules):
        prefix = f"{names[index]}." if names is not None else ""
        for key, value in module.state_dict().items():
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{prefix}{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def resize_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` (H, W, 3) uint8 resized to `size` = (height, width): area interpolation when
    shrinking, bicubic when enlarging."""
    h, w = image.shape[:2]
    if (h, w) == size:
        return image
    shrink = size[0] * size[1] < h * w
    return cv2.resize(image, (size[1], size[0]),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def config_by_name(config: Any, configs: Mapping[str, Any], label: str) -> Any:
    """`config` itself when it is one of the model's config objects (the type of `configs`'
    values), else the one it names; `label` names the model in the error."""
    if isinstance(config, type(next(iter(configs.values())))):
        return config
    try:
        return configs[config]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {label} config {config!r}; known: "
                         f"{', '.join(configs)}") from None


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and int(value) < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return None if value is None else int(value)


class NetworkGenerator(Generator):
    """A generator running an original's networks: the options and tensor plumbing they all
    have. Subclasses set `label` (the model's name in messages), call `_setup` from their
    constructor and have a `config` with ``name`` and ``frame_size``."""

    label: ClassVar[str] = "network"
    float_kernels = True  # float32 kernels decide the bytes: keys carry dfmnist.numerics
    config: Any
    channels_last: bool = False

    def _setup(self, *, checkpoint: str | Path | None, networks: object | None,
               sha256: str | None, missing: Callable[[str | Path], str], device: str,
               batch_size: int, precision: str, precisions: Sequence[str],
               threads: int | None, resize: bool) -> None:
        """Check and keep the shared options. `checkpoint` is a file (its sha256, the
        weights' identity, is computed here and compared with `sha256` when given) unless
        `networks`; `missing(path)` is the model's message for a checkpoint that is not there
        (where the original is published)."""
        if networks is not None and (checkpoint is not None or sha256 is not None):
            raise ValueError("pass either checkpoint= or networks=, not both")
        if networks is None and checkpoint is None:
            raise ValueError(f"{type(self).__name__} needs checkpoint=<path>: "
                             + missing("(none given)").split(". ", 1)[1])
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        if self.checkpoint is not None:
            self.weights_sha256 = self._checkpoint_sha256(self.checkpoint, missing)
            if sha256 is not None and sha256.lower() != self.weights_sha256:
                raise CheckpointError(f"checkpoint {self.checkpoint} has sha256 "
                                      f"{self.weights_sha256}, expected {sha256.lower()}")
        if precision not in precisions:
            raise ValueError(f"precision must be one of {', '.join(precisions)}, "
                             f"got {precision!r}")
        self.device = torch.device(device)
        self.batch_size = _positive("batch_size", batch_size)
        self.precision = precision
        #: Dtype of weights and activations (autocast aside).
        self.dtype = torch.float64 if precision == "fp64" else torch.float32
        self.threads = _positive("threads", threads)
        self.resize = bool(resize)

    @staticmethod
    def _checkpoint_sha256(path: Path, missing: Callable[[str | Path], str]) -> str:
        """The weights' identity: the checkpoint file's sha256 (a model whose checkpoint is
        several files overrides this)."""
        if not path.is_file():
            raise FileNotFoundError(missing(path))
        return file_sha256(path)

    @property
    def frame_size(self) -> int:
        """The model's square frame side in pixels."""
        return self.config.frame_size

    def _check_device(self) -> None:
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device={str(self.device)!r} requested but CUDA is not "
                               f"available")

    def _use_threads(self) -> None:
        """``torch.set_num_threads(threads)``: the cores the job really has."""
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def _check_size(self, label: str, shape: tuple[int, ...]) -> None:
        size = self.frame_size
        if not self.resize and tuple(shape[:2]) != (size, size):
            raise ValueError(f"{label} frames are {shape[1]}x{shape[0]} but the {self.label} "
                             f"{self.config.name!r} model works at {size}x{size} "
                             f"(resize=False)")

    def _to_tensor(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> (N, 3, H, W) in [0, 1] on the device, in the working dtype
        and memory format (uint8 -> float is exact; the division rounds once)."""
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        pixels = torch.as_tensor(np.ascontiguousarray(frames), device=self.device)
        return pixels.permute(0, 3, 1, 2).to(dtype=self.dtype, memory_format=layout).div_(255.0)

    def _frames_at(self, driving: np.ndarray, start: int) -> tuple[np.ndarray, torch.Tensor]:
        """The batch of driving frames from `start`: the uint8 chunk, and its tensor at the
        model's frame size."""
        size = (self.frame_size, self.frame_size)
        chunk = driving[start:start + self.batch_size]
        return chunk, self._to_tensor(np.stack([resize_frame(f, size) for f in chunk]))

    def _collector(self, count: int, size: tuple[int, int]
                   ) -> tuple[np.ndarray, Callable[[int, torch.Tensor], None]]:
        """An array for `count` float frames (float64 with 'fp64') and the sink that fills it
        from batches (N, 3, H, W)."""
        out = np.empty((count, *size, 3),
                       np.float64 if self.dtype == torch.float64 else np.float32)

        def sink(start: int, frames: torch.Tensor) -> None:
            out[start:start + len(frames)] = frames.permute(0, 2, 3, 1).cpu().numpy()

        return out, sink

    @staticmethod
    def _quantiser(result: np.ndarray) -> Callable[[int, torch.Tensor], None]:
        """The sink that rounds batches (N, 3, S, S) in [0, 1] to uint8 and resizes them into
        `result` (T, H, W, 3)."""
        size = result.shape[1:3]

        def store(start: int, frames: torch.Tensor) -> None:
            pixels = frames.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
            for offset, frame in enumerate(pixels.permute(0, 2, 3, 1).cpu().numpy()):
                result[start + offset] = resize_frame(frame, size)

        return store

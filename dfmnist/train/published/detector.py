"""Bonettini et al.'s published detectors (polimi-ispl/icpr2020dfdc), loaded strictly.

`load_published(arch, path)` takes one of the published `.pth` files (plain state dicts named
`{arch}_{DFDC|FFPP}_bestval-{sha256}.pth`), checks the file against the sha256 in its name,
maps every tensor onto dfmnist's network (dfmnist.train.published.keys), gives that network
efficientnet_pytorch's arithmetic (dfmnist.train.published.same_padding) and returns it in
eval mode.

Its forward takes what the original's takes, a batch of 224x224 RGB faces as
(pixel / 255 - mean) / std with ImageNet's mean and std (the original's `get_normalizer()`),
and returns the original's output: (N, 1) logits, positive for FAKE. The original's
conventions for scores (`video_logit`, `fuse_logits`) go with it: a video's score is the
mean of its frames' logits, and networks are fused by the mean of their video logits; a
probability is the sigmoid of either.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dfmnist.storage.files import sha256_file
from dfmnist.train.autoatt import EfficientNetAutoAttB4
from dfmnist.train.efficientnet import B4_FEATURES, EfficientNetB4
from dfmnist.train.published.keys import ARCHITECTURES, key_map
from dfmnist.train.published.same_padding import LIBRARY_RULES, match_efficientnet_pytorch
from dfmnist.train.triplet import SiameseTuned

#: The original's `get_normalizer()`: ImageNet's, applied to pixel / 255.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224
#: The padding rule the published weights were made with: they date from April and May 2020,
#: when efficientnet_pytorch 0.6.3 was the current release (0.7.0, with the other rule, came
#: out on 2020-08-26; the original's environment.yml does not pin the library).
DEFAULT_RULE = "0.6"
_NAMED_SHA256 = re.compile(r"-([0-9a-f]{64})\.pth$")


class PublishedDetector(nn.Module):
    """One published network: forward gives the original's (N, 1) logits of FAKE."""

    logit_of = "fake"

    def __init__(self, arch: str, network: nn.Module, sha256: str | None, rule: str) -> None:
        super().__init__()
        self.arch, self.sha256, self.rule = arch, sha256, rule
        self.network = network
        self.input_size = INPUT_SIZE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x).unsqueeze(1)

    @property
    def has_attention(self) -> bool:
        return ARCHITECTURES[self.arch][0]

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The original's `get_attention`: sigmoid maps (N, 1, 28, 28) at 224, not upsampled."""
        if not self.has_attention:
            raise AttributeError(f"{self.arch} has no attention map")
        return self.network.attention_map(x, upsample=False).unsqueeze(1)


def build_published(arch: str, rule: str = DEFAULT_RULE) -> PublishedDetector:
    """A published architecture with random weights and the original's arithmetic."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown published architecture {arch!r} "
                         f"(known: {', '.join(ARCHITECTURES)})")
    if rule not in LIBRARY_RULES:
        raise ValueError(f"unknown padding rule {rule!r} (known: {', '.join(LIBRARY_RULES)})")
    attention, siamese = ARCHITECTURES[arch]
    extractor = EfficientNetAutoAttB4() if attention else EfficientNetB4()
    match_efficientnet_pytorch(extractor.features, rule)
    network = SiameseTuned(extractor, B4_FEATURES) if siamese else extractor
    return PublishedDetector(arch, network, None, rule).eval()


def named_sha256(path: str | Path) -> str | None:
    """The sha256 a published file's name carries (`...-{64 hex}.pth`), None without one."""
    match = _NAMED_SHA256.search(Path(path).name)
    return match.group(1) if match else None


def original_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in an original `.pth`: a plain one (the published files) or a
    training checkpoint's `net` entry (what the original's train_binclass.py saves)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("net"), dict):
        state = state["net"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    return state


def map_state(arch: str, state: dict[str, torch.Tensor], ours: dict[str, torch.Tensor]
              ) -> dict[str, torch.Tensor]:
    """The original's `state` under dfmnist's names, every tensor accounted for: a key the
    map lacks, a key the file lacks, or a shape that differs is an error naming it."""
    keys = key_map(arch)
    extra = sorted(set(state) - set(keys))
    missing = sorted(set(keys) - set(state))
    if extra or missing:
        parts = [f"unexpected key {k}" for k in extra[:3]] + [f"missing key {k}"
                                                             for k in missing[:3]]
        more = len(extra) + len(missing) - len(parts)
        raise ValueError(f"not a {arch} state dict: {'; '.join(parts)}"
                         + (f" (and {more} more)" if more > 0 else ""))
    mapped = {}
    for original, name in keys.items():
        tensor = state[original]
        if tensor.shape != ours[name].shape:
            raise ValueError(f"{arch}: {original} has shape {tuple(tensor.shape)}, "
                             f"{tuple(ours[name].shape)} expected")
        mapped[name] = tensor
    return mapped


def load_published(arch: str, path: str | Path, rule: str = DEFAULT_RULE,
                   check_sha256: bool = True) -> PublishedDetector:
    """A published network from its original `.pth`, loaded strictly, in eval mode.

    `arch` is the original's class name (EfficientNetB4, EfficientNetAutoAttB4,
    EfficientNetB4ST, EfficientNetAutoAttB4ST); the file must carry its sha256 in its name,
    as the published ones do, unless `check_sha256` is False. `rule` chooses
    efficientnet_pytorch's padding rule ("0.6", the one of the weights' time, or "0.7").
    """
    path = Path(path)
    sha256 = sha256_file(path)
    if check_sha256:
        expected = named_sha256(path)
        if expected is None:
            raise ValueError(f"{path.name}: no sha256 in the name (published files end in "
                             f"-{{sha256}}.pth); pass check_sha256=False to load it anyway")
        if sha256 != expected:
            raise ValueError(f"{path}: sha256 {sha256} does not match its name ({expected})")
    model = build_published(arch, rule)
    state = map_state(arch, original_state(path), model.network.state_dict())
    model.network.load_state_dict(state, strict=True)
    model.sha256 = sha256
    return model.eval()


def to_original_state(model: PublishedDetector) -> dict[str, torch.Tensor]:
    """The network's tensors under the original's names: what the original's
    `load_state_dict` takes (strictly), e.g. to score with its code or share a retrained net."""
    ours = model.network.state_dict()
    return {original: ours[name].clone() for original, name in key_map(model.arch).items()}


def video_logit(frame_logits: np.ndarray) -> float:
    """The original's video score: the mean of the frames' logits (sigmoid: P(fake))."""
    return float(np.mean(frame_logits))


def fuse_logits(video_logits: np.ndarray) -> float:
    """The original's network fusion of one video: the mean of the networks' video logits."""
    return float(np.mean(video_logits))

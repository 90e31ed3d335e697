"""The detectors by name, their input size and normalisation, and optional ImageNet weights."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dfmnist.storage.files import sha256_file
from dfmnist.train.autoatt import EfficientNetAutoAttB4
from dfmnist.train.efficientnet import B4_FEATURES, EfficientNetB4
from dfmnist.train.meso import MesoInception4
from dfmnist.train.resnet import ResNetDetector
from dfmnist.train.triplet import SiameseTuned
from dfmnist.train.xception import Xception

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """How a detector is built and fed: input side, normalisation, loss."""

    name: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    loss: str  # "bce" on the logit, or "mse" on its sigmoid (MesoNet's choice)
    pretrainable: bool
    # "direct", or "triplet": embedding first, then the head alone (dfmnist.train.triplet)
    training: str = "direct"


MODELS: dict[str, ModelSpec] = {
    "mesoinception4": ModelSpec("mesoinception4", 256, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0),
                                "mse", False),
    "xception": ModelSpec("xception", 256, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bce", True),
    "resnet50": ModelSpec("resnet50", 224, IMAGENET_MEAN, IMAGENET_STD, "bce", True),
    "resnet101": ModelSpec("resnet101", 224, IMAGENET_MEAN, IMAGENET_STD, "bce", True),
    "resnet152": ModelSpec("resnet152", 224, IMAGENET_MEAN, IMAGENET_STD, "bce", True),
    # Bonettini et al. (ICPR 2020): 224x224 faces, ImageNet normalisation
    "efficientnet_b4": ModelSpec("efficientnet_b4", 224, IMAGENET_MEAN, IMAGENET_STD, "bce", True),
    "autoatt_b4": ModelSpec("autoatt_b4", 224, IMAGENET_MEAN, IMAGENET_STD, "bce", True),
    "efficientnet_b4_st": ModelSpec("efficientnet_b4_st", 224, IMAGENET_MEAN, IMAGENET_STD,
                                    "bce", True, "triplet"),
    "autoatt_b4_st": ModelSpec("autoatt_b4_st", 224, IMAGENET_MEAN, IMAGENET_STD, "bce", True,
                               "triplet"),
}


def build_model(name: str, input_size: int | None = None) -> nn.Module:
    """A freshly initialised detector that outputs one logit per image (sigmoid = P(real)).

    `input_size` matters only to MesoInception-4 (its dense layer); the others pool globally.
    """
    if name == "mesoinception4":
        return MesoInception4(input_size or MODELS[name].input_size)
    if name == "xception":
        return Xception()
    if name in ("efficientnet_b4", "autoatt_b4", "efficientnet_b4_st", "autoatt_b4_st"):
        extractor = EfficientNetAutoAttB4() if name.startswith("autoatt") else EfficientNetB4()
        if MODELS[name].training == "triplet":
            return SiameseTuned(extractor, B4_FEATURES)
        return extractor
    if name in MODELS:
        return ResNetDetector(name)
    raise ValueError(f"unknown detector {name!r} (known: {', '.join(MODELS)})")


class Normalize(nn.Module):
    """Per-channel (x - mean) / std on a batch in [0, 1]."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def load_pretrained(model: nn.Module, path: str | Path, freeze_backbone: bool = False) -> dict:
    """Load a user's local ImageNet state dict (never downloaded) into all but the head.

    With `freeze_backbone` only the new head trains (the paper's Xception setting).
    Returns {path, sha256, missing} for the run record.
    """
    if not hasattr(model, "load_imagenet"):
        raise ValueError(f"{type(model).__name__} has no ImageNet weights to load")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    missing = model.load_imagenet(state)
    body = [k for k in missing if not k.startswith(getattr(model, "FRESH", ("fc.",)))]
    if body:
        raise ValueError(f"{path}: {len(body)} parameters of this architecture are not in the "
                         f"file (e.g. {', '.join(body[:3])})")
    if freeze_backbone:
        head_params = {id(p) for p in model.head().parameters()}
        for p in model.parameters():
            p.requires_grad = id(p) in head_params
    log.info("loaded ImageNet weights from %s (head left initial)", path)
    return {"path": str(path), "sha256": sha256_file(path), "missing": missing}

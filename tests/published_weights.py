"""Published-format detectors with seeded random weights, for tests (no weights can be fetched).

Random weights as torch initialises them make a 32-block network's output nearly constant, so
a comparison would prove little: batch norms get random scales and shifts, and running
statistics measured on real faces, so every tensor moves the logits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from dfmnist.storage.files import sha256_file
from dfmnist.train.published.detector import (
    MEAN,
    STD,
    PublishedDetector,
    build_published,
    to_original_state,
)

ARCHS = ("EfficientNetB4", "EfficientNetAutoAttB4", "EfficientNetB4ST", "EfficientNetAutoAttB4ST")


def face_batch(astronaut: np.ndarray, grace_hopper: np.ndarray) -> torch.Tensor:
    """Two real faces (the conftest photos), 224x224, normalised as the original's
    get_normalizer(): (pixel / 255 - mean) / std, float32 (2, 3, 224, 224)."""
    import cv2

    crops = [cv2.resize(astronaut[30:330, 90:390], (224, 224), interpolation=cv2.INTER_AREA),
             cv2.resize(grace_hopper[40:440, 60:460], (224, 224), interpolation=cv2.INTER_AREA)]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def random_published(arch: str, calibration: torch.Tensor, rule: str = "0.6",
                     seed: int = 0) -> PublishedDetector:
    """A published architecture with seeded random weights and batch norms calibrated on
    `calibration` (with its mirror image). A random 32-block network amplifies, block after
    block, whatever its norms were not calibrated on (white noise after calibration on faces
    reaches logits of 1e5), so calibrate on the kind of input it will score."""
    torch.manual_seed(seed)
    model = build_published(arch, rule)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0.0, 0.1)
            norm.reset_running_stats()
            norm.momentum = None  # cumulative: the statistics of the calibration batch
        for block in model.modules():
            if type(block).__name__ == "MBConv":  # a residual branch's last norm starts small,
                last = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)][-1]
                last.weight.uniform_(0.05, 0.25)  # as in trained nets: no blow-up over depth
        for name, p in model.named_parameters():
            if "head_layers.1" in name or "classifier.1" in name:
                p.normal_(0.0, 0.05)
        model.eval()
        for norm in norms:
            norm.train()
        model(torch.cat([calibration, calibration.flip(3)]))
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


def save_original(model: PublishedDetector, folder: Path, dataset: str = "DFDC") -> Path:
    """The model as the original publishes it: a plain state dict in its layout, named
    `{arch}_{dataset}_bestval-{sha256}.pth`."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{model.arch}.tmp"
    torch.save(to_original_state(model), tmp)
    path = folder / f"{model.arch}_{dataset}_bestval-{sha256_file(tmp)}.pth"
    tmp.rename(path)
    return path

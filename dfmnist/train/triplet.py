"""Siamese (triplet) training of Bonettini et al. (ICPR 2020), the `*_st` detectors.

Two stages. First the feature extractor learns an embedding with the triplet margin loss on
(anchor, positive, negative) triplets, alternately (fake, fake, real) and (real, real, fake), so
that frames of one class lie closer to each other than to the other class. Then the extractor
is frozen and only a new head (batch norm over the 1792-d embedding, one linear logit) learns to
classify, with the ordinary detector loss.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

#: The triplet loss margin (torch's TripletMarginLoss default, as the original code uses it).
MARGIN = 1.0


class SiameseTuned(nn.Module):
    """A feature extractor (with `embed`) under a batch-norm + linear head.

    After `freeze_extractor()` the extractor stays in eval mode (fixed batch-norm statistics, no
    dropout) and gets no gradients: only the head trains.
    """

    def __init__(self, extractor: nn.Module, width: int) -> None:
        super().__init__()
        self.extractor = extractor
        self.head_layers = nn.Sequential(nn.BatchNorm1d(width), nn.Linear(width, 1))
        self.frozen = False
        self.input_size = extractor.input_size
        #: new in this detector: the head, and the extractor's own (unused here)
        self.FRESH = ("head_layers.", *(f"extractor.{p}" for p in extractor.FRESH))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.extractor.embed(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_layers(self.embed(x)).squeeze(1)

    def freeze_extractor(self) -> None:
        self.frozen = True
        for p in self.extractor.parameters():
            p.requires_grad = False
        self.train(self.training)

    def train(self, mode: bool = True) -> SiameseTuned:
        super().train(mode)
        if self.frozen:
            self.extractor.eval()
        return self

    def head(self) -> nn.Module:
        return self.head_layers

    def cam_layer(self) -> nn.Module:
        return self.extractor.cam_layer()

    def attention_map(self, x: torch.Tensor, upsample: bool = True) -> torch.Tensor:
        if not hasattr(self.extractor, "attention_map"):
            raise AttributeError(f"{type(self.extractor).__name__} has no attention map")
        return self.extractor.attention_map(x, upsample)

    def load_imagenet(self, state: dict) -> list[str]:
        """The extractor's ImageNet weights; returns the keys left initial (prefixed)."""
        missing = self.extractor.load_imagenet(state)
        return sorted([f"extractor.{k}" for k in missing]
                      + [f"head_layers.{k}" for k in self.head_layers.state_dict()])


def triplet_indices(targets: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """Triplets over shuffled items: (fake, fake, real), then (real, real, fake), alternately,
    each item used at most once, until a class runs out. Target 1 is real, 0 fake."""
    targets = np.asarray(targets)
    fakes = list(rng.permutation(np.flatnonzero(targets == 0)))
    reals = list(rng.permutation(np.flatnonzero(targets == 1)))
    out: list[tuple[int, int, int]] = []
    while True:
        same, other = (fakes, reals) if len(out) % 2 == 0 else (reals, fakes)
        if len(same) < 2 or not other:
            break
        out.append((int(same.pop()), int(same.pop()), int(other.pop())))
    return out


def dataset_targets(dataset) -> np.ndarray:
    """Targets of a FrameDataset (or a MixedQuality of them) without reading any image."""
    inner = dataset.datasets[0] if hasattr(dataset, "datasets") else dataset
    return np.array([t for _, t, _ in inner.items], dtype=int)


def triplet_loss(embed, images: list[torch.Tensor], margin: float = MARGIN) -> torch.Tensor:
    anchor, positive, negative = (embed(x) for x in images)
    return nn.functional.triplet_margin_loss(anchor, positive, negative, margin=margin)


def train_triplet_stage(model: nn.Module, dataset, epochs: int, batch_size: int, lr: float,
                        betas: tuple[float, float], seed: int, device: torch.device,
                        to_batch, margin: float = MARGIN) -> list[dict]:
    """Train `model.embed` (model: normalisation + extractor, with `embed`) with the triplet
    loss; one row per epoch (mean loss, triplets, seconds)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the triplet stage has nothing to train: the extractor is frozen "
                         "(remove this detector from train.freeze_backbone)")
    optimizer = torch.optim.Adam(params, lr=lr, betas=tuple(betas))
    rng = np.random.default_rng(seed)
    targets = dataset_targets(dataset)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        triplets = triplet_indices(targets, rng)
        if not triplets:
            raise ValueError("triplet training needs at least two frames of each class")
        start, total, seen = time.perf_counter(), 0.0, 0
        for i in range(0, len(triplets), batch_size):
            chunk = triplets[i:i + batch_size]
            if len(chunk) < 2:
                continue  # batch norm cannot train on a single image per branch
            images = [to_batch(torch.stack([dataset[t[k]][0] for t in chunk]), device)
                      for k in range(3)]
            loss = triplet_loss(model.embed, images, margin)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(chunk)
            seen += len(chunk)
        seconds = time.perf_counter() - start
        row = {"epoch": epoch, "triplet_loss": total / seen if seen else math.nan,
               "triplets": seen, "seconds": seconds}
        history.append(row)
        log.info("triplet epoch %d/%d: loss %.4f over %d triplets", epoch, epochs,
                 row["triplet_loss"], seen)
    return history

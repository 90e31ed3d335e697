"""Training with the paper's recipe (Adam, poly-decayed learning rate, best epoch on validation)
and prediction."""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dfmnist.gpus import resolve_device
from dfmnist.train.metrics import accuracy
from dfmnist.train.models import MODELS, Normalize, build_model, load_pretrained
from dfmnist.train.triplet import train_triplet_stage

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """The training recipe. Defaults are the paper's: Adam, lr 2e-4, poly decay, 50 epochs,
    batch 64. The paper prints beta_1 = 0.999 and beta_2 = 0.9; `betas` defaults to Adam's usual
    (0.9, 0.999), of which that is most likely a transposition."""

    epochs: int = 50
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    poly_power: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    freeze_backbone: bool = False  # with ImageNet weights: train only the head (paper: Xception)
    # set only where used, so that other detectors' checkpoint keys stay as they were:
    # input_size (a side other than the model's own), triplet_epochs (the `*_st` detectors)
    extra: dict = field(default_factory=dict)

    def key_parts(self) -> dict:
        """What changes the trained weights (not the device or the number of loader workers)."""
        return asdict(self)


def _batch(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    # channels-last makes the small-channel convolutions of MesoInception several times faster
    # on CPU (and suits tensor cores on GPU); clips (N, T, C, H, W) stay as they are
    if images.dim() != 4:
        return images.to(device)
    return images.to(device).contiguous(memory_format=torch.channels_last)


def poly_lambda(total_steps: int, power: float):
    """Learning-rate factor (1 - step / total) ** power, the poly schedule."""
    return lambda step: max(0.0, 1.0 - step / max(1, total_steps)) ** power


def detector_loss(kind: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """`bce` on one logit, `mse` on its sigmoid (MesoNet), or `ce`: cross-entropy over class
    logits (N, C) against class indices (model attribution)."""
    if kind == "ce":
        return nn.functional.cross_entropy(logits, targets.long())
    if kind == "mse":
        return nn.functional.mse_loss(torch.sigmoid(logits), targets.float())
    return nn.functional.binary_cross_entropy_with_logits(logits, targets.float())


def output_scores(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """P(real) per item for one-logit detectors, class probabilities (N, C) for `ce`."""
    return torch.softmax(logits, dim=1) if kind == "ce" else torch.sigmoid(logits)


def score_accuracy(kind: str, scores: np.ndarray, targets: np.ndarray) -> float:
    """Accuracy of `output_scores`: thresholded P(real), or the most probable class."""
    if kind != "ce":
        return accuracy(scores, targets)
    if len(targets) == 0:
        return math.nan
    return float(np.mean(np.argmax(scores, axis=1) == np.asarray(targets)))


class Detector(nn.Module):
    """Normalisation followed by the detector: the module that is trained and saved."""

    def __init__(self, name: str, input_size: int | None = None) -> None:
        super().__init__()
        spec = MODELS[name]
        self.name = name
        self.input_size = int(input_size or spec.input_size)
        self.normalize = Normalize(spec.mean, spec.std)
        self.net = build_model(name, self.input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The network's pooled embedding (detectors that have one: EfficientNet family)."""
        return self.net.embed(self.normalize(x))

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """(N, H, W) attention in [0, 1] (detectors with an attention branch)."""
        return self.net.attention_map(self.normalize(x))


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, batch_size: int = 64,
            device: torch.device | str = "cpu", loss_kind: str = "bce") -> np.ndarray:
    """P(real) for every item of `dataset`, in order (class probabilities (N, C) for `ce`)."""
    model.eval().to(device, memory_format=torch.channels_last)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    out = [output_scores(loss_kind, model(_batch(images, device))).cpu()
           for images, _, _ in loader]
    return torch.cat(out).numpy() if out else np.zeros(0)


def _evaluate(model: nn.Module, loss_kind: str, dataset: Dataset, batch_size: int,
              device: torch.device) -> tuple[float, float]:
    if len(dataset) == 0:
        return math.nan, math.nan
    model.eval()
    losses, scores, targets = [], [], []
    with torch.no_grad():
        for images, target, _ in DataLoader(dataset, batch_size=batch_size):
            logits = model(_batch(images, device))
            y = target.to(device)
            losses.append(float(detector_loss(loss_kind, logits, y)) * len(y))
            scores.append(output_scores(loss_kind, logits).cpu().numpy())
            targets.append(target.numpy())
    s, t = np.concatenate(scores), np.concatenate(targets)
    return sum(losses) / len(t), score_accuracy(loss_kind, s, t)


def train_detector(name: str, train: Dataset, val: Dataset, settings: TrainSettings,
                   device: str = "cpu", pretrained: str | None = None,
                   ) -> tuple[Detector, list[dict], dict]:
    """Train `name` on `train`; keep the epoch with the best validation accuracy.

    Ties go to the lower validation loss; with an empty validation set the last epoch is kept.
    Returns the model (best weights loaded), one history row per epoch, and a run record.
    """
    dev = torch.device(resolve_device(device))
    torch.manual_seed(settings.seed)
    model = Detector(name, settings.extra.get("input_size"))
    record = {"model": name, "pretrained": None, "device": str(dev),
              "input_size": model.input_size}
    if pretrained:
        record["pretrained"] = load_pretrained(model.net, pretrained, settings.freeze_backbone)
    model.to(dev, memory_format=torch.channels_last)
    if MODELS[name].training == "triplet":
        record["triplet"] = train_triplet_stage(
            model, train, int(settings.extra.get("triplet_epochs", settings.epochs)),
            settings.batch_size, settings.lr, settings.betas, settings.seed, dev, _batch)
        model.net.freeze_extractor()
    history, best_epoch = fit(model, MODELS[name].loss, train, val, settings, dev, name)
    record.update(best_epoch=best_epoch, epochs=settings.epochs)
    return model, history, record


def fit(model: nn.Module, loss_kind: str, train: Dataset, val: Dataset,
        settings: TrainSettings, dev: torch.device, name: str = "model",
        epoch_optimizer: Callable[[list[nn.Parameter], int], torch.optim.Optimizer] | None
        = None) -> tuple[list[dict], int]:
    """The recipe's epochs over `train` ((input, target, video) items); the weights of the epoch
    with the best validation accuracy are loaded into `model` at the end.

    Ties go to the lower validation loss; with an empty validation set the last epoch is kept.
    `epoch_optimizer(params, epoch)`, when given, replaces Adam and the poly decay: it builds
    each (1-based) epoch's optimiser afresh, at that epoch's rate (a published recipe that
    steps per epoch and restarts its optimiser, dfmnist.train.dfdm_recipe).
    Returns one history row per epoch and the best epoch.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(train, batch_size=settings.batch_size, shuffle=True, generator=generator,
                        drop_last=len(train) > settings.batch_size)
    scheduler = None
    if epoch_optimizer is None:
        optimizer = torch.optim.Adam(params, lr=settings.lr, betas=tuple(settings.betas),
                                     weight_decay=settings.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, poly_lambda(settings.epochs * len(loader), settings.poly_power))
    history: list[dict] = []
    best: tuple[float, float] | None = None
    best_state = copy.deepcopy(model.state_dict())
    best_epoch = 0
    for epoch in range(1, settings.epochs + 1):
        if epoch_optimizer is not None:
            optimizer = epoch_optimizer(params, epoch)
        model.train()
        start, seen, total = time.perf_counter(), 0, 0.0
        for images, target, _ in loader:
            if len(target) < 2 and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                       for m in model.modules()):
                continue  # batch norm cannot train on a single image
            logits = model(_batch(images, dev))
            loss = detector_loss(loss_kind, logits, target.to(dev))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            seen += len(target)
            total += loss.item() * len(target)
        seconds = time.perf_counter() - start
        val_loss, val_acc = _evaluate(model, loss_kind, val, settings.batch_size, dev)
        lr = (scheduler.get_last_lr()[0] if scheduler is not None
              else optimizer.param_groups[0]["lr"])
        row = {"epoch": epoch, "train_loss": total / max(1, seen), "val_loss": val_loss,
               "val_acc": val_acc, "lr": lr, "seconds": seconds,
               "images_per_s": seen / seconds if seconds else math.nan}
        history.append(row)
        log.info("%s epoch %d/%d: train loss %.4f, val loss %.4f, val acc %.3f, %.1f img/s",
                 name, epoch, settings.epochs, row["train_loss"], val_loss, val_acc,
                 row["images_per_s"])
        score = (-math.inf if math.isnan(val_acc) else val_acc,
                 -math.inf if math.isnan(val_loss) else -val_loss)
        if best is None or score > best or math.isnan(val_acc):
            best, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history, best_epoch

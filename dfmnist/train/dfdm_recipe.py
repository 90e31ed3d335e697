"""The training recipe of DMA-STA's authors, `train.attribution.recipe: authors`.

Every constant below is read from their release, github.com/shanface33/Deepfake_Model_Attribution
(files `config.py`, `main.py`, `data/dataset.py`; line numbers of its commit ebf81a1). The
default recipe, `dfmnist`, is the project's own loop (dfmnist.train.loop.fit: Adam, poly decay,
ImageNet normalisation, frames resized to the input side, no flips).

Where the release's code and the recipe one would read off its configuration disagree, the
code wins, because it is what trained the published model:
- `config.py` sets `lr = 0.01`, but `main.py`'s `train()` builds its only parameter group at
  `features_lr = lr * 0.1` (lines 33-38), so the weights move at 1e-3;
- the steps at `lr_freq_list = [40, 80, 120]` are floored at 1e-4 twice (`lr = max(lr,
  0.0001)`, line 184, and `features_lr` at 0.0001, lines 34-35): 1e-3 up to epoch 39, 1e-4
  from epoch 40 on; the steps at 80 and 120 change nothing;
- `train()` builds a new SGD every epoch (line 36), so its momentum starts afresh each epoch.

What both recipes share with the release: the classes are the face-swap models alone
(`data/dataset.py` line 29, `class2idx` of df1-df5, no real; dfmnist.train.attribution
excludes reals), 10-frame clips starting at a random frame in training (`main.py` line 158,
`data/dataset.py` line 65) and batches of 20 (`config.py` `train_bs`), the schema's defaults.

Two departures: the test clip is the video's middle one, for reproducible tables (the
release draws a random start for test clips too, `data/dataset.py` line 65), and a training
clip's flip is drawn once for the whole clip, as the release's comment means (`data/dataset.py`
lines 70-73 reseed Python's `random` per frame, which torchvision's flip no longer reads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.train.data import FrameDataset
from dfmnist.train.experiments import frame_size

RECIPES = ("dfmnist", "authors")
#: DFDM's frame statistics: `transforms.Normalize(mean=(0.643, 0.466, 0.387), std=(0.259, 0.220,
#: 0.203))` in both the training and the test transforms, `main.py` lines 156 and 169.
DFDM_MEAN = (0.643, 0.466, 0.387)
DFDM_STD = (0.259, 0.220, 0.203)
#: `optim.SGD(..., momentum=0.9, weight_decay=args.weight_decay)`, `main.py` line 40; the
#: `--weight_decay` default is 5e-4, line 129.
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
#: `config.py`: `lr = 0.01`, `lr_scale = 0.1`, `lr_freq_list = [40, 80, 120]`; `main.py`
#: line 33: the parameters train at `features_lr = lr * 0.1`; lines 34-35 and 184: the floor.
BASE_LR = 0.01
FEATURES_SCALE = 0.1
LR_SCALE = 0.1
MILESTONES = (40, 80, 120)
LR_FLOOR = 1e-4
#: `config.py`: `res_plus = 256` (`transforms.Resize`), `res = 224` (`transforms.CenterCrop`).
RESIZE, CROP = 256, 224
# The epochs stay `train.attribution.epochs`: the release runs 299 (`config.py` `max_epoches =
# 300`, `main.py` line 181: `range(1, args.max_epoches)`), far beyond a demo's budget.
#: The attribution table's note on each recipe (dfmnist.train.attribution.attribution_notes).
RECIPE_NOTES = {
    "dfmnist": "recipe `dfmnist` (`train.attribution.recipe`): this project's loop, Adam with "
               "poly decay, ImageNet normalisation, frames resized to the input side, no flips "
               "(DMA-STA's release trains otherwise: `recipe: authors`)",
    "authors": "recipe `authors`, DMA-STA's release: SGD (momentum 0.9, weight decay 5e-4) at "
               "1e-3, 1e-4 from epoch 40, restarted each epoch; DFDM's normalisation; frames "
               "resized to 256/224 of the input side, the centre square, mirrored at random in "
               "training; the release keeps the epoch best on its test set, here on validation",
}


def authors_lr(epoch: int) -> float:
    """The rate the weights train at in (1-based) `epoch`, by `main.py`'s own arithmetic:
    `lr` steps by `lr_scale` at each milestone, floored at 1e-4 (lines 182-184), then
    `train()` trains at `lr * 0.1`, again floored at 1e-4 (lines 33-35)."""
    lr = BASE_LR
    for milestone in MILESTONES:
        if epoch >= milestone:
            lr = max(lr * LR_SCALE, LR_FLOOR)
    return max(lr * FEATURES_SCALE, LR_FLOOR)


def authors_optimizer(params: list[nn.Parameter], epoch: int) -> torch.optim.SGD:
    """`epoch`'s optimiser: a new SGD each epoch, as `main.py`'s `train()` builds (line 36), so
    the momentum buffers do not carry over from one epoch to the next."""
    return torch.optim.SGD(params, lr=authors_lr(epoch), momentum=MOMENTUM,
                           weight_decay=WEIGHT_DECAY)


def resize_side(input_size: int) -> int:
    """The side frames are resized to before the centre crop: the release's 256 for its 224,
    in proportion for other input sizes (a demo's 56 reads 64-pixel frames)."""
    return round(input_size * RESIZE / CROP)


class AuthorsTransform:
    """A frame (3, S, S) in [0, 1] -> resized to `resize_side(input_size)`, the centre
    `input_size` square, and, with `flip`, mirrored left-right with probability 1/2.

    The release crops the centre in training as well as at test (`transforms.CenterCrop` in
    both, `main.py` lines 154 and 167) and flips only in training (line 153; commented out
    at test, line 166). Flips draw from a seeded generator: a rerun sees the same flips."""

    def __init__(self, input_size: int, flip: bool = False, seed: int = 0) -> None:
        self.input_size, self.resize = int(input_size), resize_side(input_size)
        self.flip = flip
        self.rng = np.random.default_rng(seed)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] != self.resize or image.shape[-2] != self.resize:
            image = F.interpolate(image[None], size=(self.resize, self.resize), mode="bilinear",
                                  antialias=True, align_corners=False)[0]
        top = (self.resize - self.input_size) // 2
        image = image[..., top:top + self.input_size, top:top + self.input_size]
        if self.flip and self.rng.random() < 0.5:
            image = image.flip(-1)
        return image


def authors_frames(table: pl.DataFrame, sizes: list[int], root: Path, input_size: int,
                   flip: bool = False, seed: int = 0) -> FrameDataset:
    """The frames of `table` under the authors' transform, read at the resize side when it
    was extracted (256 for 224: `targets.frames.sizes` writes it by default), else the
    nearest larger size."""
    side = resize_side(input_size)
    return FrameDataset(table, size=frame_size("resnet50", sizes, side), root=root,
                        transform=AuthorsTransform(input_size, flip, seed))

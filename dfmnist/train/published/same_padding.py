"""efficientnet_pytorch's arithmetic on torchvision's EfficientNet-B4 layout.

Bonettini et al.'s published detectors were trained on lukemelas' efficientnet_pytorch, which
differs from torchvision's B4 in two ways that change every logit (by 0.1 to 8 on the same
weights):

- batch norm eps 1e-3 (torchvision's B4: 1e-5);
- TensorFlow's static "same" padding: a convolution of kernel k and stride s on an input of
  side i pads `max((ceil(i / s) - 1) * s + k - i, 0)` pixels in all, half of it (rounded down)
  before and the rest after, computed once when the network is built for its nominal image
  size (380 for B4) and never for the actual input. Stride-1 convolutions come out
  symmetric, as torchvision pads them; stride-2 ones may pad one pixel more after.

The library changed which input side each convolution assumes in release 0.7.0
(2020-08-26): up to 0.6.3 every convolution is sized as if its input were the full image;
from 0.7.0 each block gets the side its input has after the strides before it. The two
differ on one convolution of B4 (block 6's depthwise: (1, 2) against (2, 2)).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

#: The BatchNorm2d eps of efficientnet_pytorch (TensorFlow's 1e-3).
BATCH_NORM_EPS = 1e-3
#: The side efficientnet_pytorch builds B4 for (its `image_size`), whatever it is run on.
B4_IMAGE_SIZE = 380
#: The library releases whose padding rule differs: sizing every convolution as the image
#: ("0.6", up to 0.6.3) or as its own input ("0.7", from 0.7.0).
LIBRARY_RULES = ("0.6", "0.7")


def same_pads(kernel: int, stride: int, side: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's "same" for one axis of side `side`."""
    total = max((math.ceil(side / stride) - 1) * stride + kernel - side, 0)
    return total // 2, total - total // 2


class StaticSamePadConv2d(nn.Conv2d):
    """A Conv2d that zero-pads its input by fixed (left, right, top, bottom) amounts first.

    Its parameters are the Conv2d's own (`weight`, `bias`), so state dict keys do not change.
    """

    def __init__(self, conv: nn.Conv2d, pads: tuple[int, int, int, int]) -> None:
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size,
                         stride=conv.stride, padding=0, dilation=conv.dilation,
                         groups=conv.groups, bias=conv.bias is not None,
                         device=conv.weight.device, dtype=conv.weight.dtype)
        self.pads = pads
        with torch.no_grad():
            self.weight.copy_(conv.weight)
            if conv.bias is not None:
                self.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}"


def _spatial_convs(features: nn.Sequential) -> list[tuple[nn.Module, str, nn.Conv2d, int]]:
    """(parent, attribute, conv, side of its input under `rule` "0.7") of every k > 1
    convolution of torchvision's B4 `features`, in order, with sides from B4_IMAGE_SIZE."""
    found = []
    side = B4_IMAGE_SIZE
    for module in features.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.Conv2d) and child.kernel_size[0] > 1:
                found.append((module, name, child, side))
                side = math.ceil(side / child.stride[0])
    return found


def match_efficientnet_pytorch(features: nn.Sequential, rule: str = "0.6") -> list[tuple]:
    """Give torchvision B4 `features` efficientnet_pytorch's eps and padding, in place.

    `rule` is the library release whose padding to follow (LIBRARY_RULES). Returns one
    (convolution index, kernel, stride, pads) per convolution that now pads asymmetrically.
    """
    if rule not in LIBRARY_RULES:
        raise ValueError(f"unknown efficientnet_pytorch padding rule {rule!r} "
                         f"(known: {', '.join(LIBRARY_RULES)})")
    for module in features.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = BATCH_NORM_EPS
    changed = []
    for index, (parent, name, conv, side) in enumerate(_spatial_convs(features)):
        kernel, stride = conv.kernel_size[0], conv.stride[0]
        before, after = same_pads(kernel, stride, B4_IMAGE_SIZE if rule == "0.6" else side)
        if (before, after) == (conv.padding[0], conv.padding[0]):
            continue  # symmetric, as torchvision already pads
        pads = (before, after, before, after)
        setattr(parent, name, StaticSamePadConv2d(conv, pads))
        changed.append((index, kernel, stride, pads))
    return changed

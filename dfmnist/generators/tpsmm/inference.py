"""Inference-only rewrites of the TPSMM networks: the same function with less work.

* `fold_resnet_batch_norms`: the eval-mode batch norms of the two ResNet-18s (keypoint
  detector, background predictor) each follow a convolution and become part of its weights
  (computed in float64, rounded once).
* `TransposedUpBlock`: "nearest 2x upsampling, then a 3x3 convolution" (every up block of
  the inpainting network, the hourglass and the occlusion branch) is one stride-2 transposed
  convolution with a 4x4 kernel on the low-resolution input. Upsampling repeats each input
  row twice, so output row ``2m`` reads input rows ``m-1, m, m`` through the 3x3 taps
  ``k0, k1, k2`` and row ``2m+1`` rows ``m, m, m+1``; a transposed convolution (stride 2,
  padding 1) reads rows ``m-1, m`` for ``2m`` through its taps 3, 1 and rows ``m, m+1`` for
  ``2m+1`` through taps 2, 0, so its kernel along each axis is ``(k2, k1+k2, k0+k1, k0)``.
  4 instead of 9 multiply-adds per upsampled pixel and channel pair, no upsampled tensor.
  The instance norm and ReLU that follow are kept (they cannot be folded).
* Row-split 7x7 convolutions with few outputs (the occlusion heads, the final layer) and
  optionally Winograd F(m x m, 3 x 3) for wide 3x3 convolutions, both from
  `dfmnist.generators.fomm`. Winograd is off by default here: measured on one core of an
  AVX-512 Xeon it makes the residual blocks' convolutions 20-25% faster alone, but it
  returns channels-last tensors, which the instance norms must transpose back to NCHW (a
  slow copy here), so the whole model was no faster; with two threads on a busy machine its
  many small operations were far slower. For the same reason the networks stay in NCHW
  memory by default (channels-last was 10-15% slower).

Every rewrite is exact in real arithmetic: in float64 the rewritten networks agree with the
plain ones to ~1e-13 (tests/test_tpsmm.py). The rewritten modules no longer have the
checkpoint's state-dict layout; `TpsmmGenerator` applies them to its own copies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from dfmnist.generators.fomm.blocks import ConvBlock
from dfmnist.generators.fomm.inference import replace_modules, row_split_convolutions
from dfmnist.generators.fomm.winograd import winograd_convolutions

__all__ = ["TransposedUpBlock", "fold_resnet_batch_norms", "speed_up", "transposed_upsampling"]

#: How the 3 taps of a 3x3 kernel along one axis combine into the 4 taps of the transposed
#: convolution (see the module docstring): rows are the new taps, columns k0, k1, k2.
_UP_TAPS = ((0, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 0))


class TransposedUpBlock(nn.Module):
    """An up `ConvBlock` (nearest 2x, 3x3 convolution with padding 1, norm, ReLU) with the
    upsampling and convolution done as one stride-2 transposed convolution."""

    def __init__(self, block: ConvBlock) -> None:
        super().__init__()
        conv = block.conv
        if block.resample != "up" or tuple(conv.kernel_size) != (3, 3) \
                or tuple(conv.padding) != (1, 1) or tuple(conv.stride) != (1, 1) \
                or conv.groups != 1:
            raise ValueError("TransposedUpBlock needs an up block with a 3x3 convolution, "
                             "padding 1, stride 1, no groups")
        with torch.no_grad():  # tap sums in float64, rounded once
            taps = torch.tensor(_UP_TAPS, dtype=torch.float64, device=conv.weight.device)
            weight = torch.einsum("uk,oikl,vl->iouv", taps, conv.weight.double(), taps)
        self.weight = nn.Parameter(weight.to(conv.weight.dtype).contiguous(),
                                   requires_grad=False)
        self.bias = conv.bias
        self.norm = block.norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv_transpose2d(x, self.weight, self.bias, stride=2, padding=1)
        return F.relu(self.norm(x), inplace=True)


def transposed_upsampling(module: nn.Module) -> int:
    """Replace every up `ConvBlock` with a plain 3x3 convolution in `module` by its
    `TransposedUpBlock`, in place; returns how many."""
    return replace_modules(module, lambda child: TransposedUpBlock(child)
                           if isinstance(child, ConvBlock) and child.resample == "up"
                           and tuple(child.conv.kernel_size) == (3, 3) else None)


def _fused(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Conv2d:
    """`conv` followed by the eval-mode `norm` as one convolution, in `conv`'s dtype."""
    dtype = conv.weight.dtype
    fused = fuse_conv_bn_eval(conv.double().eval(), norm.double().eval())
    return fused.to(dtype)


def fold_resnet_batch_norms(resnet: nn.Module) -> int:
    """Fold every batch norm of a torchvision ResNet made of `BasicBlock`s into the
    convolution before it, in place (the norms become identities); returns how many."""
    from torchvision.models.resnet import BasicBlock

    pairs = [(resnet, "conv1", "bn1")]
    for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
        for block in layer:
            if not isinstance(block, BasicBlock):
                raise TypeError(f"expected BasicBlocks, got {type(block).__name__}")
            pairs += [(block, "conv1", "bn1"), (block, "conv2", "bn2")]
            if block.downsample is not None:
                pairs.append((block.downsample, "0", "1"))
    folded = 0
    for parent, conv_name, norm_name in pairs:
        norm = getattr(parent, norm_name) if hasattr(parent, norm_name) \
            else parent[int(norm_name)]
        if not isinstance(norm, nn.BatchNorm2d):
            continue
        conv = getattr(parent, conv_name) if hasattr(parent, conv_name) \
            else parent[int(conv_name)]
        with torch.no_grad():
            fused = _fused(conv, norm)
        if isinstance(parent, nn.Sequential):
            parent[int(conv_name)], parent[int(norm_name)] = fused, nn.Identity()
        else:
            setattr(parent, conv_name, fused)
            setattr(parent, norm_name, nn.Identity())
        folded += 1
    return folded


def speed_up(module: nn.Module, *, fold_bn: bool, transposed_up: bool, winograd: int,
             winograd_min_channels: int, row_split: bool) -> nn.Module:
    """Apply the chosen rewrites to `module` (one network) in place; returns it."""
    if transposed_up:
        transposed_upsampling(module)
    if fold_bn:
        from torchvision.models.resnet import ResNet

        for child in list(module.modules()):
            if isinstance(child, ResNet):
                fold_resnet_batch_norms(child)
    if row_split:
        row_split_convolutions(module)
    if winograd:
        winograd_convolutions(module, tile=winograd, min_channels=winograd_min_channels)
    return module

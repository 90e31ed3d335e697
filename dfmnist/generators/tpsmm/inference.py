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
  4 instead of 9 multiply-adds per upsampled pixel and channel pair, no upsampled tensor;
  computed as its four phases (a 2x2 convolution each, see `TransposedUpBlock`). The
  instance norm and ReLU that follow are kept (they cannot be folded).
* Row-split 7x7 convolutions with few outputs (the occlusion heads, the final layer), from
  `dfmnist.generators.fomm`.
* Winograd F(m x m, 3 x 3) for the residual blocks' convolutions
  (`dfmnist.generators.tpsmm.winograd_nchw`): the inpainting decoder's twelve 3x3
  convolutions at 256-512 channels (32x32 to 128x128) were ~57% of a frame on one core, at
  the core's peak in oneDNN, so only fewer multiply-adds make them faster. FOMM's
  channels-last `WinogradConv2d` did not pay off here (its output had to be copied back to
  NCHW for the instance norms, and its transforms take a pass over memory per coefficient);
  the NCHW version does its transforms as matrix products and needs no layout change.
  The networks stay in NCHW memory by default (channels-last was 10-15% slower: PyTorch's
  instance norm copies channels-last inputs to NCHW).

Every rewrite is exact in real arithmetic: in float64 the rewritten networks agree with the
plain ones to ~1e-13 (tests/test_tpsmm.py). The rewritten modules no longer have the
checkpoint's state-dict layout; `TpsmmGenerator` applies them to its own copies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from dfmnist.generators.fomm.blocks import ConvBlock, ResidualBlock
from dfmnist.generators.fomm.inference import replace_modules, row_split_convolutions
from dfmnist.generators.tpsmm.winograd_nchw import nchw_winograd_convolutions

__all__ = ["TransposedUpBlock", "fold_resnet_batch_norms", "speed_up", "transposed_upsampling"]

#: The four phases of the transposed convolution along one axis (see the module docstring):
#: output row ``2m`` reads input rows ``m-1, m`` with taps ``k0, k1+k2``, row ``2m+1`` rows
#: ``m, m+1`` with ``k0+k1, k2``; rows are the 2x2 kernel's taps, columns k0, k1, k2.
_PHASE_TAPS = (((1, 0, 0), (0, 1, 1)), ((1, 1, 0), (0, 0, 1)))


class TransposedUpBlock(nn.Module):
    """An up `ConvBlock` (nearest 2x, 3x3 convolution with padding 1, norm, ReLU) with the
    upsampling and convolution done as one stride-2 transposed convolution, computed by its
    four phases: output pixel ``(2m+r, 2n+s)`` is a 2x2 convolution of the input around
    ``(m, n)``, so one 2x2 convolution with 4x the outputs (phase-major) on the input padded
    by one gives every phase, and four strided copies interleave them (phase ``r`` along an
    axis starts at padded row ``r``). oneDNN runs that plain convolution nearer the core's
    peak than its transposed one: measured on one core, 72 -> 52 ms for the inpainting
    decoder's last up block (256 -> 64 channels, 128x128 -> 256x256), 60 -> 50 ms for the
    one before it."""

    def __init__(self, block: ConvBlock) -> None:
        super().__init__()
        conv = block.conv
        if block.resample != "up" or tuple(conv.kernel_size) != (3, 3) \
                or tuple(conv.padding) != (1, 1) or tuple(conv.stride) != (1, 1) \
                or conv.groups != 1:
            raise ValueError("TransposedUpBlock needs an up block with a 3x3 convolution, "
                             "padding 1, stride 1, no groups")
        with torch.no_grad():  # tap sums in float64, rounded once
            taps = torch.tensor(_PHASE_TAPS, dtype=torch.float64, device=conv.weight.device)
            weight = torch.einsum("ruk,oikl,svl->rsoiuv", taps, conv.weight.double(), taps)
        self.out_channels = conv.out_channels
        self.weight = nn.Parameter(weight.reshape(4 * conv.out_channels, conv.in_channels,
                                                  2, 2).to(conv.weight.dtype).contiguous(),
                                   requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(
            conv.bias.detach().repeat(4), requires_grad=False)
        self.norm = block.norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        k = self.out_channels
        phases = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.weight, self.bias)
        phases = phases.view(n, 2, 2, k, h + 1, w + 1)
        out = x.new_empty((n, k, 2 * h, 2 * w))
        grid = out.view(n, k, h, 2, w, 2)
        for r in range(2):
            for s in range(2):
                grid[:, :, :, r, :, s] = phases[:, r, s, :, r:r + h, s:s + w]
        return F.relu(self.norm(out), inplace=True)


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
        # only the residual blocks (the inpainting decoder's, at 32x32 to 128x128): the other
        # wide 3x3 convolutions (dense motion hourglass) run at 16x16 and below, where a few
        # tiles cannot pay for reading the a*a/9 times larger transformed weights
        for child in list(module.modules()):
            if isinstance(child, ResidualBlock):
                nchw_winograd_convolutions(child, tile=winograd,
                                           min_channels=winograd_min_channels)
    return module

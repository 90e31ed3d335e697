"""Inference-only rewrites of the LivePortrait networks: the same function, less work.

* `plain_convolutions`: each spectral-norm convolution becomes a plain `nn.Conv2d` whose
  weight is its eval-mode weight ``weight_orig / dot(u, W v)``, computed once in the working
  dtype with the original's arithmetic (the original recomputes it before every forward:
  the same tensor each time).
* `fold_batch_norms`: an eval-mode batch norm directly after a 2D or 3D convolution (every
  same/down/up block, the hourglass's last convolution, the dense motion's compression, the
  second norm of a residual block) is folded into that convolution, in float64, rounded once.
* `depth_chunked_conv3d` (float64 only): PyTorch's CPU float64 3D convolution unfolds its
  whole input first (for the dense motion's 7x7x7 mask convolution over 142 x 16 x 64 x 64,
  25 GB); computed over slices of the output depth it needs a bounded amount, with the same
  products and sums per output value.
* (in `LivePortraitGenerator`) Winograd F(4x4, 3x3) computed in NCHW for the 3x3
  convolutions of 256 or more channels of the decoder and the warping head on the CPU, by
  `dfmnist.generators.tpsmm.winograd_nchw` (0.25x the multiply-adds; see there).

In float64 the rewritten networks agree with the plain ones to ~1e-13 (the rewrites are exact
in real arithmetic); in float32 they change only the rounding. They no longer have the
checkpoint's state-dict layout: apply them to copies (`LivePortraitGenerator` does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.inference import replace_modules
from dfmnist.generators.liveportrait.blocks import (
    DownBlock2d,
    DownBlock3d,
    ResBlock3d,
    SameBlock2d,
    UpBlock3d,
    _Decoder,
)
from dfmnist.generators.liveportrait.dense_motion import DenseMotionNetwork
from dfmnist.generators.liveportrait.spade import SpectralConv2d
from dfmnist.generators.liveportrait.upsampled_conv import phase_kernels, upsampled_conv

__all__ = ["PhaseUpBlock3d", "conv3d_by_depth", "depth_chunked_conv3d", "fold_batch_norms",
           "phase_up_blocks", "plain_convolutions"]

_Conv = nn.Conv2d | nn.Conv3d
_Norm = nn.BatchNorm2d | nn.BatchNorm3d


def _as_conv(module: nn.Module) -> nn.Module | None:
    if not isinstance(module, SpectralConv2d):
        return None
    weight = module.effective_weight().detach()
    conv = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size,
                     padding=module.padding, bias=module.bias is not None,
                     dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if module.bias is not None:
            conv.bias.copy_(module.bias)
    return conv


def plain_convolutions(module: nn.Module) -> int:
    """Replace every `SpectralConv2d` in `module` by the plain convolution it computes in eval
    mode (in place); returns how many."""
    return replace_modules(module, _as_conv)


def _fold(conv: nn.Module, norm: nn.Module) -> bool:
    if not isinstance(conv, _Conv) or not isinstance(norm, _Norm):
        return False
    with torch.no_grad():
        dtype = conv.weight.dtype
        mean, var = norm.running_mean.double(), norm.running_var.double()
        scale = norm.weight.double() / torch.sqrt(var + norm.eps)
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(mean)
        shape = (-1,) + (1,) * (conv.weight.ndim - 1)
        conv.weight.copy_((conv.weight.double() * scale.view(shape)).to(dtype))
        conv.bias = nn.Parameter(((bias - mean) * scale + norm.bias.double()).to(dtype))
    return True


def fold_batch_norms(module: nn.Module) -> int:
    """Fold the batch norms that directly follow convolutions into them (in place); returns
    how many. For eval mode only."""
    folded = 0
    for block in list(module.modules()):
        if isinstance(block, SameBlock2d | DownBlock2d | DownBlock3d | UpBlock3d | _Decoder):
            if _fold(block.conv, block.norm):
                block.norm = nn.Identity()
                folded += 1
        elif isinstance(block, ResBlock3d) and _fold(block.conv1, block.norm2):
            block.norm2 = nn.Identity()
            folded += 1
        elif isinstance(block, DenseMotionNetwork) and _fold(block.compress, block.norm):
            block.norm = nn.Identity()
            folded += 1
    return folded


def conv3d_by_depth(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    padding: tuple[int, int, int], max_bytes: int = 1 << 30) -> torch.Tensor:
    """``F.conv3d(x, weight, bias, padding=padding)`` (stride 1, no dilation, no groups)
    computed over slices of the output depth whose unfolded input takes about `max_bytes`."""
    pd, ph, pw = padding
    kd = weight.shape[2]
    x = F.pad(x, (0, 0, 0, 0, pd, pd))
    depth = x.shape[2] - kd + 1
    per_slice = weight[0].numel() * x.shape[3] * x.shape[4] * x.element_size() * x.shape[0]
    step = max(1, max_bytes // per_slice)
    parts = [F.conv3d(x[:, :, s:s + step + kd - 1], weight, bias, padding=(0, ph, pw))
             for s in range(0, depth, step)]
    return torch.cat(parts, dim=2)


class _DepthChunkedConv3d(nn.Module):
    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        return conv3d_by_depth(x, c.weight, c.bias, tuple(c.padding))


def _plain_3d(conv: nn.Module) -> bool:
    return isinstance(conv, nn.Conv3d) and tuple(conv.stride) == (1, 1, 1) \
        and tuple(conv.dilation) == (1, 1, 1) and conv.groups == 1 \
        and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def depth_chunked_conv3d(module: nn.Module) -> int:
    """Wrap every plain 3D convolution of `module` to run by `conv3d_by_depth` (in place);
    returns how many. For float64 on the CPU."""
    return replace_modules(module, lambda child: _DepthChunkedConv3d(child)
                           if _plain_3d(child) else None)


class PhaseUpBlock3d(nn.Module):
    """An `UpBlock3d` with its batch norm folded (`fold_batch_norms`): nearest 2x upsampling
    of height and width, 3x3x3 convolution, ReLU, computed from the low-res input one output
    phase at a time (`upsampled_conv.upsampled_conv`): (3, 2, 2) kernels, 48 instead of 108 taps
    per low-res voxel. The same function (taps that read the same voxel summed first)."""

    def __init__(self, block: UpBlock3d) -> None:
        super().__init__()
        self.register_buffer("weight", block.conv.weight.detach().clone())
        self.register_buffer("bias", block.conv.bias.detach().clone())
        self._kernels = phase_kernels(self.weight, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self._kernels[0][4]
        if kernel.dtype != self.weight.dtype or kernel.device != self.weight.device:
            self._kernels = phase_kernels(self.weight, 2)
        return upsampled_conv(x, self._kernels, self.bias, 2, F.relu)


def _phase_up(block: nn.Module) -> nn.Module | None:
    if not isinstance(block, UpBlock3d) or not isinstance(block.norm, nn.Identity):
        return None
    conv = block.conv
    plain = tuple(conv.kernel_size) == (3, 3, 3) and tuple(conv.padding) == (1, 1, 1) \
        and tuple(conv.stride) == (1, 1, 1) and tuple(conv.dilation) == (1, 1, 1) \
        and conv.groups == 1 and conv.padding_mode == "zeros" and conv.bias is not None
    return PhaseUpBlock3d(block) if plain else None


def phase_up_blocks(module: nn.Module) -> int:
    """Replace every folded `UpBlock3d` of `module` by its `PhaseUpBlock3d` (in place; after
    `fold_batch_norms`); returns how many."""
    return replace_modules(module, _phase_up)

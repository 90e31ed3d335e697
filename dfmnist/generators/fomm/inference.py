"""Inference-only rewrites of the FOMM networks: the same function with less work.

* `fold_batch_norms`: an eval-mode batch norm that directly follows a convolution becomes
  part of that convolution's weights and bias (one pass over memory less per block).
* `subpixel_upsampling`: "nearest 2x upsampling, then a 3x3 convolution" (every decoder
  block of the generator and of both hourglasses) equals four 2x2 convolutions on the
  low-resolution input, one per output pixel phase, whose kernels are sums of the 3x3
  kernel's taps. Nearest upsampling repeats each input pixel twice along each axis, so the
  3x3 window around output row ``2i`` reads input rows ``i-1, i, i`` and around ``2i+1``
  rows ``i, i, i+1``; adding the taps that read the same row gives a 2-tap kernel (and the
  zero padding of the upsampled image is the zero padding of the input). 16 multiply-adds
  per input pixel and channel pair instead of 36, and no upsampled tensor is built.
* `row_split_convolutions`: a wide k x k convolution with very few output channels (the
  generator's final 7x7, 64 -> 3 at 256x256) leaves the CPU kernels nothing to vectorise
  over; as one 1 x k convolution to k times as many channels (each kernel row's response)
  summed over k row shifts it does the same multiply-adds about twice as fast.

Both are exact rewrites of the same function: in float64 the rewritten networks agree with
the plain ones to ~1e-13 (`tests/test_fomm_render.py`); in float32 they change only the rounding.
The rewritten modules no longer have the checkpoint's state-dict layout: apply them to a copy
(`FommGenerator` does).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.blocks import ConvBlock, ResidualBlock

__all__ = [
    "RowSplitConv",
    "SubpixelUpBlock",
    "fold_batch_norms",
    "replace_modules",
    "row_split_convolutions",
    "subpixel_upsampling",
]


def _fold(conv: nn.Conv2d, norm: nn.Module) -> None:
    """Fold an eval-mode batch norm that directly follows `conv` into its weights."""
    if not isinstance(norm, nn.BatchNorm2d):
        return
    with torch.no_grad():  # in float64, rounded once to the weights' dtype
        dtype = conv.weight.dtype
        mean, var = norm.running_mean.double(), norm.running_var.double()
        scale = norm.weight.double() / torch.sqrt(var + norm.eps)
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(mean)
        conv.weight.copy_((conv.weight.double() * scale.view(-1, 1, 1, 1)).to(dtype))
        conv.bias = nn.Parameter(((bias - mean) * scale + norm.bias.double()).to(dtype))


def fold_batch_norms(module: nn.Module) -> int:
    """Fold every batch norm that directly follows a convolution (all of `ConvBlock`'s, the
    second of `ResidualBlock`'s) into that convolution, in place; returns how many.

    For inference only: the module computes the same function in eval mode (up to float
    rounding) with fewer passes over memory, but its state dict no longer matches the
    checkpoint layout. Work on a copy.
    """
    folded = 0
    for block in list(module.modules()):
        if isinstance(block, ConvBlock) and isinstance(block.norm, nn.BatchNorm2d):
            _fold(block.conv, block.norm)
            block.norm = nn.Identity()
            folded += 1
        elif isinstance(block, ResidualBlock) and isinstance(block.norm2, nn.BatchNorm2d):
            _fold(block.conv1, block.norm2)
            block.norm2 = nn.Identity()
            folded += 1
    return folded


def _phase_taps(kernel: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3-tap kernel along `dim` as two 2-tap kernels, for even and odd output phases:
    even output pixels read input (i-1, i) with taps (k0, k1+k2), odd ones (i, i+1) with
    (k0+k1, k2)."""
    k0, k1, k2 = kernel.unbind(dim)
    return torch.stack([k0, k1 + k2], dim), torch.stack([k0 + k1, k2], dim)


class SubpixelUpBlock(nn.Module):
    """A folded ``ConvBlock(resample="up")`` (nearest 2x, 3x3 conv, ReLU) computed as one
    2x2 convolution with four output-channel groups (one per output phase) on the input,
    interleaved into the 2x output (see the module docstring)."""

    def __init__(self, block: ConvBlock) -> None:
        super().__init__()
        conv = block.conv
        if block.resample != "up" or tuple(conv.kernel_size) != (3, 3) \
                or tuple(conv.padding) != (1, 1) or tuple(conv.stride) != (1, 1):
            raise ValueError("SubpixelUpBlock needs an upsampling block with a 3x3 conv, "
                             "padding 1, stride 1")
        if not isinstance(block.norm, nn.Identity):
            fold_batch_norms(block)
        self.out_channels = conv.out_channels
        with torch.no_grad():
            weight = conv.weight.detach().double()  # sum taps in float64: one rounding
            rows = _phase_taps(weight, 2)
            kernels = [col for row in rows for col in _phase_taps(row, 3)]  # (a, b) order
            bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
        self.weight = nn.Parameter(torch.cat(kernels).to(conv.weight.dtype),
                                   requires_grad=False)
        self.bias = nn.Parameter(bias.detach().repeat(4), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, h, w = x.shape
        # output (i, j) of phase (a, b) sits at (i + a, j + b) of the (h+1) x (w+1) result
        phases = F.conv2d(x, self.weight, self.bias, padding=1).relu_()
        c = self.out_channels
        channels_last = x.dim() == 4 and not x.is_contiguous() \
            and x.is_contiguous(memory_format=torch.channels_last)
        out = torch.empty((batch, c, 2 * h, 2 * w), dtype=phases.dtype, device=x.device,
                          memory_format=torch.channels_last if channels_last
                          else torch.contiguous_format)
        for a in (0, 1):
            for b in (0, 1):
                group = 2 * a + b
                out[:, :, a::2, b::2] = phases[:, group * c:(group + 1) * c, a:a + h, b:b + w]
        return out


def replace_modules(module: nn.Module,
                    rewrite: Callable[[nn.Module], nn.Module | None]) -> int:
    """Replace, in place, every submodule of `module` for which `rewrite` returns a module
    by that module (None: keep it); returns how many. The shared walk of every rewrite."""
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            new = rewrite(child)
            if new is not None:
                setattr(parent, name, new)
                replaced += 1
    return replaced


def subpixel_upsampling(module: nn.Module) -> int:
    """Replace every upsampling `ConvBlock` with 3x3 kernels in `module` by its
    `SubpixelUpBlock`, in place (folding its batch norm); returns how many."""
    return replace_modules(module, lambda child: SubpixelUpBlock(child)
                           if isinstance(child, ConvBlock) and child.resample == "up"
                           and tuple(child.conv.kernel_size) == (3, 3) else None)


def _odd_square_same(conv: nn.Conv2d) -> bool:
    """An odd square kernel, stride 1, 'same' zero padding, no dilation, no groups."""
    k = conv.kernel_size[0]
    return tuple(conv.kernel_size) == (k, k) and k % 2 == 1 and tuple(conv.stride) == (1, 1) \
        and tuple(conv.padding) == (k // 2, k // 2) and tuple(conv.dilation) == (1, 1) \
        and conv.groups == 1 and conv.padding_mode == "zeros"


class RowSplitConv(nn.Module):
    """A k x k, stride-1, 'same'-padded `nn.Conv2d` with few output channels computed as one
    1 x k convolution giving every kernel row's response (k * out channels), then the sum
    of those responses shifted by their row (see the module docstring)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        k = conv.kernel_size[0]
        if not _odd_square_same(conv):
            raise ValueError("RowSplitConv needs an odd square kernel, stride 1, 'same' zero "
                             "padding, no dilation and no groups")
        self.size, self.out_channels = k, conv.out_channels
        weight = conv.weight.detach()  # (O, C, k, k) -> rows (k * O, C, 1, k), row-major
        rows = weight.permute(2, 0, 1, 3).reshape(k * conv.out_channels, conv.in_channels, 1, k)
        self.weight = nn.Parameter(rows.contiguous(), requires_grad=False)
        bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, o, h = self.size, self.out_channels, x.shape[2]
        pad = k // 2
        responses = F.conv2d(x, self.weight, None, padding=(pad, pad))  # rows h + 2 pad
        out = responses[:, :o, :h] + self.bias.view(1, o, 1, 1)
        for row in range(1, k):
            out += responses[:, row * o:(row + 1) * o, row:row + h]
        return out


def row_split_convolutions(module: nn.Module, max_out_channels: int = 4,
                           min_size: int = 5) -> int:
    """Replace, in place, every `nn.Conv2d` of `module` with at most `max_out_channels`
    outputs and a square odd kernel of at least `min_size` (stride 1, 'same' padding) by its
    `RowSplitConv`; returns how many."""
    return replace_modules(module, lambda child: RowSplitConv(child)
                           if isinstance(child, nn.Conv2d) and _odd_square_same(child)
                           and child.kernel_size[0] >= min_size
                           and child.out_channels <= max_out_channels else None)

"""Winograd F(m x m, 3 x 3) for 3x3 convolutions that takes and returns NCHW tensors, with
every transform a matrix product.

Why not `dfmnist.generators.fomm.winograd.WinogradConv2d` (same arithmetic): it transforms
tiles by whole-tensor additions in channels-last memory, one pass over memory per nonzero
coefficient, and returns a channels-last tensor. The TPSMM decoder puts an instance norm
after every convolution, which PyTorch computes in NCHW (a channels-last input is first
copied back), so the layout changes ate the saving: measured on one core of an AVX-512
Xeon, its residual blocks got no faster overall. Here, per channel, the ``a x a`` input
tiles (``a = m + 2``) are gathered from the zero-padded NCHW input as the rows of one
matrix and transformed by a single product with ``B^T (x) B^T`` (Kronecker, a^2 x a^2); the
``a^2`` point-wise products ``U[p] @ V[p]`` (K x C by C x tiles) are one batched product;
the output transform is one product with ``A^T (x) A^T`` (m^2 x a^2) with the bias added
in it (``addmm``), and one strided copy interleaves the m x m tiles into the NCHW output.
Memory traffic is a few passes in all, and the products run at the GEMM's rate.

The work is split into bands of tile rows per image whose transformed input takes about
`chunk_bytes`: bigger temporaries (over 32 MiB) would be mapped afresh by glibc on every
call (page faults), smaller ones make the products inefficient.

Precision: exact in real arithmetic; float64 agrees with the direct convolution to ~1e-14
(tests/test_tpsmm.py). In float32 F(2x2) has the direct convolution's rounding, F(4x4)
(interpolation points 0, +-1, +-2) about ten times more; see `TpsmmGenerator` for the
frame-level figures that chose the default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.inference import replace_modules
from dfmnist.generators.fomm.winograd import TILES, WinogradLayer, plain_3x3

__all__ = ["NchwWinogradConv2d", "nchw_winograd_convolutions"]


class NchwWinogradConv2d(WinogradLayer):
    """A plain 3x3 `nn.Conv2d` (stride 1, padding 1, no groups or dilation) computed by
    F(tile x tile, 3 x 3) on NCHW tensors (inference only: the transformed weights are
    buffers). The output is a contiguous NCHW tensor."""

    def __init__(self, conv: nn.Conv2d, tile: int = 4, chunk_bytes: int = 8 << 20) -> None:
        super().__init__()
        b_t, _, a_t = self._init_weights(conv, tile, chunk_bytes)
        like = {"dtype": self.weight.dtype, "device": self.weight.device}
        # row p*a + q of B^T (x) B^T transforms the tile flattened row-major: V[p, q]
        self.register_buffer("input_transform", torch.kron(b_t, b_t).to(**like),
                             persistent=False)
        self.register_buffer("output_transform", torch.kron(a_t, a_t).to(**like),
                             persistent=False)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, "
                f"F({self.tile}x{self.tile}, 3x3), NCHW, chunk_bytes={self.chunk_bytes}")

    def _band(self, padded: torch.Tensor, out: torch.Tensor) -> None:
        """One image's zero-padded input rows (C, rows*m + 2, tw*m + 2) -> its output rows
        (K, rows*m, tw*m), bias included."""
        m, a = self.tile, self.side
        c, rows_in, cols_in = padded.shape
        th, tw = (rows_in - 2) // m, (cols_in - 2) // m
        k = self.out_channels
        s_c, s_y, s_x = padded.stride()
        # the a x a overlapping tiles of every channel, as (a*a, C * tiles): one gather
        tiles = padded.as_strided((a, a, c, th, tw), (s_y, s_x, s_c, m * s_y, m * s_x))
        v = torch.matmul(self.input_transform, tiles.reshape(a * a, c * th * tw))
        products = torch.matmul(self.weight, v.view(a * a, c, th * tw))  # (a*a, K, tiles)
        bias = self.bias.repeat_interleave(th * tw)  # (K * tiles,), added by addmm
        y = torch.addmm(bias, self.output_transform, products.view(a * a, k * th * tw))
        # y[p*m + q, k, ty, tx] is output pixel (ty*m + p, tx*m + q) of channel k
        out.view(k, th, m, tw, m).copy_(y.view(m, m, k, th, tw).permute(2, 3, 0, 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, a = self.tile, self.side
        n, c, h, w = x.shape
        th, tw = -(-h // m), -(-w // m)
        padded = F.pad(x, (1, tw * m + 1 - w, 1, th * m + 1 - h))
        out = x.new_empty((n, self.out_channels, th * m, tw * m))
        per_row = a * a * max(c, self.out_channels) * tw * x.element_size()
        band = max(1, min(th, self.chunk_bytes // per_row))
        for i in range(n):
            for first in range(0, th, band):
                last = min(th, first + band)
                self._band(padded[i, :, first * m:last * m + 2],
                           out[i, :, first * m:last * m])
        if th * m != h or tw * m != w:
            out = out[:, :, :h, :w].contiguous()
        return out


def nchw_winograd_convolutions(module: nn.Module, tile: int = 4, min_channels: int = 256,
                               chunk_bytes: int = 8 << 20) -> int:
    """Replace, in place, every plain 3x3 `nn.Conv2d` of `module` with at least
    `min_channels` input and output channels by its `NchwWinogradConv2d`; returns how many.
    Narrow convolutions stay with oneDNN's direct kernel (see `TpsmmGenerator` for the
    measurements behind the default)."""
    if tile not in TILES:
        raise ValueError(f"tile must be one of {TILES}, got {tile}")
    return replace_modules(module, lambda child: NchwWinogradConv2d(child, tile, chunk_bytes)
                           if isinstance(child, nn.Conv2d) and plain_3x3(child)
                           and min(child.in_channels, child.out_channels) >= min_channels
                           else None)

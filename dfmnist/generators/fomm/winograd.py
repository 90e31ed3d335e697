"""3x3 convolutions by Winograd's minimal filtering (Lavin & Gray, CVPR 2016), for the CPU.

A 3x3, stride-1 convolution computes each ``m x m`` output tile from an ``(m+2) x (m+2)``
input tile. Winograd's F(m x m, 3 x 3) writes that as ``A^T [(G g G^T) * (B^T d B)] A``:
the input tile ``d`` and the kernel ``g`` are taken to an ``a x a`` transform domain
(``a = m + 2``), multiplied point by point, and taken back. Summed over input channels, the
point-wise products become ``a*a`` independent matrix products ``(tiles x C) @ (C x K)``, with
``a*a / (9 m*m)`` of the direct convolution's multiply-adds: 0.44 for m = 2, 0.25 for m = 4.

Why here: on one CPU core the FOMM generator spends over half its time in the bottleneck's
twelve 256-channel 3x3 convolutions at 64x64, which oneDNN already runs near the core's peak
FLOP rate, so only fewer multiply-adds make them faster. The matrix products go to oneDNN's
linear kernel (the GEMM PyTorch's own CPU matmul does not reach at these shapes here); the
transforms are a few additions of whole strided tensors, memory-bound and cheap.

Precision: the transforms are exact in real arithmetic, so in float64 the result equals the
direct convolution to ~1e-15; in float32 they change the rounding. F(2x2, 3x3) (the default)
has entries 0, +-1, +-1/2 and is about as accurate as the direct convolution; F(4x4, 3x3)
(points 0, +-1, +-2) saves more but its float32 error is several times the direct one.
The weights are transformed once, in float64, and rounded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.inference import replace_modules

__all__ = ["TILES", "WinogradConv2d", "winograd_convolutions", "winograd_matrices"]

#: Output tile sides supported: F(2x2, 3x3) and F(4x4, 3x3).
TILES = (2, 4)

_HALF, _SIXTH = Fraction(1, 2), Fraction(1, 6)
# (B^T, G, A^T) per output tile side, from the Toom-Cook construction with interpolation
# points 0, +-1 (m = 2) and 0, +-1, +-2 (m = 4), plus the point at infinity.
_MATRICES: dict[int, tuple[list[list[Fraction]], ...]] = {
    2: (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [_HALF, _HALF, _HALF], [_HALF, -_HALF, _HALF], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: (
        [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[Fraction(1, 4), 0, 0], [-_SIXTH, -_SIXTH, -_SIXTH], [-_SIXTH, _SIXTH, -_SIXTH],
         [Fraction(1, 24), Fraction(1, 12), _SIXTH], [Fraction(1, 24), -Fraction(1, 12), _SIXTH],
         [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}


def winograd_matrices(tile: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(B^T, G, A^T)`` of F(tile x tile, 3 x 3) in float64: (a, a), (a, 3), (tile, a)."""
    if tile not in _MATRICES:
        raise ValueError(f"tile must be one of {TILES}, got {tile}")
    return tuple(torch.tensor([[float(v) for v in row] for row in mat], dtype=torch.float64)
                 for mat in _MATRICES[tile])  # type: ignore[return-value]


def _combine(matrix: torch.Tensor, parts: Sequence[torch.Tensor],
             outs: Sequence[torch.Tensor]) -> None:
    """``outs[r] = sum_k matrix[r, k] * parts[k]``, skipping zeros: one pass over memory per
    term, the first two terms in one."""
    for row, out in zip(matrix.tolist(), outs, strict=True):
        terms = [(coef, part) for coef, part in zip(row, parts, strict=True) if coef != 0]
        (c0, p0), rest = terms[0], terms[1:]
        if not rest:
            torch.mul(p0, c0, out=out)
            continue
        c1, p1 = rest[0]
        if c0 == 1:
            torch.add(p0, p1, alpha=c1, out=out)
        elif c1 == 1:
            torch.add(p1, p0, alpha=c0, out=out)
        else:
            torch.mul(p0, c0, out=out).add_(p1, alpha=c1)
        for coef, part in rest[1:]:
            out.add_(part, alpha=coef)


def plain_3x3(conv: nn.Conv2d) -> bool:
    """A 3x3 convolution with stride 1, zero padding 1, no dilation and no groups."""
    return tuple(conv.kernel_size) == (3, 3) and tuple(conv.stride) == (1, 1) \
        and tuple(conv.padding) == (1, 1) and tuple(conv.dilation) == (1, 1) \
        and conv.groups == 1 and conv.padding_mode == "zeros"


def transformed_weights(conv: nn.Conv2d, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`conv`'s weights in the transform domain, U[i, j] = G w G^T per (out, in) pair, as
    (a*a, K, C) (one linear layer per point; computed in float64, rounded once to the
    weights' dtype), and its bias (zeros without one), both on the weights' device."""
    weight = conv.weight.detach()
    with torch.no_grad():
        u = torch.einsum("ik,ockl,jl->ijoc", g, weight.double().cpu(), g)
        u = u.reshape(len(g) ** 2, conv.out_channels, conv.in_channels)
        bias = conv.bias.detach().clone() if conv.bias is not None \
            else torch.zeros(conv.out_channels, dtype=weight.dtype, device=weight.device)
    return u.to(dtype=weight.dtype, device=weight.device).contiguous(), bias


def _onednn_linear_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class WinogradLayer(nn.Module):
    """What every Winograd form of a plain 3x3 convolution keeps: its tile, its chunk size
    and its weights and bias in the transform domain (`transformed_weights`, buffers: for
    inference only). Returns the matrices (B^T, G, A^T) for the subclass's transforms."""

    def _init_weights(self, conv: nn.Conv2d, tile: int, chunk_bytes: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not plain_3x3(conv):
            raise ValueError(f"{type(self).__name__} needs a 3x3 convolution with stride 1, "
                             f"padding 1, no dilation and no groups")
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
        b_t, g, a_t = winograd_matrices(tile)
        self.tile, self.side, self.chunk_bytes = tile, tile + 2, int(chunk_bytes)
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        weight, bias = transformed_weights(conv, g)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        return b_t, g, a_t


class WinogradConv2d(WinogradLayer):
    """A 3x3, stride-1, padding-1 `nn.Conv2d` (no groups, no dilation) computed by
    F(tile x tile, 3 x 3). Takes and returns (N, C, H, W) tensors; the output is in
    channels-last memory. Inference only: the transformed weights are buffers, not
    parameters. Each call works through the batch in chunks (whole images, or bands of
    tile rows) whose transformed input takes about `chunk_bytes`: large enough for efficient
    matrix products, small enough that the allocator reuses the temporaries between calls
    instead of mapping fresh pages for them (glibc maps blocks over 32 MiB anew every time).
    Measured on the bottleneck's 8 x 256 x 64 x 64: the whole batch at once is 1.5-2x
    slower than chunks of 16 MiB."""

    def __init__(self, conv: nn.Conv2d, tile: int = 2, chunk_bytes: int = 16 << 20) -> None:
        super().__init__()
        b_t, _, a_t = self._init_weights(conv, tile, chunk_bytes)
        self.register_buffer("b_t", b_t, persistent=False)
        self.register_buffer("a_t", a_t, persistent=False)
        self._packed: list[torch.Tensor] | None = None
        self._zero: torch.Tensor | None = None  # the products' (absent) bias, for oneDNN
        self._onednn = _onednn_linear_available()
        self._packed_for: tuple[torch.dtype, torch.device] | None = None

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, "
                f"F({self.tile}x{self.tile}, 3x3), chunk_bytes={self.chunk_bytes}")

    def _products(self, v: torch.Tensor) -> list[torch.Tensor]:
        """The a*a matrix products ``v[i] @ weight[i]^T`` of (tiles, C) by (C, K): oneDNN's
        linear kernel on prepacked weights for float32 on the CPU, else (or should that
        internal operator be missing or refuse) `torch.matmul`."""
        weight = self.weight
        if self._onednn and weight.device.type == "cpu" and weight.dtype == torch.float32:
            try:
                if self._packed is None or self._packed_for != (weight.dtype, weight.device):
                    self._packed = [torch.ops.mkldnn._reorder_linear_weight(w, None)
                                    for w in weight]
                    self._packed_for = (weight.dtype, weight.device)
                    self._zero = torch.zeros(self.out_channels, dtype=weight.dtype)
                return [torch.ops.mkldnn._linear_pointwise(v[i], self._packed[i], self._zero,
                                                           "none", [], "")
                        for i in range(v.shape[0])]
            except (AttributeError, NotImplementedError, RuntimeError):
                self._onednn, self._packed = False, None  # same products, slower GEMM
        return list(torch.matmul(v, weight.transpose(1, 2)).unbind(0))

    def _tiles(self, padded: torch.Tensor) -> torch.Tensor:
        """Zero-padded input rows (N, th*m + 2, tw*m + 2, C) -> the output rows they cover,
        (N, th*m, tw*m, K), before the bias."""
        m, a = self.tile, self.side
        n, rows_in, cols_in, c = padded.shape
        th, tw = (rows_in - 2) // m, (cols_in - 2) // m
        b_t, a_t = self.b_t.to(padded.dtype), self.a_t.to(padded.dtype)
        like = {"dtype": padded.dtype, "device": padded.device}
        # B^T d B: along the rows of every tile, then along its columns
        rows = torch.empty((a, n, th, cols_in, c), **like)
        _combine(b_t, [padded[:, k:k + m * th:m] for k in range(a)], rows.unbind(0))
        v = torch.empty((a, a, n, th, tw, c), **like)
        for i in range(a):
            _combine(b_t, [rows[i][:, :, k:k + m * tw:m] for k in range(a)], v[i].unbind(0))
        products = self._products(v.view(a * a, n * th * tw, c))
        # A^T M A: along i, then along j straight into the interleaved output
        k_out = self.out_channels
        half = torch.empty((m, a, n * th * tw, k_out), **like)
        for j in range(a):
            _combine(a_t, [products[i * a + j] for i in range(a)], half[:, j].unbind(0))
        out = torch.empty((n, th * m, tw * m, k_out), **like)
        grid = out.view(n, th, m, tw, m, k_out)
        for p in range(m):
            _combine(a_t, [half[p, j].view(n, th, tw, k_out) for j in range(a)],
                     [grid[:, :, p, :, q] for q in range(m)])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.tile
        n, _, h, w = x.shape
        th, tw = -(-h // m), -(-w // m)
        nhwc = x.permute(0, 2, 3, 1)
        out = torch.empty((n, h, w, self.out_channels), dtype=x.dtype, device=x.device)
        # chunks of whole images, or of bands of tile rows when one image has too many tiles
        tiles = self.chunk_bytes // (self.side**2 * self.in_channels * x.element_size())
        images = max(1, tiles // (th * tw))
        band = th if images > 1 else max(1, tiles // tw)
        for start in range(0, n, images):
            stop = min(n, start + images)
            padded = F.pad(nhwc[start:stop], (0, 0, 1, tw * m + 1 - w, 1, th * m + 1 - h))
            for first in range(0, th, band):
                last = min(th, first + band)
                part = self._tiles(padded[:, first * m:last * m + 2])
                y0, y1 = first * m, min(h, last * m)
                torch.add(part[:, :y1 - y0, :w], self.bias, out=out[start:stop, y0:y1])
        return out.permute(0, 3, 1, 2)


def winograd_convolutions(module: nn.Module, tile: int = 2, min_channels: int = 128,
                          chunk_bytes: int = 16 << 20) -> int:
    """Replace, in place, every 3x3 stride-1 padding-1 `nn.Conv2d` of `module` with at least
    `min_channels` input and output channels by its `WinogradConv2d`; returns how many.

    Narrow convolutions are left to oneDNN: with few channels the transforms, not the
    products, dominate. Measured per convolution on one core, 8 maps of 32x32: 64 -> 128
    channels 5.1 ms direct, 5.6 ms F(2x2); 128 -> 256 channels 18.3 ms vs 15.6 ms."""
    return replace_modules(module, lambda child: WinogradConv2d(child, tile, chunk_bytes)
                           if isinstance(child, nn.Conv2d) and plain_3x3(child)
                           and min(child.in_channels, child.out_channels) >= min_channels
                           else None)

"""A wide 3D convolution through 2D FFTs: the dense motion network's 7x7x7 mask convolution.

Why: the mask convolution (142 -> 22 channels, 7x7x7, over 16 x 64 x 64) costs 70 G
multiply-adds per frame, about an eighth of a LivePortrait frame, and oneDNN already runs it
near the core's peak rate, so only fewer operations make it faster. Transformed along height
and width (zero-padded to a smooth FFT size of at least 64 + 7 - 1), each of its 7 depth taps
becomes, per spatial frequency, a (22 x 142) complex matrix times the input's (142 x depth)
spectrum: about a twentieth of the real multiply-adds, plus the transforms. The kernel's
spectrum is computed once per input size and dtype, in float64, rounded once (for the
published model in float32: 7 x 72 x 37 x 22 x 142 complex64 values, 0.47 GB).

Precision: the transform is exact in real arithmetic, so in float64 the result equals the
direct convolution to ~1e-15 relative to its scale; in float32 it changes the rounding (the
FFT's error grows like log n, the direct sum's like its 48k terms).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FFTConv3d", "fft_size"]


def fft_size(n: int) -> int:
    """The smallest integer >= n whose only prime factors are 2 and 3 (fast transforms)."""
    best = 1 << (n - 1).bit_length()
    power3 = 1
    while power3 < best:
        size = power3
        while size < n:
            size *= 2
        best = min(best, size)
        power3 *= 3
    return best


class FFTConv3d(nn.Module):
    """`conv` (an `nn.Conv3d` with stride 1, odd kernel, 'same' zero padding, no dilation or
    groups) computed with 2D FFTs over height and width and a direct sum over depth.
    Inference only: the weight and bias are buffers."""

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        if not supported(conv):
            raise ValueError("FFTConv3d needs a stride-1 3D convolution with an odd kernel, "
                             "'same' zero padding, no dilation and no groups")
        self.register_buffer("weight", conv.weight.detach().clone())
        bias = conv.bias.detach().clone() if conv.bias is not None \
            else torch.zeros(conv.out_channels, dtype=conv.weight.dtype)
        self.register_buffer("bias", bias)
        self._spectra: dict[tuple, torch.Tensor] = {}

    def extra_repr(self) -> str:
        o, c, kd, kh, kw = self.weight.shape
        return f"{c}, {o}, kernel_size=({kd}, {kh}, {kw}), by 2D FFT"

    def prepare(self, height: int, width: int, dtype: torch.dtype) -> None:
        """Compute the kernel's spectrum for inputs of `height` x `width` now (at load time)
        rather than in the first forward."""
        o, c, kd, kh, kw = self.weight.shape
        self._spectrum(fft_size(height + kh - 1), fft_size(width + kw - 1), dtype)

    def _spectrum(self, nh: int, nw: int, dtype: torch.dtype) -> torch.Tensor:
        """The kernel's spectrum as (depth taps, nh * (nw//2 + 1), out, in): flipped in height
        and width, since the convolution layer correlates and the FFT convolves."""
        key = (nh, nw, dtype, self.weight.device)
        if key not in self._spectra:
            o, c, kd = self.weight.shape[:3]
            spectrum = torch.fft.rfft2(self.weight.double().flip(-2, -1), s=(nh, nw))
            complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
            self._spectra = {key: spectrum.permute(2, 3, 4, 0, 1).reshape(kd, -1, o, c)
                             .to(complex_dtype).contiguous()}  # one size at a time: memory
        return self._spectra[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, d, h, w = x.shape
        o, _, kd, kh, kw = self.weight.shape
        pd, ph, pw = kd // 2, kh // 2, kw // 2
        nh, nw = fft_size(h + kh - 1), fft_size(w + kw - 1)
        spectrum = self._spectrum(nh, nw, x.dtype)
        freqs = spectrum.shape[1]
        xf = torch.fft.rfft2(x, s=(nh, nw))  # (B, C, D, nh, nw//2 + 1)
        # (frequency, channel, padded depth, batch): a depth window of every frame is then
        # one (channel x depth*batch) matrix view per frequency
        padded = xf.new_zeros(nh, nw // 2 + 1, c, d + 2 * pd, b)
        padded[:, :, :, pd:pd + d].copy_(xf.permute(3, 4, 1, 2, 0))
        padded = padded.view(freqs, c, d + 2 * pd, b)
        out = torch.matmul(spectrum[0], padded[:, :, :d].reshape(freqs, c, d * b))
        for t in range(1, kd):
            out.baddbmm_(spectrum[t], padded[:, :, t:t + d].reshape(freqs, c, d * b))
        out = out.view(nh, nw // 2 + 1, o, d, b).permute(4, 2, 3, 0, 1)
        y = torch.fft.irfft2(out, s=(nh, nw))[..., ph:ph + h, pw:pw + w]
        # the full linear convolution at index i + p is the correlation's output i
        return y + self.bias.view(1, o, 1, 1, 1)


def supported(conv: nn.Module) -> bool:
    """Whether `conv` is a 3D convolution `FFTConv3d` computes."""
    if not isinstance(conv, nn.Conv3d) or isinstance(conv.padding, str):
        return False
    kernel = tuple(conv.kernel_size)
    same = tuple(conv.padding) == tuple(k // 2 for k in kernel)
    return all(k % 2 == 1 for k in kernel) and same \
        and tuple(conv.stride) == (1, 1, 1) and tuple(conv.dilation) == (1, 1, 1) \
        and conv.groups == 1 and conv.padding_mode == "zeros"

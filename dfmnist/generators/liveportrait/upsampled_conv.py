"""SPADE normalisation with its shared convolution computed at the segmentation map's own
resolution: the same function as `spade.SPADE`, fewer multiply-adds.

Why: in the decoder's two upsampling blocks every SPADE first resizes the 64x64 decoder input
(nearest) to 128x128 or 256x256 and then convolves it (3x3, 256 -> 128 channels): at 256x256
those three convolutions alone are 58 G multiply-adds per frame, an eighth of the decoder.
On an s-times nearest-upsampled axis the three taps of output row ``s*i + a`` read low-res
rows ``i + floor((a + k - 1) / s)``, k = 0, 1, 2: only two distinct rows (one for the inner
phases when s = 4), so per phase the 3x3 kernel collapses to a 2x2, 2x1, 1x2 or 1x1 kernel
on the low-res map (taps that land on the same row summed, in float64, rounded once), and
phases with the same collapse share one result. Upsampling 4x, 25 instead of 144 taps per
low-res pixel; 2x, 16 instead of 36. Zero padding maps to zero padding: the upsampled map's
row -1 is the low-res map's row -1.

Also: the gamma and beta convolutions read the same activation, so they run as one
convolution with both kernels stacked (the same products per output).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.inference import replace_modules
from dfmnist.generators.liveportrait.spade import SPADE, SPADEResnetBlock

__all__ = ["FastSPADE", "FastSPADEShortcut", "fast_spade", "phase_classes", "phase_kernels",
           "upsampled_conv"]


def phase_classes(factor: int) -> list[tuple[list[int], int, torch.Tensor]]:
    """For a 3-tap, padding-1 convolution along an axis upsampled `factor` times (nearest):
    the output phases grouped by the low-res rows their taps read, as (phases, first low-res
    offset, (distinct rows x 3) float64 0/1 matrix summing the taps per row)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for phase in range(factor):
        offsets = tuple((phase + k - 1) // factor for k in range(3))
        groups.setdefault(offsets, []).append(phase)
    classes = []
    for offsets, phases in groups.items():
        first = min(offsets)
        collapse = torch.zeros(max(offsets) - first + 1, 3, dtype=torch.float64)
        for k, offset in enumerate(offsets):
            collapse[offset - first, k] = 1.0
        classes.append((phases, first, collapse))
    return classes


def phase_kernels(weight: torch.Tensor, factor: int) -> list[tuple]:
    """`weight` (out, in, ..., 3, 3) collapsed per phase class pair of its last two axes (see
    `phase_classes`): (row phases, first row offset, column phases, first column offset,
    kernel), computed in float64 and rounded once to `weight`'s dtype."""
    classes = phase_classes(factor)
    w64 = weight.detach().double()
    return [(rows, row_first, cols, col_first,
             torch.einsum("ik,oc...kl,jl->oc...ij", row_m.to(w64.device), w64,
                          col_m.to(w64.device)).to(weight.dtype).contiguous())
            for rows, row_first, row_m in classes for cols, col_first, col_m in classes]


def upsampled_conv(x: torch.Tensor, kernels: list[tuple], bias: torch.Tensor | None,
                   factor: int, activation: Callable[[torch.Tensor], torch.Tensor]
                   ) -> torch.Tensor:
    """``activation(conv(nearest_upsample(x, factor)))`` for a 3x3 (2D) or 3x3x3 (3D, depth
    not upsampled) convolution with padding 1, from `x` (N, C, [D,] H, W) and the
    convolution's `phase_kernels`: each phase class is one small convolution of the low-res
    map, written to every phase of its class."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    out_channels = kernels[0][4].shape[0]
    out = x.new_empty(*x.shape[:1], out_channels, *x.shape[2:-2], h * factor, w * factor)
    conv = F.conv3d if x.ndim == 5 else F.conv2d
    extra = {"padding": (1, 0, 0)} if x.ndim == 5 else {}
    for rows, row_first, cols, col_first, kernel in kernels:
        kh, kw = kernel.shape[-2:]
        window = padded[..., 1 + row_first:row_first + h + kh, 1 + col_first:col_first + w + kw]
        value = activation(conv(window, kernel, bias, **extra))
        for a in rows:
            for b in cols:
                out[..., a::factor, b::factor] = value
    return out


class FastSPADE(nn.Module):
    """`SPADE` for inference (see the module docstring): takes the same (x, segmap)."""

    def __init__(self, spade: SPADE) -> None:
        super().__init__()
        self.shared = spade.mlp_shared[0]
        gamma, beta = spade.mlp_gamma, spade.mlp_beta
        self.channels = gamma.out_channels
        self.modulation = nn.Conv2d(gamma.in_channels, 2 * self.channels, 3, padding=1,
                                    dtype=gamma.weight.dtype, device=gamma.weight.device)
        with torch.no_grad():
            self.modulation.weight.copy_(torch.cat([gamma.weight, beta.weight]))
            self.modulation.bias.copy_(torch.cat([gamma.bias, beta.bias]))
        self._phases: dict[tuple, list] = {}

    def _phase_kernels(self, factor: int) -> list:
        weight = self.shared.weight
        key = (factor, weight.dtype, weight.device)
        if key not in self._phases:
            self._phases = {key: phase_kernels(weight, factor)}
        return self._phases[key]

    def activation(self, size: tuple[int, ...], segmap: torch.Tensor) -> torch.Tensor:
        """``relu(shared(segmap resized to size))``, at the low resolution when it can."""
        (h, w), (sh, sw) = size, segmap.shape[2:]
        factor = h // sh
        if (h, w) != (sh, sw) and h == factor * sh and w == factor * sw:
            return upsampled_conv(segmap, self._phase_kernels(factor), self.shared.bias,
                                  factor, F.relu)
        if (h, w) != (sh, sw):
            segmap = F.interpolate(segmap, size=(h, w), mode="nearest")
        return F.relu(self.shared(segmap))

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x)
        modulation = self.modulation(self.activation(x.shape[2:], segmap))
        gamma, beta = modulation[:, :self.channels], modulation[:, self.channels:]
        return normalized * (1 + gamma) + beta


class FastSPADEShortcut(FastSPADE):
    """A residual block's learned shortcut, ``conv_s(norm_s(x, seg))`` with `conv_s` a 1x1
    convolution without bias, as one module: ``conv_s(IN(x) * (1 + gamma)) + P(actv)``,
    where P = conv_s after mlp_beta is one 3x3 convolution (kernels and bias multiplied
    through in float64): beta then costs out_channels, not in_channels, per pixel (in the
    last block 64 instead of 256 channels at 256x256)."""

    def __init__(self, spade: SPADE, projection: nn.Conv2d) -> None:
        super().__init__(spade)
        gamma, beta = spade.mlp_gamma, spade.mlp_beta
        self.projection = projection
        self.modulation = gamma
        proj = projection.weight.detach().double().flatten(1)  # (out, in)
        self.beta = nn.Conv2d(beta.in_channels, proj.shape[0], 3, padding=1,
                              dtype=beta.weight.dtype, device=beta.weight.device)
        with torch.no_grad():
            self.beta.weight.copy_(torch.einsum("om,mcij->ocij", proj, beta.weight.double()))
            self.beta.bias.copy_(proj @ beta.bias.double())

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        actv = self.activation(x.shape[2:], segmap)
        return self.projection(F.instance_norm(x) * (1 + self.modulation(actv))) \
            + self.beta(actv)


def _is_projection(conv: nn.Module) -> bool:
    return isinstance(conv, nn.Conv2d) and tuple(conv.kernel_size) == (1, 1) \
        and conv.bias is None and conv.groups == 1 and tuple(conv.stride) == (1, 1)


def fast_spade(module: nn.Module) -> int:
    """Replace every `SPADE` of `module` by its `FastSPADE`, and every residual block's
    learned shortcut by a `FastSPADEShortcut` (its ``conv_s`` then an identity), in place;
    returns how many SPADEs. Apply after `inference.plain_convolutions`."""
    count = 0
    for block in list(module.modules()):
        if isinstance(block, SPADEResnetBlock) and block.learned_shortcut \
                and isinstance(block.norm_s, SPADE) and _is_projection(block.conv_s):
            block.norm_s = FastSPADEShortcut(block.norm_s, block.conv_s)
            block.conv_s = nn.Identity()
            count += 1
    return count + replace_modules(module, lambda child: FastSPADE(child)
                                   if isinstance(child, SPADE) else None)

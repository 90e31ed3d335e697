"""The SPADE decoder G: warped 2D features -> the animated image at twice their
resolution x 4 (KwaiVGI/LivePortrait ``src/modules/spade_generator.py`` and the
``SPADE``/``SPADEResnetBlock`` of ``src/modules/util.py``).

A 3x3 convolution doubles the 256 channels, six SPADE residual blocks at 64x64, nearest 2x
upsampling, a block to 256 channels, upsampling, a block to 64 channels, LeakyReLU(0.2), a
3x3 convolution to 12 channels and a 2x pixel shuffle (``upscale`` 2: 512x512 RGB), sigmoid.
Every SPADE normalisation is a parameter-free instance norm of x modulated by
``1 + gamma`` and ``beta``, two 3x3 convolutions of a shared 3x3 convolution + ReLU (128
channels) of the decoder input resized (nearest) to x's size.

Spectral norm. The original wraps the residual blocks' convolutions in
``torch.nn.utils.spectral_norm``, so its state dict holds ``weight_orig`` (a parameter),
``weight_u`` and ``weight_v`` (buffers) instead of ``weight``. In eval mode PyTorch's hook
does no power iteration: before every forward it sets
``weight = weight_orig / sigma`` with ``sigma = dot(u, W_orig.flatten(1) @ v)``, the stored
u and v used as they are. `SpectralConv2d` stores the same three tensors under the same names
and computes exactly that (the same ``torch.mv`` and ``torch.dot``, then one division);
`effective_weight` is that weight, which `inference.plain_convolutions` bakes into a plain
convolution once instead of once per forward. The power iteration of training mode is not
implemented: these modules are for inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SPADE", "SPADEDecoder", "SPADEResnetBlock", "SpectralConv2d"]


class SpectralConv2d(nn.Module):
    """A convolution under eval-mode spectral normalisation (see the module docstring);
    keys ``weight_orig``, ``bias`` (if any), ``weight_u`` (out,), ``weight_v`` (in x k x k,)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 padding: int = 0, bias: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding = kernel_size, padding
        # bias first: the key order of the original's state dicts (spectral_norm re-adds
        # the weight as weight_orig after the convolution's bias)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels,
                                                    kernel_size, kernel_size))
        self.register_buffer("weight_u", torch.empty(out_channels))
        self.register_buffer("weight_v", torch.empty(in_channels * kernel_size**2))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Conv2d's initialisation; u and v random unit vectors (as spectral_norm's)."""
        nn.init.kaiming_uniform_(self.weight_orig, a=5**0.5)
        if self.bias is not None:
            bound = 1 / (self.weight_orig[0].numel() ** 0.5)
            nn.init.uniform_(self.bias, -bound, bound)
        with torch.no_grad():
            self.weight_u.copy_(F.normalize(torch.randn_like(self.weight_u), dim=0, eps=1e-12))
            self.weight_v.copy_(F.normalize(torch.randn_like(self.weight_v), dim=0, eps=1e-12))

    def effective_weight(self) -> torch.Tensor:
        """``weight_orig / dot(u, W v)``: the weight the original convolves with in eval mode."""
        matrix = self.weight_orig.flatten(1)
        sigma = torch.dot(self.weight_u, torch.mv(matrix, self.weight_v))
        return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, padding=self.padding)


class SPADE(nn.Module):
    """Spatially-adaptive normalisation (keys ``mlp_shared.0``, ``mlp_gamma``, ``mlp_beta``)."""

    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128) -> None:
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size=3, padding=1),
                                        nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x)
        if segmap.shape[2:] != x.shape[2:]:
            segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """Residual block of two SPADE-modulated 3x3 spectral-norm convolutions, with a SPADE +
    1x1 convolution shortcut where the width changes (keys ``conv_0``, ``conv_1``,
    ``conv_s``, ``norm_0``, ``norm_1``, ``norm_s``)."""

    def __init__(self, fin: int, fout: int, label_nc: int) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        middle = min(fin, fout)
        self.conv_0: nn.Module = SpectralConv2d(fin, middle, 3, padding=1)
        self.conv_1: nn.Module = SpectralConv2d(middle, fout, 3, padding=1)
        if self.learned_shortcut:
            self.conv_s: nn.Module = SpectralConv2d(fin, fout, 1, bias=False)
        self.norm_0 = SPADE(fin, label_nc)
        self.norm_1 = SPADE(middle, label_nc)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class SPADEDecoder(nn.Module):
    """G of the paper (keys ``fc``, ``G_middle_0..5``, ``up_0``, ``up_1``, ``conv_img``)."""

    def __init__(self, upscale: int = 1, max_features: int = 256, block_expansion: int = 64,
                 out_channels: int = 64, num_down_blocks: int = 2) -> None:
        super().__init__()
        width = min(max_features, block_expansion * 2**num_down_blocks)
        self.fc = nn.Conv2d(width, 2 * width, 3, padding=1)
        for i in range(6):
            self.add_module(f"G_middle_{i}", SPADEResnetBlock(2 * width, 2 * width, width))
        self.up_0 = SPADEResnetBlock(2 * width, width, width)
        self.up_1 = SPADEResnetBlock(width, out_channels, width)
        self.upscale = upscale
        if upscale is None or upscale <= 1:
            self.conv_img: nn.Module = nn.Conv2d(out_channels, 3, 3, padding=1)
        else:
            self.conv_img = nn.Sequential(nn.Conv2d(out_channels, 3 * 4, 3, padding=1),
                                          nn.PixelShuffle(2))

    def middle(self) -> list[SPADEResnetBlock]:
        """The six 64x64 blocks, in order."""
        return [getattr(self, f"G_middle_{i}") for i in range(6)]

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """(B, 256, 64, 64) -> (B, 3, 512, 512) in [0, 1] (upscale 2)."""
        x = self.fc(feature)
        for block in self.middle():
            x = block(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2.0), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2.0), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))

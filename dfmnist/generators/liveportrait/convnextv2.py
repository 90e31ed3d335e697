"""The ConvNeXt V2 backbone of the motion extractor, with its seven regression heads.

After KwaiVGI/LivePortrait ``src/modules/convnextv2.py`` (itself after Woo et al., ConvNeXt
V2, CVPR 2023): a 4x4 stride-4 stem, four stages of blocks (7x7 depthwise convolution,
LayerNorm over channels, 4x pointwise expansion, exact-erf GELU, global response
normalisation, pointwise projection, residual), 2x2 stride-2 downsampling between stages,
global average pooling and a final LayerNorm, then linear heads: canonical keypoints
(3 x num_kp), scale (1), pitch/yaw/roll (num_bins each), translation (3), expression
(3 x num_kp). Stochastic depth is training-only and absent here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ChannelsFirstLayerNorm", "ConvNeXtBlock", "ConvNeXtV2", "GlobalResponseNorm"]


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of (N, C, H, W), written out as the original computes it:
    ``(x - mean) / sqrt(var + eps)`` with the biased variance, then the affine map."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GlobalResponseNorm(nn.Module):
    """GRN on (N, H, W, C): ``gamma * (x * n) + beta + x`` where n is each channel's spatial
    L2 norm divided by its mean over channels (+1e-6)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        norm = norm / (norm.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * norm) + self.beta + x


class ConvNeXtBlock(nn.Module):
    """One ConvNeXt V2 block (keys ``dwconv``, ``norm``, ``pwconv1``, ``grn``, ``pwconv2``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GlobalResponseNorm(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # channels last for the per-pixel layers
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    """Backbone and heads (keys ``downsample_layers``, ``stages``, ``norm``, ``fc_*``).

    `forward` returns the raw head outputs as a dict with the original's names: 'kp'
    (N, 3K), 'pitch'/'yaw'/'roll' (N, num_bins) logits, 't' (N, 3), 'exp' (N, 3K),
    'scale' (N, 1).
    """

    def __init__(self, in_chans: int = 3, depths: Sequence[int] = (3, 3, 9, 3),
                 dims: Sequence[int] = (96, 192, 384, 768), num_kp: int = 24,
                 num_bins: int = 66) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4),
            ChannelsFirstLayerNorm(dims[0]))])
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                ChannelsFirstLayerNorm(dims[i]),
                nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList(nn.Sequential(*(ConvNeXtBlock(dims[i])
                                                    for _ in range(depths[i])))
                                    for i in range(4))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        width = dims[-1]
        self.fc_kp = nn.Linear(width, 3 * num_kp)
        self.fc_scale = nn.Linear(width, 1)
        self.fc_pitch = nn.Linear(width, num_bins)
        self.fc_yaw = nn.Linear(width, num_bins)
        self.fc_roll = nn.Linear(width, num_bins)
        self.fc_t = nn.Linear(width, 3)
        self.fc_exp = nn.Linear(width, 3 * num_kp)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> pooled, normalised features (N, dims[-1])."""
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        return self.norm(x.mean([-2, -1]))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(x)
        return {"pitch": self.fc_pitch(f), "yaw": self.fc_yaw(f), "roll": self.fc_roll(f),
                "t": self.fc_t(f), "exp": self.fc_exp(f), "scale": self.fc_scale(f),
                "kp": self.fc_kp(f)}

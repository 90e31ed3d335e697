"""IAE's intermediate networks: dense layers between the shared encoder and the shared
decoder. IAE has three: one per identity and one for both; the decoder reads one identity's
output beside the shared one's, concatenated along the channels."""

from __future__ import annotations

import torch
from torch import nn

from dfmnist.faceswap.blocks import DenseBottleneck


class Intermediate(nn.Module):
    """Flat encoder features (N, F) -> a (N, channels, side, side) map via a dense bottleneck."""

    def __init__(self, in_features: int, dim: int, side: int, channels: int) -> None:
        super().__init__()
        self.dense = DenseBottleneck(in_features, dim, side, channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dense(features)

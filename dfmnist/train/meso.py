"""MesoInception-4 (Afchar et al., 2018): a compact face-forgery detector for 256x256 frames."""

from __future__ import annotations

import torch
from torch import nn


class InceptionLayer(nn.Module):
    """Four parallel branches (1x1; 1x1-3x3; 1x1-3x3 dilated 2; 1x1-3x3 dilated 3), concatenated."""

    def __init__(self, in_ch: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()
        self.branch_a = nn.Conv2d(in_ch, a, 1)
        self.branch_b = nn.Sequential(nn.Conv2d(in_ch, b, 1), nn.ReLU(inplace=True),
                                      nn.Conv2d(b, b, 3, padding=1))
        self.branch_c = nn.Sequential(nn.Conv2d(in_ch, c, 1), nn.ReLU(inplace=True),
                                      nn.Conv2d(c, c, 3, padding=2, dilation=2))
        self.branch_d = nn.Sequential(nn.Conv2d(in_ch, d, 1), nn.ReLU(inplace=True),
                                      nn.Conv2d(d, d, 3, padding=3, dilation=3))
        self.out_channels = a + b + c + d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([self.branch_a(x), self.branch_b(x), self.branch_c(x),
                         self.branch_d(x)], dim=1)
        return torch.relu(out)


class MesoInception4(nn.Module):
    """Two inception layers, two 5x5 convolutions, a 16-unit hidden layer and one logit.

    The logit's sigmoid is the probability that the frame is real (the paper's positive class).
    """

    input_size = 256

    def __init__(self, input_size: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        inc1 = InceptionLayer(3, 1, 4, 4, 2)
        inc2 = InceptionLayer(inc1.out_channels, 2, 4, 4, 2)
        self.features = nn.Sequential(
            inc1, nn.BatchNorm2d(inc1.out_channels), nn.MaxPool2d(2, 2),
            inc2, nn.BatchNorm2d(inc2.out_channels), nn.MaxPool2d(2, 2),
            nn.Conv2d(inc2.out_channels, 16, 5, padding=2), nn.ReLU(inplace=True),
            nn.BatchNorm2d(16), nn.MaxPool2d(2, 2),
            nn.Conv2d(16, 16, 5, padding=2), nn.ReLU(inplace=True),
            nn.BatchNorm2d(16), nn.MaxPool2d(4, 4),
        )
        side = input_size // 32
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(16 * side * side, 16),
            nn.LeakyReLU(0.1), nn.Dropout(dropout), nn.Linear(16, 1),
        )
        self.input_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(1)

    def cam_layer(self) -> nn.Module:
        """The last convolutional block, for class activation maps."""
        return self.features

"""Xception (Chollet, 2017): depthwise-separable convolutions with residual connections.

Written here from the paper's description: entry flow (two plain convolutions and three
downsampling blocks), middle flow (eight 728-channel blocks), exit flow, global average pooling
and one logit. Parameter names follow the common ImageNet checkpoints' layout (conv1, bn1, ...,
block1..block12, conv3, bn3, conv4, bn4, fc) so a user's local ImageNet file can be loaded.
"""

from __future__ import annotations

import torch
from torch import nn


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, no bias (a batch norm follows)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """`reps` (ReLU, separable conv, BN) units, optional 3x3/2 max pool, and a shortcut."""

    def __init__(self, in_ch: int, out_ch: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True) -> None:
        super().__init__()
        if out_ch != in_ch or stride != 1:
            self.skip = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(out_ch)
        else:
            self.skip = None
        widths = []
        ch = in_ch
        if grow_first:
            widths.append((in_ch, out_ch))
            ch = out_ch
        widths += [(ch, ch)] * (reps - 1)
        if not grow_first:
            widths.append((in_ch, out_ch))
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(widths):
            if i > 0 or start_with_relu:
                layers.append(nn.ReLU(inplace=False))
            layers += [SeparableConv2d(a, b), nn.BatchNorm2d(b)]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, padding=1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + shortcut


class Xception(nn.Module):
    """Xception with one logit (real); 256x256 input as in the paper (any size >= 71 works)."""

    input_size = 256

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, stride=2, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.block1 = Block(64, 128, 2, 2, start_with_relu=False)
        self.block2 = Block(128, 256, 2, 2)
        self.block3 = Block(256, 728, 2, 2)
        for i in range(4, 12):
            setattr(self, f"block{i}", Block(728, 728, 3, 1))
        self.block12 = Block(728, 1024, 2, 2, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536)
        self.bn3 = nn.BatchNorm2d(1536)
        self.conv4 = SeparableConv2d(1536, 2048)
        self.bn4 = nn.BatchNorm2d(2048)
        self.act4 = nn.ReLU()
        self.fc = nn.Linear(2048, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        for i in range(1, 13):
            x = getattr(self, f"block{i}")(x)
        x = torch.relu(self.bn3(self.conv3(x)))
        return self.act4(self.bn4(self.conv4(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.features(x).mean(dim=(2, 3))
        return self.fc(pooled).squeeze(1)

    def head(self) -> nn.Module:
        return self.fc

    def cam_layer(self) -> nn.Module:
        return self.act4

    def load_imagenet(self, state: dict) -> list[str]:
        """ImageNet weights (same parameter layout), all but the classifier head."""
        own = self.state_dict()
        renamed = {k.replace("last_linear.", "fc."): v for k, v in state.items()}
        usable = {k: v for k, v in renamed.items()
                  if k in own and not k.startswith("fc.") and v.shape == own[k].shape}
        self.load_state_dict(usable, strict=False)
        return sorted(set(own) - set(usable))

"""ResNet-50/101/152 detectors: torchvision architectures (no weights downloaded), one logit."""

from __future__ import annotations

import torch
import torchvision.models as tvm
from torch import nn

ARCHS = {"resnet50": tvm.resnet50, "resnet101": tvm.resnet101, "resnet152": tvm.resnet152}


class ResNetDetector(nn.Module):
    """A torchvision ResNet whose 1000-way ImageNet head is replaced by one logit (real)."""

    input_size = 224

    def __init__(self, depth: str = "resnet50") -> None:
        super().__init__()
        if depth not in ARCHS:
            raise ValueError(f"unknown ResNet {depth!r} (known: {', '.join(ARCHS)})")
        self.backbone = ARCHS[depth](weights=None)
        self.backbone.fc = nn.Linear(self.backbone.fc.in_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x).squeeze(1)

    def head(self) -> nn.Module:
        return self.backbone.fc

    def cam_layer(self) -> nn.Module:
        return self.backbone.layer4

    def load_imagenet(self, state: dict) -> list[str]:
        """ImageNet weights from a torchvision state dict, all but the classifier head.

        Returns the keys left at their initial values.
        """
        own = self.backbone.state_dict()
        usable = {k: v for k, v in state.items()
                  if k in own and not k.startswith("fc.") and v.shape == own[k].shape}
        self.backbone.load_state_dict(usable, strict=False)
        return sorted(set(own) - set(usable))

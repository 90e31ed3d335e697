"""EfficientNet-B4 detector (Bonettini et al., ICPR 2020): torchvision's architecture built without
weights, its 1000-way ImageNet head replaced by one logit (real)."""

from __future__ import annotations

import torch
import torchvision.models as tvm
from torch import nn

#: Width of B4's last feature map (the pooled embedding the head and the triplet loss see).
B4_FEATURES = 1792


class EfficientNetB4(nn.Module):
    """EfficientNet-B4 with global average pooling, dropout 0.4 (B4's own) and one logit.

    The attribute names follow torchvision's model (`features`, `classifier.1`) so that a
    torchvision ImageNet state dict loads by name.
    """

    input_size = 224
    #: Parameter-name prefixes that are new in this detector, never in an ImageNet file.
    FRESH: tuple[str, ...] = ("classifier.",)

    def __init__(self) -> None:
        super().__init__()
        reference = tvm.efficientnet_b4(weights=None)
        self.features = reference.features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=0.4), nn.Linear(B4_FEATURES, 1))

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature maps (N, 1792, H/32, W/32)."""
        return self.features(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled 1792-d embedding of each image."""
        return self.pool(self.feature_maps(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x)).squeeze(1)

    def head(self) -> nn.Module:
        return self.classifier

    def cam_layer(self) -> nn.Module:
        """The 1x1 convolution before pooling: its maps times the head's weights are the CAM."""
        return self.features[-1]

    def load_imagenet(self, state: dict) -> list[str]:
        """ImageNet weights from a torchvision state dict, all but the classifier head.

        Returns the keys left at their initial values.
        """
        own = self.state_dict()
        usable = {k: v for k, v in state.items()
                  if k in own and not k.startswith(self.FRESH) and v.shape == own[k].shape}
        self.load_state_dict(usable, strict=False)
        return sorted(set(own) - set(usable))

"""DMA-STA (Jia, Li, Lyu, ICIP 2022): deepfake model attribution by spatial and temporal attention,
and the frame-level baseline it is compared with.

The frame encoder is a torchvision ResNet (no weights downloaded) whose every residual block
gates its output, before the shortcut is added, by a spatial attention map (CBAM's spatial
gate: the channel mean and maximum at each location, a 7x7 convolution, a sigmoid). Each
frame of a clip is encoded to its pooled feature vector; the temporal attention reads each
frame's mean feature, passes the clip's T values through T -> T/2 -> T fully connected layers
(ReLU, then sigmoid) and the clip's feature is the attention-weighted mean of its frames'
features (weights normalised to sum to 1); a linear layer gives one logit per class.
These shapes follow the authors' release (github.com/shanface33/Deepfake_Model_Attribution,
models/DMA_STA.py): 10-frame clips, the gate in every bottleneck, the 10 -> 5 -> 10 layers.
"""

from __future__ import annotations

import torch
import torchvision.models as tvm
from torch import nn

from dfmnist.train.models import IMAGENET_MEAN, IMAGENET_STD, Normalize

#: Frame encoders: the paper's ResNet-50, and ResNet-18 for CPU demos (both torchvision's
#: layouts: block type and blocks per stage).
BACKBONES = {
    "resnet50": (tvm.resnet.Bottleneck, [3, 4, 6, 3]),
    "resnet18": (tvm.resnet.BasicBlock, [2, 2, 2, 2]),
}
#: Clip length of the authors' release (its temporal attention is built for 10 frames).
CLIP_LENGTH = 10


class SpatialAttention(nn.Module):
    """A gate in (0, 1) per location: sigmoid(conv([mean over channels, max over channels]))."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))  # (N, 1, H, W)


class GatedResidual:
    """A torchvision residual block whose residual branch (`branch`) is multiplied by a spatial
    attention gate before the shortcut is added (DMA-STA's spatial attention)."""

    def gated_init(self) -> None:
        self.sa = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.branch(x)
        return self.relu(out * self.sa(out) + shortcut)


class GatedBottleneck(GatedResidual, tvm.resnet.Bottleneck):
    """torchvision's bottleneck with its residual branch gated by spatial attention."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gated_init()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class GatedBasicBlock(GatedResidual, tvm.resnet.BasicBlock):
    """torchvision's basic block with its residual branch gated by spatial attention."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gated_init()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


GATED = {tvm.resnet.Bottleneck: GatedBottleneck, tvm.resnet.BasicBlock: GatedBasicBlock}


class TemporalAttention(nn.Module):
    """Frame weights of a clip from each frame's mean feature: T -> T/2 -> T, ReLU, sigmoid,
    normalised to sum to 1 over the clip."""

    def __init__(self, clip_length: int) -> None:
        super().__init__()
        hidden = max(1, clip_length // 2)
        self.fc = nn.Sequential(nn.Linear(clip_length, hidden, bias=False), nn.ReLU(),
                                nn.Linear(hidden, clip_length, bias=False), nn.Sigmoid())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, T, D) frame features -> (N, T) weights summing to 1 per clip."""
        gate = self.fc(features.mean(dim=2))
        return gate / gate.sum(dim=1, keepdim=True)


def resnet_encoder(backbone: str, gated: bool) -> nn.Module:
    """A torchvision ResNet without its classifier (pooled features out), no weights."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r} (known: {', '.join(BACKBONES)})")
    block, layers = BACKBONES[backbone]
    net = tvm.resnet.ResNet(GATED[block] if gated else block, layers)
    net.feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net


def load_encoder_weights(encoder: nn.Module, state: dict) -> list[str]:
    """A torchvision ImageNet state dict into `encoder` (the classifier skipped); returns the
    keys left initial (the attention gates), and raises if any of the ResNet's own are."""
    own = encoder.state_dict()
    usable = {k: v for k, v in state.items()
              if k in own and not k.startswith("fc.") and v.shape == own[k].shape}
    encoder.load_state_dict(usable, strict=False)
    missing = sorted(set(own) - set(usable))
    body = [k for k in missing if ".sa." not in k]
    if body:
        raise ValueError(f"{len(body)} parameters of the ResNet are not in the ImageNet file "
                         f"(e.g. {', '.join(body[:3])})")
    return missing


class DMASTA(nn.Module):
    """Clips (N, T, 3, S, S) in [0, 1] -> class logits (N, classes). `mean`/`std` normalise
    the frames (ImageNet's by default; the authors' recipe uses DFDM's)."""

    def __init__(self, num_classes: int, clip_length: int = CLIP_LENGTH,
                 backbone: str = "resnet50", mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD) -> None:
        super().__init__()
        self.clip_length = int(clip_length)
        self.normalize = Normalize(mean, std)
        self.encoder = resnet_encoder(backbone, gated=True)
        self.temporal = TemporalAttention(self.clip_length)
        self.fc = nn.Linear(self.encoder.feature_dim, num_classes)

    def frame_features(self, clips: torch.Tensor) -> torch.Tensor:
        n, t = clips.shape[:2]
        if t != self.clip_length:
            raise ValueError(f"clips of {t} frames given to a {self.clip_length}-frame DMA-STA")
        frames = self.normalize(clips.flatten(0, 1))
        return self.encoder(frames).view(n, t, -1)  # (N, T, D)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        features = self.frame_features(clips)
        weights = self.temporal(features)
        return self.fc((weights.unsqueeze(2) * features).sum(dim=1))

    def temporal_weights(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, T) weights of each frame in its clip's feature."""
        return self.temporal(self.frame_features(clips))

    def spatial_maps(self, clips: torch.Tensor) -> list[torch.Tensor]:
        """Every block's spatial gate over the clip's frames, (N*T, 1, h, w) each, in order."""
        maps: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda _m, _i, out: maps.append(out.detach()))
                 for m in self.encoder.modules() if isinstance(m, SpatialAttention)]
        try:
            self.frame_features(clips)
        finally:
            for hook in hooks:
                hook.remove()
        return maps

    def load_imagenet(self, state: dict) -> list[str]:
        return load_encoder_weights(self.encoder, state)


class FrameClassifier(nn.Module):
    """The baseline: a plain torchvision ResNet, frames (N, 3, S, S) -> class logits."""

    def __init__(self, num_classes: int, backbone: str = "resnet50",
                 mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.encoder = resnet_encoder(backbone, gated=False)
        self.fc = nn.Linear(self.encoder.feature_dim, num_classes)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encoder(self.normalize(frames)))

    def load_imagenet(self, state: dict) -> list[str]:
        return load_encoder_weights(self.encoder, state)

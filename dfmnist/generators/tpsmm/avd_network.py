"""Animation-via-disentanglement network: driving pose on the source's identity.

As ``modules/avd_network.py`` of https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model
(``AVDNetwork``): two MLP encoders of the flattened keypoints, ``pose_encoder`` (driving) and
``id_encoder`` (source), each 4 linear layers (widths 256, 512, 1024, then the bottleneck)
with batch norm and ReLU between them, and a ``decoder`` MLP (1024, 512, 256, then the
keypoints) of the concatenated [pose, identity] codes. Used by the original ``demo.py`` in
its ``avd`` mode. The module indices of the ``nn.Sequential`` stacks (0, 1, 3, 4, 6, 7, 9)
are the original's state-dict keys.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AVDNetwork", "mlp"]


def mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers between consecutive `widths`, each but the last followed by
    ``BatchNorm1d`` and ReLU."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(widths) - 2:
            layers += [nn.BatchNorm1d(n_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class AVDNetwork(nn.Module):
    """Keypoints (B, num_tps * 5, 2) with the driving pose and the source identity."""

    def __init__(self, num_tps: int, id_bottle_size: int = 64, pose_bottle_size: int = 64) -> None:
        super().__init__()
        self.num_tps = int(num_tps)
        size = self.num_tps * 5 * 2
        self.id_encoder = mlp([size, 256, 512, 1024, id_bottle_size])
        self.pose_encoder = mlp([size, 256, 512, 1024, pose_bottle_size])
        self.decoder = mlp([pose_bottle_size + id_bottle_size, 1024, 512, 256, size])

    def forward(self, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        """`kp_driving` (B, K, 2) re-posed onto the identity of `kp_source` (B or 1, K, 2)."""
        batch = kp_driving.shape[0]
        if kp_source.shape[0] != batch:
            kp_source = kp_source.expand(batch, -1, -1)
        pose = self.pose_encoder(kp_driving.reshape(batch, -1))
        identity = self.id_encoder(kp_source.reshape(batch, -1))
        return self.decoder(torch.cat([pose, identity], dim=1)).view(batch, -1, 2)

"""Winograd 3x3 convolutions: the direct convolution's function, on features of a real face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dfmnist.generators.fomm.winograd import (
    TILES,
    WinogradConv2d,
    winograd_convolutions,
    winograd_matrices,
)

from numerics import FLOAT64_EXACT, MARGIN, assert_float64_equal

pytestmark = pytest.mark.numerics  # .ci/run runs these again on AVX2

#: float32's unit roundoff: every float32 operation's relative error is at most this.
UNIT_ROUNDOFF = 2.0**-24


def face_features(astronaut, channels: int, size: tuple[int, int], batch: int,
                  dtype: torch.dtype) -> torch.Tensor:
    """(batch, channels, h, w): ReLU features of the astronaut's face (and shifted crops of
    it) under a seeded random 3x3 convolution, like the activations a network sees."""
    h, w = size
    crops = [cv2.resize(astronaut[20 + 9 * i:200 + 9 * i, 120:300], (w, h),
                        interpolation=cv2.INTER_AREA) for i in range(batch)]
    image = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)
    image = image.to(torch.float64) / 255.0
    generator = torch.Generator().manual_seed(7)
    lift = torch.randn(channels, 3, 3, 3, generator=generator, dtype=torch.float64) * 0.5
    return F.relu(F.conv2d(image, lift, padding=1)).to(dtype)


def seeded_conv(channels_in: int, channels_out: int, dtype: torch.dtype) -> nn.Conv2d:
    torch.manual_seed(3)
    return nn.Conv2d(channels_in, channels_out, 3, padding=1).to(dtype)


def test_matrices_reconstruct_the_correlation() -> None:
    """A^T [(G g) * (B^T d)] = the 'valid' correlation of d with g, in one dimension, for
    random d and g: the transforms are right before any 2-D use."""
    rng = torch.Generator().manual_seed(0)
    for tile in TILES:
        b_t, g_mat, a_t = winograd_matrices(tile)
        d = torch.randn(tile + 2, generator=rng, dtype=torch.float64)
        g = torch.randn(3, generator=rng, dtype=torch.float64)
        direct = torch.stack([d[i:i + 3] @ g for i in range(tile)])
        assert_float64_equal(a_t @ ((g_mat @ g) * (b_t @ d)), direct, f"F({tile}, 3)")
    with pytest.raises(ValueError, match="tile must be one of"):
        winograd_matrices(3)


@pytest.mark.parametrize("tile", TILES)
def test_float64_equals_the_direct_convolution(astronaut, tile: int) -> None:
    """Exact in real arithmetic: in float64 within 1e-12 of F.conv2d, on even and odd sizes
    (partial border tiles), both memory formats, and a batch split into several chunks."""
    conv = seeded_conv(16, 24, torch.float64)
    fast = WinogradConv2d(conv, tile=tile, chunk_bytes=1)  # one band of tiles per chunk
    for size in ((32, 32), (37, 29), (2, 3), (1, 1)):  # down to maps smaller than a tile
        x = face_features(astronaut, 16, size, 3, torch.float64)
        for fmt in (torch.contiguous_format, torch.channels_last):
            with torch.inference_mode():
                expected, got = conv(x), fast(x.contiguous(memory_format=fmt))
            assert got.shape == expected.shape == (3, 24, *size)
            assert got.is_contiguous(memory_format=torch.channels_last)
            assert (got - expected).abs().max() < FLOAT64_EXACT * expected.abs().max()
            assert expected.std() > 0.05


def float32_error_bound(conv64: nn.Conv2d, x64: torch.Tensor) -> torch.Tensor:
    """The worst-case float32 error of any direct evaluation of the convolution, whatever its
    summation order (Higham, Accuracy and Stability of Numerical Algorithms, eq. 3.5):
    |fl(w . x) - w . x| <= gamma_n |w| . |x|, gamma_n = n u / (1 - n u), n the terms per output
    (C 3 3 products and the bias), plus rounding the inputs to float32 (2 u |w| . |x|)."""
    n = conv64.in_channels * 9 + 1
    gamma = (n + 2) * UNIT_ROUNDOFF / (1 - (n + 2) * UNIT_ROUNDOFF)
    magnitude = F.conv2d(x64.abs(), conv64.weight.abs(), conv64.bias.abs(), padding=1)
    return gamma * magnitude


def test_float32_error_against_float64(astronaut) -> None:
    """In float32, oneDNN's direct kernel stays inside the worst-case bound of any summation
    order; F(2x2) is about as accurate as the direct kernel (measured 0.3x its error on AMD
    AVX-512 and AVX2), F(4x4) several times less (measured 6x)."""
    conv64 = seeded_conv(256, 256, torch.float64)
    x64 = face_features(astronaut, 256, (32, 32), 2, torch.float64)
    with torch.inference_mode():
        exact = conv64(x64)
        conv32 = seeded_conv(256, 256, torch.float32)
        x32 = x64.float().contiguous(memory_format=torch.channels_last)
        direct_out = conv32.to(memory_format=torch.channels_last)(x32).double()
        direct = float((direct_out - exact).abs().max())
        errors = {tile: float((WinogradConv2d(conv32, tile=tile)(x32).double() - exact)
                              .abs().max()) for tile in TILES}
        assert bool(((direct_out - exact).abs() <= float32_error_bound(conv64, x64)).all())
    # Winograd's transforms add rounding of their own (entries up to 1 for F(2x2), up to 8
    # and 1/24 for F(4x4)): bounded in units of the direct kernel's error on this machine,
    # with tests/numerics' margin over what was measured (0.3x and 6x)
    assert errors[2] < MARGIN * direct
    assert errors[4] < MARGIN * 6 * direct
    assert errors[4] > errors[2]  # the larger tile trades accuracy for speed


def test_only_plain_wide_3x3_convolutions_are_replaced() -> None:
    """Stride, padding, groups, kernel size and width decide; the replaced modules keep
    computing their convolution."""
    model = nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1),                 # replaced
        nn.Conv2d(8, 8, 3, padding=1, stride=2),       # strided
        nn.Conv2d(8, 8, 5, padding=2),                 # 5x5
        nn.Conv2d(8, 8, 3, padding=1, groups=2),       # grouped
        nn.Conv2d(8, 4, 3, padding=1),                 # narrower than min_channels
    ).double()
    x = torch.rand(1, 8, 12, 12, dtype=torch.float64)
    expected = model(x)
    assert winograd_convolutions(model, tile=2, min_channels=8) == 1
    assert isinstance(model[0], WinogradConv2d)
    assert all(isinstance(m, nn.Conv2d) for m in list(model)[1:])
    assert_float64_equal(model(x), expected, "after replacement")
    for bad in (nn.Conv2d(4, 4, 3, padding=1, stride=2), nn.Conv2d(4, 4, 3, padding=0),
                nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.Conv2d(4, 4, 1)):
        with pytest.raises(ValueError, match="3x3 convolution with stride 1"):
            WinogradConv2d(bad)


def test_matmul_fallback_gives_the_same_products(astronaut) -> None:
    """Without oneDNN's linear operator the products go through torch.matmul: same result up
    to float32 rounding (as close to float64 as the direct kernel, tests/numerics)."""
    conv = seeded_conv(64, 32, torch.float32)
    x64 = face_features(astronaut, 64, (21, 30), 2, torch.float64)
    x = x64.float()
    onednn, fallback = WinogradConv2d(conv), WinogradConv2d(conv)
    fallback._onednn = False
    with torch.inference_mode():
        exact = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
        direct = float((conv(x).double() - exact).abs().max())
        a, b = onednn(x), fallback(x)
    assert float((a.double() - exact).abs().max()) < MARGIN * direct
    assert float((b.double() - exact).abs().max()) < MARGIN * direct

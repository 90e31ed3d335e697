"""FOMM's parts: the demo's relative keypoint and movement-scale formulas, the sub-pixel and
row-split rewrites of its convolutions (the same function in float64), and which convolutions
run as Winograd's by default."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
import torch

from dfmnist.generators.fomm import (
    FommGenerator,
    Keypoints,
    adapt_movement_scale,
    build_networks,
    hull_area,
    relative_keypoints,
)
from dfmnist.generators.fomm.blocks import ConvBlock
from dfmnist.generators.fomm.inference import RowSplitConv, SubpixelUpBlock
from dfmnist.generators.fomm.winograd import WinogradConv2d

from fomm_small import SIZE, to_batch
from numerics import assert_float64_equal

pytestmark = pytest.mark.numerics  # .ci/run runs these again on AVX2


def test_relative_keypoints_follow_the_demo_formulas() -> None:
    g = torch.Generator().manual_seed(0)

    def kps(n: int) -> Keypoints:  # float64: the formulas are checked, not float32 rounding
        jac = torch.eye(2, dtype=torch.float64) + 0.2 * torch.randn(
            n, 10, 2, 2, generator=g, dtype=torch.float64)
        return Keypoints(torch.rand(n, 10, 2, generator=g, dtype=torch.float64) * 2 - 1, jac)

    src, init, drv = kps(1), kps(1), kps(3)
    out = relative_keypoints(src, drv, init, scale=0.7)
    assert_float64_equal(out.value, src.value + 0.7 * (drv.value - init.value), "values")
    s, i, d = (k.jacobian.numpy() for k in (src, init, drv))
    assert_float64_equal(out.jacobian, d @ np.linalg.inv(i) @ s, "jacobians")
    same = relative_keypoints(src, init, init)
    assert_float64_equal(same.value, src.value, "still values")
    assert_float64_equal(same.jacobian, src.jacobian, "still jacobians")
    assert relative_keypoints(src, drv, init, relative=False) is drv


def test_hull_area_and_movement_scale() -> None:
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [1, 0.5]])
    assert hull_area(square) == pytest.approx(4.0)
    assert hull_area(np.array([[0, 0], [1, 1], [2, 2]])) == 0.0  # collinear
    assert hull_area(np.array([[0, 0], [0, 0], [1, 0]])) == 0.0
    assert adapt_movement_scale(square * 0.5, square) == pytest.approx(0.5)
    assert adapt_movement_scale(square, np.zeros((4, 2))) == 1.0
    points = np.random.default_rng(0).uniform(-1, 1, (10, 2))
    try:
        from scipy.spatial import ConvexHull
    except ImportError:  # scipy is optional; the square checks above still ran
        return
    assert hull_area(points) == pytest.approx(ConvexHull(points).volume, rel=1e-12)


def test_subpixel_block_equals_upsample_then_conv(faces) -> None:
    """The 2x2-per-phase form of nearest-2x + 3x3 conv + BN + ReLU, on a real face, odd and
    even sizes (border phases), both memory formats: the same function (float64)."""
    torch.manual_seed(5)
    block = ConvBlock(3, 8, 3, resample="up").eval().double()
    with torch.no_grad():
        block.norm.running_mean.normal_(0.0, 0.1)
        block.norm.running_var.uniform_(0.5, 2.0)
    fast = SubpixelUpBlock(copy.deepcopy(block))
    for size in (SIZE, 37):
        image = to_batch(cv2.resize(faces[0], (size, size))[None]).double()
        for fmt in (torch.contiguous_format, torch.channels_last):
            x = image.contiguous(memory_format=fmt)
            with torch.inference_mode():
                expected, got = block(x), fast(x)
            assert got.shape == expected.shape == (1, 8, 2 * size, 2 * size)
            assert_float64_equal(got, expected, f"{size} {fmt}")
            assert expected.std() > 0.01
    with pytest.raises(ValueError, match="3x3 conv"):
        SubpixelUpBlock(ConvBlock(3, 8, 5, resample="up"))


def test_row_split_conv_equals_the_convolution(faces) -> None:
    """A 7x7 convolution to 3 channels as per-row 1x7 responses summed over row shifts: the
    same function (float64, 1e-12) on a real face, odd sizes, both memory formats."""
    torch.manual_seed(6)
    conv = torch.nn.Conv2d(3, 3, 7, padding=3).double()
    fast = RowSplitConv(conv)
    for size in (SIZE, 37):
        image = to_batch(cv2.resize(faces[0], (size, 29))[None]).double()
        for fmt in (torch.contiguous_format, torch.channels_last):
            with torch.inference_mode():
                expected, got = conv(image), fast(image.contiguous(memory_format=fmt))
            assert got.shape == expected.shape == (1, 3, 29, size)
            assert_float64_equal(got, expected, f"{size} {fmt}")
    with pytest.raises(ValueError, match="odd square kernel"):
        RowSplitConv(torch.nn.Conv2d(3, 3, 7, padding=3, stride=2))


def test_winograd_defaults_on_the_cpu() -> None:
    """vox-256 on the CPU: the bottleneck's twelve 256-channel convolutions and the wide
    encoder convolutions (128+ channels) run as F(2x2, 3x3); `winograd=0` keeps them direct."""
    kp_detector, generator = build_networks("vox-256", align_corners=False)
    fomm = FommGenerator.from_networks(kp_detector, generator)
    assert fomm.winograd == 2
    names = [name for net in fomm.networks() for name, m in net.named_modules()
             if isinstance(m, WinogradConv2d)]
    assert sum(name.startswith("bottleneck.") for name in names) == 12
    assert all(m.tile == 2 for net in fomm.networks() for m in net.modules()
               if isinstance(m, WinogradConv2d))
    assert len(names) == 20  # + down blocks of 128 channels or more: 3 kp, 4 motion, 1 encoder
    direct = FommGenerator.from_networks(kp_detector, generator, winograd=0)
    assert not any(isinstance(m, WinogradConv2d) for net in direct.networks()
                   for m in net.modules())
    with pytest.raises(ValueError, match="winograd must be 0 or one of"):
        FommGenerator.from_networks(kp_detector, generator, winograd=3)

"""Bonettini et al.'s published detectors: strict loading through the key map, sha256 checks,
efficientnet_pytorch's padding and eps, and the original's score conventions.

The comparison with the original code itself is tests/test_published_original.py (it needs a
checkout of polimi-ispl/icpr2020dfdc and efficientnet_pytorch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dfmnist.train import load_published
from dfmnist.train.efficientnet import EfficientNetB4
from dfmnist.train.published.detector import (
    build_published,
    fuse_logits,
    named_sha256,
    to_original_state,
    video_logit,
)
from dfmnist.train.published.keys import key_map
from dfmnist.train.published.same_padding import match_efficientnet_pytorch, same_pads

from published_weights import ARCHS, face_batch, random_published, save_original

#: The original's state dict sizes (architectures/fornet.py on efficientnet_pytorch, B4):
#: tensors and parameters per class.
ORIGINAL_SIZES = {"EfficientNetB4": (706, 17_550_409), "EfficientNetAutoAttB4": (708, 17_550_466),
                  "EfficientNetB4ST": (713, 17_555_786),
                  "EfficientNetAutoAttB4ST": (715, 17_555_843)}


@pytest.fixture(scope="module")
def face_tensors(astronaut, grace_hopper) -> torch.Tensor:
    return face_batch(astronaut, grace_hopper)


@pytest.mark.parametrize("arch", ARCHS)
def test_key_map_names_every_tensor_once(arch):
    model = build_published(arch)
    ours = model.network.state_dict()
    keys = key_map(arch)
    assert sorted(keys.values()) == sorted(ours)  # a bijection onto our tensors
    count, params = ORIGINAL_SIZES[arch]
    assert len(keys) == count
    assert sum(p.numel() for p in model.parameters()) == params


def test_same_padding_follows_tensorflow_and_each_library_release():
    # TensorFlow's "same": total = max((ceil(i/s) - 1) * s + k - i, 0), the odd pixel after
    assert same_pads(3, 2, 380) == (0, 1)
    assert same_pads(5, 2, 95) == (2, 2)
    assert same_pads(5, 2, 380) == (1, 2)
    assert same_pads(3, 1, 57) == (1, 1) and same_pads(1, 1, 7) == (0, 0)
    # the asymmetric convolutions of B4 in efficientnet_pytorch 0.6.3 and 0.7.1, read from
    # their modules: stem, blocks 2, 6 (0.6.3 only), 10 and 22 (spatial conv indices 0, 3, 7,
    # 11, 23)
    for rule, expected in (("0.6", [(0, (0, 1)), (3, (0, 1)), (7, (1, 2)), (11, (0, 1)),
                                     (23, (1, 2))]),
                           ("0.7", [(0, (0, 1)), (3, (0, 1)), (11, (0, 1)), (23, (1, 2))])):
        features = EfficientNetB4().features
        changed = match_efficientnet_pytorch(features, rule)
        assert [(i, pads[:2]) for i, _, _, pads in changed] == expected
        norms = [m for m in features.modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms and all(m.eps == 1e-3 for m in norms)


def test_the_rules_change_the_logits(face_tensors):
    """Same weights, other padding: the two library releases disagree, so the rule matters."""
    a = random_published("EfficientNetB4", face_tensors, "0.6", seed=3)
    b = build_published("EfficientNetB4", "0.7")
    b.network.load_state_dict(a.network.state_dict())
    with torch.no_grad():
        assert (a(face_tensors) - b(face_tensors)).abs().max() > 1e-2


@pytest.mark.parametrize("arch", ARCHS)
def test_published_file_loads_strictly_and_scores_as_saved(arch, face_tensors, tmp_path):
    source = random_published(arch, face_tensors, seed=1)
    path = save_original(source, tmp_path)
    loaded = load_published(arch, path)
    assert not loaded.training and loaded.sha256 == named_sha256(path)
    with torch.no_grad():
        logits = loaded(face_tensors)
        assert logits.shape == (2, 1)
        assert torch.equal(logits, source(face_tensors))
        assert logits[0] != logits[1]  # the weights make the input matter
        if loaded.has_attention:
            att = loaded.attention_map(face_tensors)
            assert att.shape == (2, 1, 28, 28) and 0 <= att.min() and att.max() <= 1
    saved = torch.load(path, weights_only=True)
    assert all(torch.equal(t, saved[k]) for k, t in to_original_state(loaded).items())


def test_a_wrong_file_is_an_error_naming_what_is_wrong(face_tensors, tmp_path):
    source = random_published("EfficientNetB4", face_tensors, seed=2)
    good = save_original(source, tmp_path / "good")
    with pytest.raises(ValueError, match="unexpected key efficientnet.attconv.weight"):
        other = random_published("EfficientNetAutoAttB4", face_tensors)
        load_published("EfficientNetB4", save_original(other, tmp_path / "att"))
    with pytest.raises(ValueError, match="missing key efficientnet.attconv.weight"):
        load_published("EfficientNetAutoAttB4", good)
    state = to_original_state(source)
    state["classifier.weight"] = torch.zeros(2, 1792)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match=r"classifier.weight has shape \(2, 1792\)"):
        load_published("EfficientNetB4", tmp_path / "shape.pth", check_sha256=False)
    renamed = tmp_path / "renamed.pth"
    renamed.write_bytes(good.read_bytes())
    with pytest.raises(ValueError, match="no sha256 in the name"):
        load_published("EfficientNetB4", renamed)
    tampered = tmp_path / good.name
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the tensor data
    tampered.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its name"):
        load_published("EfficientNetB4", tampered)
    with pytest.raises(ValueError, match="unknown published architecture"):
        load_published("Xception", good)


def test_float64_matches_float32_to_rounding(face_tensors):
    model = random_published("EfficientNetAutoAttB4", face_tensors, seed=4)
    with torch.no_grad():
        single = model(face_tensors)
        double = model.double()(face_tensors.double())
    assert torch.allclose(single.double(), double, atol=1e-4)


def test_original_score_conventions():
    """Video: the mean of frame logits; fusion: the mean of the networks' video logits; the
    probability of FAKE is the sigmoid of either (the original's notebooks)."""
    frames = np.array([2.0, -1.0, 0.5])
    assert video_logit(frames) == pytest.approx(0.5)
    assert fuse_logits(np.array([video_logit(frames), -1.5])) == pytest.approx(-0.5)

"""The detectors: one finite logit per image from each model, ImageNet weights loaded only
from a given file (ResNet-50, Xception's common layout), and class activation maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torchvision

from dfmnist.train import ENSEMBLE, MODELS, build_model
from dfmnist.train.loop import Detector
from dfmnist.train.models import load_pretrained
from dfmnist.train.xception import Xception

from numerics import assert_float64_equal


@pytest.mark.parametrize("name", sorted(set(MODELS) - set(ENSEMBLE)))  # B4s: test_ensemble
def test_detectors_give_one_finite_logit_per_image(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    side = MODELS[name].input_size
    with torch.no_grad():
        out = model(torch.rand(2, 3, side, side))
    assert out.shape == (2,) and torch.isfinite(out).all()
    # a detector that ignores its input would give equal logits to different images
    assert out[0] != out[1]


def test_detector_names_match_the_models():
    from dfmnist.train import DETECTORS

    assert set(DETECTORS) == set(MODELS)


def test_resnet_takes_imagenet_weights_only_from_the_given_file(tmp_path):
    reference = torchvision.models.resnet50(weights=None)  # same layout as an ImageNet file
    path = tmp_path / "resnet50-imagenet.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet50")
    head_before = model.backbone.fc.weight.detach().clone()
    info = load_pretrained(model, path, freeze_backbone=True)
    assert info["missing"] == ["fc.bias", "fc.weight"] and len(info["sha256"]) == 64
    assert torch.equal(model.backbone.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)
    assert torch.equal(model.backbone.fc.weight, head_before)  # the 1-logit head stays new
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"backbone.fc.weight", "backbone.fc.bias"}
    # a file of another architecture is refused, not half-loaded
    other = tmp_path / "xception.pth"
    torch.save(Xception().state_dict(), other)
    with pytest.raises(ValueError, match="not in the file"):
        load_pretrained(build_model("resnet50"), other)


def test_xception_loads_a_checkpoint_with_the_common_layout(tmp_path):
    torch.manual_seed(1)
    source = Xception()
    state = {k.replace("fc.", "last_linear."): v for k, v in source.state_dict().items()}
    state["last_linear.weight"] = torch.zeros(1000, 2048)  # an ImageNet head: 1000 classes
    state["last_linear.bias"] = torch.zeros(1000)
    path = tmp_path / "xception-imagenet.pth"
    torch.save(state, path)
    torch.manual_seed(2)
    model = Xception()
    info = load_pretrained(model, path)
    assert info["missing"] == ["fc.bias", "fc.weight"]
    assert torch.equal(model.block7.rep[1].pointwise.weight, source.block7.rep[1].pointwise.weight)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.numerics
def test_cam_of_a_pooled_head_is_the_classic_cam(astronaut):
    from dfmnist.train.cam import activation_maps, overlay

    torch.manual_seed(0)
    # float64: the classic CAM below is the same function, compared to FLOAT64_EXACT
    model = Detector("resnet50").eval().double()
    face = cv2.resize(astronaut[:300, 100:400], (224, 224), interpolation=cv2.INTER_AREA)
    images = torch.from_numpy(face.transpose(2, 0, 1).copy()).double()[None] / 255.0
    # an untrained head sees real evidence everywhere, so the map of the real class is the
    # informative one here
    maps = activation_maps(model, images, fake=False)
    # classic CAM: the head's weights times the last feature maps
    with torch.no_grad():
        net = model.net.backbone
        x = model.normalize(images)
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        feats = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        classic = torch.relu((net.fc.weight[0][None, :, None, None] * feats).sum(1, keepdim=True))
        classic = torch.nn.functional.interpolate(classic, size=(224, 224), mode="bilinear")[0, 0]
        classic = (classic - classic.min()) / (classic.max() - classic.min())
    assert maps.shape == (1, 224, 224) and maps.min() == 0 and maps.max() == pytest.approx(1)
    assert_float64_equal(maps[0], classic, "class activation map")
    blended = overlay(face, maps[0])
    assert blended.shape == face.shape and not np.array_equal(blended, face)

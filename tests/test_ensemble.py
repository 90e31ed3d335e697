"""Bonettini et al.'s EfficientNet detectors, triplet training, AUC, fusion and perturbations:
real photos and video frames, real training steps, real encodes, a real Snakemake run."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import polars as pl
import pytest
import torch
import yaml
from scipy.special import expit, logit
from sklearn.metrics import auc, roc_curve

from dfmnist.storage.video import read_video
from dfmnist.train import ENSEMBLE, MODELS, train_config, train_settings
from dfmnist.train.ensemble import FUSION, ensemble_table, fuse
from dfmnist.train.loop import Detector, train_detector
from dfmnist.train.metrics import roc_auc, summarize
from dfmnist.train.perturb import LEVELS, perturb_frame, perturb_video
from dfmnist.train.triplet import train_triplet_stage, triplet_indices, triplet_loss

from numerics import assert_float64_equal


def _faces(astronaut, grace_hopper, carphone_path, side: int) -> tuple[torch.Tensor, list[int]]:
    """Real face crops (two photos, two frames of a real talking-head clip) and fakes made from
    them by a smoothing warp, as RGB tensors in [0, 1]; targets real 1, fake 0."""
    clip = read_video(carphone_path).frames
    crops = [astronaut[:300, 100:400], grace_hopper[:512], clip[20][:, 16:160],
             clip[80][:, 16:160]]
    images, targets = [], []
    for crop in crops:
        real = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        h = side // 2
        fake = real.copy()
        fake[h // 2:h + h // 2, h // 2:h + h // 2] = cv2.GaussianBlur(
            cv2.flip(real, 1), (0, 0), 2.0)[h // 2:h + h // 2, h // 2:h + h // 2]
        for image, target in ((real, 1), (fake, 0)):
            images.append(torch.from_numpy(image.transpose(2, 0, 1).copy()).float() / 255.0)
            targets.append(target)
    return torch.stack(images), targets


class _Tensors(torch.utils.data.Dataset):
    """(image, target, video) items the way FrameDataset gives them, with `items` for targets."""

    def __init__(self, images: torch.Tensor, targets: list[int]) -> None:
        self.images, self.items = images, [(None, t, i) for i, t in enumerate(targets)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], self.items[i][1], i


@pytest.mark.parametrize("name", ENSEMBLE)
def test_b4_family_at_their_input_size(name, astronaut):
    assert MODELS[name].input_size == 224  # the paper's face size
    assert MODELS[name].mean == (0.485, 0.456, 0.406)  # ImageNet normalisation
    torch.manual_seed(0)
    # train mode: an untrained EfficientNet in eval mode normalises with its initial batch-norm
    # statistics (mean 0, variance 1), under which the signal fades to ~1e-14 by the last stage
    model = Detector(name).train()
    face = cv2.resize(astronaut[:300, 100:400], (224, 224), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(np.stack([face, face[:, ::-1]]).transpose(0, 3, 1, 2).copy()) / 255.0
    with torch.no_grad():
        emb = model.embed(x.float())
        out = model.net.head()(emb) if name.endswith("_st") else model.net.classifier[1](emb)
    assert out.shape == (2, 1) and torch.isfinite(out).all() and out[0] != out[1]
    assert emb.shape == (2, 1792)


@pytest.mark.numerics
def test_attention_map_is_the_sigmoid_of_the_tenth_block(astronaut):
    torch.manual_seed(0)
    # float64: the map and the hand-built map are one function, compared to FLOAT64_EXACT
    model = Detector("autoatt_b4").eval().double()
    face = cv2.resize(astronaut[:300, 100:400], (224, 224), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(face.transpose(2, 0, 1).copy()).double()[None] / 255.0
    with torch.no_grad():
        att = model.attention_map(x)
        coarse = model.net.attention_map(model.normalize(x), upsample=False)
        # by hand: B4's stages 0-3 (the 10th MBConv block ends stage 3: 56 channels, 28x28)
        h = model.normalize(x)
        for stage in model.net.features[:4]:
            h = stage(h)
        manual = torch.sigmoid(model.net.attention(h))
    assert h.shape == (1, 56, 28, 28)
    assert att.shape == (1, 224, 224) and coarse.shape == (1, 28, 28)
    assert float(att.min()) >= 0 and float(att.max()) <= 1 and float(att.std()) > 0
    assert_float64_equal(coarse, manual[:, 0], "attention map")
    # the map weights the features: suppress it and the embedding changes (train mode, batch
    # statistics: an untrained eval-mode B4 fades every signal, see test_b4_family_...)
    batch = torch.cat([x, x.flip(-1)])
    model.train()
    with torch.no_grad():
        torch.manual_seed(1)
        before = model.embed(batch)
        model.net.attention.bias.fill_(-30.0)
        # sigmoid(-30 + a bounded activation) is ~1e-13: the map is off, not just small
        assert float(model.attention_map(batch).max()) < 1e-6
        torch.manual_seed(1)
        after = model.embed(batch)
    assert (after - before).abs().max() > 0.1 * before.abs().max()


def test_triplets_alternate_and_never_reuse_a_frame():
    targets = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    triplets = triplet_indices(targets, np.random.default_rng(0))
    assert len(triplets) == 3
    for k, (a, p, n) in enumerate(triplets):
        kind = 0 if k % 2 == 0 else 1  # (fake, fake, real), then (real, real, fake)
        assert targets[a] == targets[p] == kind and targets[n] == 1 - kind
    used = [i for t in triplets for i in t]
    assert len(used) == len(set(used))


def test_triplet_loss_goes_down_on_a_tiny_set(astronaut, grace_hopper, carphone_path):
    images, targets = _faces(astronaut, grace_hopper, carphone_path, 64)
    data = _Tensors(images, targets)
    torch.manual_seed(0)
    model = Detector("efficientnet_b4", input_size=64)
    fixed = triplet_indices(np.array(targets), np.random.default_rng(1))

    def loss() -> float:
        model.train()  # batch statistics, as the loss is minimised; same random depth drops
        torch.manual_seed(7)
        with torch.no_grad():
            return float(triplet_loss(model.embed, [images[[t[k] for t in fixed]]
                                                    for k in range(3)]))

    before = loss()
    history = train_triplet_stage(model, data, epochs=4, batch_size=4, lr=1e-3,
                                  betas=(0.9, 0.999), seed=0, device=torch.device("cpu"),
                                  to_batch=lambda x, d: x)
    # 4 reals, 4 fakes: (fake, fake, real) and (real, real, fake), then a class runs out
    assert len(history) == 4 and all(row["triplets"] == 2 for row in history)
    assert loss() < 0.7 * before


def test_st_detector_trains_its_head_on_a_frozen_extractor(astronaut, grace_hopper,
                                                             carphone_path):
    images, targets = _faces(astronaut, grace_hopper, carphone_path, 64)
    data = _Tensors(images, targets)
    section = train_config({"train": {"epochs": 1, "triplet_epochs": 2, "batch_size": 4,
                                      "input_size": {"autoatt_b4_st": 64}}})
    settings = train_settings(section, "autoatt_b4_st")
    assert settings.extra == {"input_size": 64, "triplet_epochs": 2}
    # other detectors' settings (and so their checkpoint keys) carry nothing new
    assert train_settings(section, "resnet50").extra == {}
    torch.manual_seed(0)
    model, history, record = train_detector("autoatt_b4_st", data, data, settings)
    assert [row["epoch"] for row in record["triplet"]] == [1, 2] and len(history) == 1
    assert record["input_size"] == 64
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"net.head_layers.0.weight", "net.head_layers.0.bias",
                         "net.head_layers.1.weight", "net.head_layers.1.bias"}
    model.train()
    assert not model.net.extractor.training  # frozen batch-norm statistics, no dropout


def test_auc_on_a_hand_made_score_list_against_the_library():
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.6, 0.6])
    targets = np.array([0, 0, 1, 1, 0, 1])
    # by hand: 9 (real, fake) pairs; real 0.35 beats fake 0.1 only (1); 0.8 beats all three
    # (3); 0.6 beats 0.1 and 0.4 and ties 0.6 (2.5): 6.5 / 9
    assert roc_auc(scores, targets) == pytest.approx(6.5 / 9)
    # DeepfakeBench's way: the area under scikit-learn's ROC curve
    fpr, tpr, _ = roc_curve(targets, scores, pos_label=1)
    assert roc_auc(scores, targets) == pytest.approx(auc(fpr, tpr))
    assert math.isnan(roc_auc(np.array([0.2, 0.7]), np.array([1, 1])))
    frames = pl.DataFrame({"video_id": ["a", "a", "a", "b", "b"],
                           "score": [0.9, 0.2, 0.3, 0.4, 0.45], "target": [1, 1, 1, 0, 0]})
    # mean: a 0.467 < b 0.425? no: a 0.467 > b 0.425, AUC 1; median: a 0.3 < b 0.425, AUC 0
    assert summarize(frames, "mean")["video_auc"] == 1.0
    assert summarize(frames, "median")["video_auc"] == 0.0
    assert summarize(frames, "max")["video_acc"] == 1.0
    with pytest.raises(ValueError, match="unknown video score"):
        summarize(frames, "mode")


def test_fusion_averages_the_networks_logits():
    rows = []
    for model, real, fake in (("efficientnet_b4", 0.9, 0.6), ("autoatt_b4", 0.4, 0.2)):
        for frame in (0, 1):
            rows += [{"model": model, "trainset": "raw", "variant": "raw", "video_id": "r",
                      "frame": frame, "label": "real", "action": None, "identity": "x",
                      "target": 1, "score": real},
                     {"model": model, "trainset": "raw", "variant": "raw", "video_id": "f",
                      "frame": frame, "label": "fake", "action": "yaw", "identity": "x",
                      "target": 0, "score": fake}]
    preds = pl.DataFrame(rows)
    models = ["efficientnet_b4", "autoatt_b4"]
    fused = fuse(preds, models).sort("video_id", "frame")
    # Bonettini et al.'s fusion: the sigmoid of the mean logit (not the mean probability)
    fake, real = expit((logit(0.6) + logit(0.2)) / 2), expit((logit(0.9) + logit(0.4)) / 2)
    assert fused["score"].to_list() == pytest.approx([fake, fake, real, real], abs=1e-12)
    assert fake == pytest.approx(0.37980, abs=1e-5) and real == pytest.approx(0.71010, abs=1e-5)
    table = ensemble_table(preds, models, ["raw"])
    assert table["model"].to_list() == [*models, FUSION]
    # alone: B4 calls the fake real (acc 50%), AutoAtt the real fake; fused: 0.71 vs 0.38
    assert table["frame_acc"].to_list() == [50.0, 50.0, 100.0]
    assert table["video_auc"].to_list() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="lack the scores"):
        fuse(preds.filter(~((pl.col("model") == "autoatt_b4") & (pl.col("frame") == 1))),
             models)


def test_perturbations_grow_with_their_level(astronaut):
    # DeeperForensics-1.0 perturbation/add_distortion_to_video.py: GB [7, 9, 13, 17, 21],
    # GNC [0.001, 0.002, 0.005, 0.01, 0.05], VC crf [30, 32, 35, 38, 40], CC [0.85 .. 0.35]
    assert LEVELS["gaussian_blur"] == (7, 9, 13, 17, 21)
    assert LEVELS["gaussian_noise"] == (0.001, 0.002, 0.005, 0.01, 0.05)
    assert LEVELS["reencode"] == (30, 32, 35, 38, 40)
    assert LEVELS["contrast"] == (0.85, 0.725, 0.6, 0.475, 0.35)
    face = cv2.resize(astronaut[:300, 100:400], (128, 128), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    for name in LEVELS:
        assert np.array_equal(perturb_frame(face, name, 0, rng), face)
        change = [np.abs(perturb_video(face[None], name, level, 0)[0].astype(int)
                         - face).mean() for level in (1, 3, 5)]
        assert 0 < change[0] < change[2], (name, change)
    clip = np.stack([face, np.roll(face, 4, axis=1)])
    out = perturb_video(clip, "reencode", 5, 0)
    assert out.shape == clip.shape and out.dtype == np.uint8
    with pytest.raises(ValueError, match="level must be"):
        perturb_frame(face, "jpeg", 6, rng)


# --- the workflow: ensemble, robustness and attention on the tiny demo -------------------------


@pytest.mark.workflow
def test_ensemble_robustness_attention_on_the_tiny_demo(tmp_path, tiny_demo):
    from tiny_demo import clone, run_snakemake

    workdir = clone(tiny_demo, tmp_path / "wf")  # the dataset as built; only train changes
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    # B4 at 224 is slow on CPU: the tiny run feeds the four networks 64-pixel faces
    config["train"].update(epochs=1, triplet_epochs=1, batch_size=8,
                           input_size={m: 64 for m in ENSEMBLE},
                           robustness={"perturbations": ["gaussian_blur", "reencode"],
                                       "levels": [0, 5]})
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "ensemble", "robustness", "attention")
    tables = workdir / "results" / "tables"
    dataset = pl.read_parquet(workdir / "results" / "dataset" / "dataset.parquet")
    test = dataset.filter(pl.col("split") == "test")
    ens = pl.read_csv(tables / "ensemble.csv")
    assert ens.select("variant", "model").rows() == [
        (v, m) for v in ("c40", "raw") for m in [*ENSEMBLE, FUSION]]
    assert ens["test_videos"].to_list() == [test.height // 2] * 10
    assert ens["frame_auc"].is_between(0, 1).all() and ens["video_acc"].is_between(0, 100).all()
    assert "sigmoid of the mean of the networks' logits" in (tables / "ensemble.md").read_text()
    for name in ("ensemble", "robustness"):  # each table says how its scores read
        assert "P(real) = the sigmoid of the network's logit of REAL" in (
            tables / f"{name}.md").read_text()
    rob = pl.read_csv(tables / "robustness.csv")
    # default models: table3's (mesoinception4 in the demo) and the four networks
    assert set(rob["model"]) == {"mesoinception4", *ENSEMBLE}
    assert set(zip(rob["perturbation"], rob["level"], strict=True)) == {
        (p, lv) for p in ("gaussian_blur", "reencode") for lv in (0, 5)}
    params = rob.filter(pl.col("level") == 5)["parameter"].cast(pl.String).sort().to_list()
    assert params == ["21"] * 5 + ["40"] * 5  # DeeperForensics-1.0's level-5 kernel and crf
    # the perturbed frames reach the detector: MesoInception-4's scores move (the B4s, trained
    # for one step from scratch, still score every frame alike under their initial batch-norm
    # statistics, so their AUC here is 0.5 whatever the input)
    scores = pl.read_parquet(tables / "robustness_scores.parquet").filter(
        pl.col("model") == "mesoinception4").sort("perturbation", "video_id", "frame")
    clean, hit = (scores.filter(pl.col("level") == lv)["score"] for lv in (0, 5))
    assert (clean - hit).abs().max() > 0
    for run in (workdir / "results" / "train").glob("*_b4*/raw/run.json"):
        assert json.loads(run.read_text())["input_size"] == 64
    att = pl.read_csv(tables / "attention.csv")
    assert set(att["action"].drop_nulls()) == set(
        test.filter((pl.col("variant") == "raw") & (pl.col("label") == "fake"))["action"])
    for name in ("ensemble", "robustness", "attention"):
        image = cv2.imread(str(tables / f"{name}.png"))
        assert image is not None and image.shape[0] > 150 and image.std() > 10

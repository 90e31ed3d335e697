"""`train.attribution.recipe: authors`, DMA-STA's release's training recipe: its optimiser and
schedule, its crops, flips and clip starts on real frames, DFDM's normalisation, and a short
training run of the attribution job with it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from test_attribution import SIDE, make_dataset

from dfmnist.storage.store import Store
from dfmnist.train import train_config
from dfmnist.train.attribution import (
    attribution_classes,
    attribution_datasets,
    attribution_notes,
    attribution_settings,
    build_attribution_model,
    labelled_fakes,
    run_attribution_job,
)
from dfmnist.train.dfdm_recipe import (
    DFDM_MEAN,
    DFDM_STD,
    AuthorsTransform,
    authors_lr,
    authors_optimizer,
    resize_side,
)
from dfmnist.train.loop import fit
from dfmnist.train.models import IMAGENET_MEAN

#: One torch thread: on a shared 2-core machine a second one makes each step slower.
pytestmark = pytest.mark.usefixtures("one_torch_thread")
#: 56 is to the 64-pixel test frames what the release's 224 is to its 256.
CROP = 56


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, carphone_path, astronaut, grace_hopper):
    root = tmp_path_factory.mktemp("attribution_recipe")
    return root, make_dataset(root, carphone_path, astronaut, grace_hopper, (("raw", 100),))


def settings_for(recipe: str, **attribution):
    return attribution_settings(train_config({"train": {"attribution": {
        "backbone": "resnet18", "input_size": CROP, "clip_length": 4, "batch_size": 4,
        "recipe": recipe, **attribution}}}))


def test_authors_optimiser_is_the_releases_sgd_and_step_schedule():
    optimiser = authors_optimizer([torch.nn.Parameter(torch.zeros(3))], 1)
    assert type(optimiser) is torch.optim.SGD
    group = optimiser.param_groups[0]
    assert group["momentum"] == 0.9 and group["weight_decay"] == 5e-4
    assert group["lr"] == pytest.approx(1e-3) and not group["nesterov"]
    # main.py: lr 0.01 steps x0.1 at epochs 40, 80, 120, floored at 1e-4, and the weights train
    # at a tenth of it, floored at 1e-4 again: 1e-3, then 1e-4 from epoch 40 on (not 1e-5, 1e-6)
    rates = {epoch: authors_lr(epoch) for epoch in (1, 39, 40, 79, 80, 119, 120, 299)}
    assert rates == pytest.approx({1: 1e-3, 39: 1e-3, 40: 1e-4, 79: 1e-4, 80: 1e-4, 119: 1e-4,
                                   120: 1e-4, 299: 1e-4})
    assert authors_optimizer([torch.nn.Parameter(torch.zeros(3))], 40).param_groups[0][
        "lr"] == pytest.approx(1e-4)
    # the loop builds each epoch's SGD afresh, as the release's train() does: no momentum
    # carries over between epochs
    built = []

    def recording(params, epoch):
        built.append((epoch, authors_optimizer(params, epoch)))
        return built[-1][1]

    torch.manual_seed(0)
    items = [(torch.randn(4), i % 2, i) for i in range(8)]
    history, _ = fit(torch.nn.Linear(4, 2), "ce", items, items,
                     settings_for("authors", epochs=3), torch.device("cpu"),
                     epoch_optimizer=recording)
    assert [epoch for epoch, _ in built] == [1, 2, 3] and len({id(o) for _, o in built}) == 3
    assert [row["lr"] for row in history] == pytest.approx([1e-3] * 3)
    # the settings (store key, record) carry the release's rate and decay, not Adam's
    authors, ours = settings_for("authors", lr=0.5), settings_for("dfmnist")
    assert (authors.lr, authors.weight_decay) == (pytest.approx(1e-3), 5e-4)
    assert authors.extra["recipe"] == "authors" and "recipe" not in ours.extra
    assert authors.key_parts() != ours.key_parts()
    assert (ours.lr, ours.weight_decay) == (2e-4, 5e-4)


def test_authors_transform_resizes_crops_the_centre_and_flips_in_training():
    torch.manual_seed(0)
    image = torch.rand(3, 300, 300)
    resized = torch.nn.functional.interpolate(image[None], size=(256, 256), mode="bilinear",
                                              antialias=True, align_corners=False)[0]
    centre = resized[:, 16:240, 16:240]
    assert resize_side(224) == 256 and resize_side(CROP) == SIDE
    train = AuthorsTransform(224, flip=True, seed=0)
    outputs = [train(image) for _ in range(20)]
    assert all(o.shape == (3, 224, 224) for o in outputs)
    flipped = [torch.equal(o, centre.flip(-1)) for o in outputs]
    assert all(f or torch.equal(o, centre) for f, o in zip(flipped, outputs, strict=True))
    assert 0 < sum(flipped) < len(outputs)
    # seeded: a second transform draws the same flips
    again = AuthorsTransform(224, flip=True, seed=0)
    assert all(torch.equal(o, again(image)) for o in outputs)
    # test: the same resize and centre crop, never flipped
    test = AuthorsTransform(224)
    assert all(torch.equal(test(image), centre) for _ in range(5))
    frame = torch.rand(3, 256, 256)  # frames extracted at 256 are only cropped
    assert torch.equal(test(frame), frame[:, 16:240, 16:240])


def _clip_options(frames, items: list[int]) -> dict[tuple[int, bool], torch.Tensor]:
    """Every clip a training draw can give for a video: (start, flipped) -> clip."""
    stack = torch.stack([frames[i][0] for i in items])  # the frames cropped, never flipped
    return {(start, flip): stack[start:start + 4].flip(-1) if flip else stack[start:start + 4]
            for start in range(len(items) - 3) for flip in (False, True)}


def test_authors_clips_draw_starts_and_flips_on_real_frames(dataset):
    root, table = dataset
    settings = settings_for("authors")
    rows = labelled_fakes(table, attribution_classes(table), "raw")
    train = attribution_datasets("dmasta", rows.filter(pl.col("split") == "train"), settings,
                                 [SIDE], root, train=True)
    options = _clip_options(train.frames, train.clips[0][1])
    seen = set()
    for _ in range(24):
        clip, _, _ = train[0]
        assert clip.shape == (4, 3, CROP, CROP)
        # a whole clip flips or not: every draw is one start, flipped or not, all frames alike
        match = [key for key, option in options.items() if torch.equal(clip, option)]
        assert len(match) == 1
        seen.add(match[0])
    assert len({start for start, _ in seen}) >= 2 and {f for _, f in seen} == {False, True}
    # the frames: the 64-pixel extraction's centre 56 square, as the release's 224 of 256
    raw = torch.from_numpy(np.ascontiguousarray(
        train.frames.items[0][0].frames.rgb(train.frames.items[0][0].index, SIDE)
        .transpose(2, 0, 1))).float() / 255
    assert torch.equal(train.frames[0][0], raw[:, 4:60, 4:60])
    # test clips: the middle start, unflipped, the same every time
    test_rows = rows.filter(pl.col("split") == "test")
    test = attribution_datasets("dmasta", test_rows, settings, [SIDE], root, train=False)
    first = [test[i][0] for i in range(len(test))]
    assert all(torch.equal(a, test[i][0]) for i, a in enumerate(first))
    assert torch.equal(first[0], _clip_options(test.frames, test.clips[0][1])[(1, False)])
    # the frame baseline: single frames, cropped, each flipped on its own in training
    frames = attribution_datasets("frame_baseline", rows.filter(pl.col("split") == "train"),
                                  settings, [SIDE], root, train=True)
    draws = [frames[0][0] for _ in range(12)]
    assert {torch.equal(d, draws[0]) for d in draws} == {True, False}
    assert all(d.shape == (3, CROP, CROP) for d in draws)


def test_authors_recipe_normalises_with_dfdm_statistics():
    assert DFDM_MEAN == (0.643, 0.466, 0.387) and DFDM_STD == (0.259, 0.220, 0.203)
    for method in ("dmasta", "frame_baseline"):
        model = build_attribution_model(method, 3, settings_for("authors"))
        assert model.normalize.mean.flatten().tolist() == pytest.approx(DFDM_MEAN)
        assert model.normalize.std.flatten().tolist() == pytest.approx(DFDM_STD)
        ours = build_attribution_model(method, 3, settings_for("dfmnist"))
        assert ours.normalize.mean.flatten().tolist() == pytest.approx(IMAGENET_MEAN)


def test_short_training_with_the_authors_recipe(dataset):
    root, table = dataset
    settings = settings_for("authors", epochs=2)
    store = Store(root / "store")
    preds, history, record = run_attribution_job(table, "dmasta", "raw", settings, store, root,
                                                 [SIDE])
    assert record["recipe"] == "authors" and not record["reused"]
    assert [row["lr"] for row in history] == pytest.approx([1e-3, 1e-3])
    assert all(np.isfinite(row["train_loss"]) for row in history)
    assert preds.height == 3 and preds["probs"].list.sum().round(5).eq(1).all()
    again, _, reused = run_attribution_job(table, "dmasta", "raw", settings, store, root, [SIDE])
    assert reused["reused"] and again.equals(preds)  # the test clips are deterministic
    # the frame baseline trains with the same recipe (per-frame flips)
    _, baseline_history, baseline = run_attribution_job(table, "frame_baseline", "raw",
                                                        settings_for("authors", epochs=1),
                                                        store, root, [SIDE])
    assert baseline["recipe"] == "authors" and baseline_history[0]["lr"] == pytest.approx(1e-3)
    notes = attribution_notes([record], demo=False)
    assert any(line.startswith("recipe `authors`, DMA-STA's release") for line in notes)
    assert not any(line.startswith("recipe `dfmnist`") for line in notes)
    # a record from before the option names no recipe: it trained with the project's loop
    old = {k: v for k, v in record.items() if k != "recipe"}
    assert any(line.startswith("recipe `dfmnist`") for line in attribution_notes([old], False))

"""Detector baselines of the DeepFake MNIST+ paper and the experiments behind its tables.

MesoInception-4 and Xception are written here; ResNet-50/101/152 are torchvision architectures
built without weights. ImageNet weights come only from a local file the user names.
"""

from __future__ import annotations

import copy

from dfmnist.train.trainsets import trainset_name

__all__ = ["ATTRIBUTION_METHODS", "DEFAULTS", "DETECTORS", "ENSEMBLE", "EXPERIMENTS", "MODELS",
           "RECIPE_KEYS", "build_model", "ensemble_runs", "experiment_runs", "recipe",
           "robustness_models", "train_config", "train_settings"]

#: The detectors by name (kept free of torch so that parsing the workflow stays fast).
DETECTORS = ("mesoinception4", "xception", "resnet50", "resnet101", "resnet152",
             "efficientnet_b4", "autoatt_b4", "efficientnet_b4_st", "autoatt_b4_st")
#: Bonettini et al.'s four networks, fused by the `ensemble` target.
ENSEMBLE = ("efficientnet_b4", "autoatt_b4", "efficientnet_b4_st", "autoatt_b4_st")
#: The `attribution` target's methods (dfmnist.train.attribution): DMA-STA and its frame-level
#: baseline.
ATTRIBUTION_METHODS = ("dmasta", "frame_baseline")


def __getattr__(name: str):
    if name in ("MODELS", "build_model"):
        from dfmnist.train import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: The `train` config section's defaults: the paper's recipe and models.
DEFAULTS: dict = {
    "device": "cpu", "epochs": 50, "batch_size": 64, "lr": 2e-4, "betas": [0.9, 0.999],
    "poly_power": 0.9, "seed": 0, "pretrained": {}, "freeze_backbone": ["xception"],
    "table3": {"models": ["resnet50", "resnet101", "resnet152", "xception", "mesoinception4"]},
    "table4": {"models": ["resnet50", "resnet152", "xception", "mesoinception4"]},
    "table5": {"models": ["resnet50", "resnet152", "xception", "mesoinception4"]},
    "per_action": {"model": "resnet50"},
    "single_action": {"model": "resnet50", "variant": "raw"},
    "corpus_size": {"model": "resnet50", "fakes": [10, 100, 500, 1000, 3000, 10000]},
    "cam": {"model": "resnet50", "variant": "raw", "frames": 6},
    # video score from its frame scores (dfmnist.train.metrics.VIDEO_SCORES)
    "video_score": "mean",
    # model -> input side other than its own (e.g. small sides for quick checks)
    "input_size": {},
    "triplet_epochs": None,  # the `*_st` detectors' triplet stage; None: as `epochs`
    "ensemble": {"models": list(ENSEMBLE)},
    # models: None = every detector of table3 and the ensemble; levels 0 (clean) to 5
    "robustness": {"models": None, "variant": None, "levels": [0, 1, 2, 3, 4, 5],
                   "perturbations": ["gaussian_blur", "gaussian_noise", "resize", "jpeg",
                                     "reencode", "brightness", "contrast", "saturation"]},
    "attention": {"model": "autoatt_b4", "variant": None, "frames": None},  # None: each action
    # DMA-STA's release: ResNet-50 at 224, 10-frame clips, batch 20, weight decay 5e-4 (its
    # SGD lr 1e-3 becomes this loop's Adam lr)
    "attribution": {"methods": list(ATTRIBUTION_METHODS), "backbone": "resnet50",
                    "input_size": 224, "clip_length": 10, "epochs": 50, "batch_size": 20,
                    "lr": 2e-4, "weight_decay": 5e-4},
}


def train_config(config: dict) -> dict:
    """The workflow config's `train` section over the defaults (one level of nesting merged)."""
    merged = copy.deepcopy(DEFAULTS)
    for key, value in (config.get("train") or {}).items():
        if (isinstance(value, dict) and isinstance(merged.get(key), dict)
                and key not in ("pretrained", "input_size")):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


#: The keys of the `train` section that change what a training job makes (not `device`, and
#: not the experiments' model lists, which choose jobs).
RECIPE_KEYS = ("epochs", "batch_size", "lr", "betas", "poly_power", "seed", "pretrained",
               "freeze_backbone", "input_size", "triplet_epochs")
#: The paper's tables and figures built from training jobs' predictions.
EXPERIMENTS = ("table3", "table4", "table5", "per_action", "single_action", "corpus_size")


def recipe(section: dict) -> dict:
    """The training recipe of a merged `train` section (`RECIPE_KEYS`)."""
    return {key: copy.deepcopy(section[key]) for key in RECIPE_KEYS}


def train_settings(section: dict, model: str):
    """The TrainSettings of one model from a merged `train` section."""
    from dfmnist.train.loop import TrainSettings
    from dfmnist.train.models import MODELS

    extra = {}
    if section["input_size"].get(model):
        extra["input_size"] = int(section["input_size"][model])
    if MODELS[model].training == "triplet":
        extra["triplet_epochs"] = int(section["triplet_epochs"] or section["epochs"])
    return TrainSettings(
        epochs=int(section["epochs"]), batch_size=int(section["batch_size"]),
        lr=float(section["lr"]), betas=tuple(float(b) for b in section["betas"]),
        poly_power=float(section["poly_power"]), seed=int(section["seed"]),
        freeze_backbone=model in section["freeze_backbone"]
        and bool(section["pretrained"].get(model)),
        extra=extra,
    )


def experiment_runs(section: dict, variants: list[str], actions: list[str]) -> dict:
    """Experiment name -> the (detector, training set) jobs its table needs."""
    single, corpus = section["single_action"], section["corpus_size"]
    return {
        "table3": [(m, trainset_name(v)) for m in section["table3"]["models"] for v in variants],
        "table4": [(m, trainset_name(v)) for m in section["table4"]["models"] for v in variants],
        "table5": [(m, trainset_name(None)) for m in section["table5"]["models"]],
        "per_action": [(section["per_action"]["model"], trainset_name(v)) for v in variants],
        "single_action": [(single["model"], trainset_name(single["variant"], action=a))
                          for a in actions] + [(single["model"], trainset_name(single["variant"]))],
        "corpus_size": [(corpus["model"], trainset_name(v, n_fakes=n)) for v in variants
                        for n in corpus["fakes"]],
    }


def robustness_models(section: dict) -> list[str]:
    """The detectors the `robustness` target perturbs: as configured, else every detector of
    table3 and of the ensemble."""
    chosen = section["robustness"]["models"]
    if chosen:
        return list(chosen)
    return list(dict.fromkeys([*section["table3"]["models"], *section["ensemble"]["models"]]))


def ensemble_runs(section: dict, variants: list[str]) -> dict[str, list[tuple[str, str]]]:
    """The (detector, training set) jobs of the ensemble, robustness and attention targets."""
    rob, att = section["robustness"], section["attention"]
    return {"ensemble": [(m, trainset_name(v)) for v in variants
                         for m in section["ensemble"]["models"]],
            "robustness": [(m, trainset_name(rob["variant"] or variants[0]))
                           for m in robustness_models(section)],
            "attention": [(att["model"], trainset_name(att["variant"] or variants[0]))]}

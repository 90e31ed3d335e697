"""Detector baselines of the DeepFake MNIST+ paper and the experiments behind its tables.

MesoInception-4 and Xception are written here; ResNet-50/101/152 are torchvision architectures
built without weights. ImageNet weights come only from a local file the user names.
"""

from __future__ import annotations

import copy

from dfmnist.train.trainsets import trainset_name

__all__ = ["ATTRIBUTION_METHODS", "DETECTORS", "ENSEMBLE", "EXPERIMENTS", "MODELS",
           "RECIPE_KEYS", "build_model", "ensemble_runs", "experiment_runs", "load_published",
           "recipe", "robustness_models", "train_config", "train_settings"]

#: The detectors by name (kept free of torch so that parsing the workflow stays fast).
DETECTORS = ("mesoinception4", "xception", "resnet50", "resnet101", "resnet152",
             "efficientnet_b4", "autoatt_b4", "efficientnet_b4_st", "autoatt_b4_st")
#: Bonettini et al.'s four networks, fused by the `ensemble` target.
ENSEMBLE = ("efficientnet_b4", "autoatt_b4", "efficientnet_b4_st", "autoatt_b4_st")
#: The `attribution` target's methods (dfmnist.train.attribution): DMA-STA and its frame-level
#: baseline.
ATTRIBUTION_METHODS = ("dmasta", "frame_baseline")


def __getattr__(name: str):
    # torch loads only when a model is asked for: parsing the workflow stays fast
    if name in ("MODELS", "build_model"):
        from dfmnist.train import models

        return getattr(models, name)
    if name == "load_published":  # Bonettini et al.'s published .pth files, loaded strictly
        from dfmnist.train.published import detector

        return detector.load_published
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train_config(config: dict) -> dict:
    """The workflow config's `train` section with the schema's defaults (the paper's recipe
    and models) filled in where the config leaves a key out, in the schema's key order. The
    workflow's validation has filled them already; tests and library callers pass partial
    sections."""
    from dfmnist.config.defaults import with_defaults

    return with_defaults(config, "train")


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
    """The (detector, training set) jobs of the ensemble, robustness, attention and
    published_scores targets."""
    rob, att = section["robustness"], section["attention"]
    published = section["published_scores"]
    return {"ensemble": [(m, trainset_name(v)) for v in variants
                         for m in section["ensemble"]["models"]],
            # without published files, the report's experiment runs on our own ensemble
            "published_scores": [] if published["networks"] else [
                (m, trainset_name(published["variant"] or variants[0]))
                for m in section["ensemble"]["models"]],
            "robustness": [(m, trainset_name(rob["variant"] or variants[0]))
                           for m in robustness_models(section)],
            "attention": [(att["model"], trainset_name(att["variant"] or variants[0]))]}

"""Configuration defaults live in the schema: the code that keeps its own (library use outside
the workflow) agrees with it, config.yaml shows every key, and a removed key fails by name."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from dfmnist.config.checks import RETIRED, retired, schema_error_line
from dfmnist.config.defaults import schema_default, section_defaults, with_defaults
from dfmnist.config.reference import commented_keys, schema_keys

from tiny_demo import run_snakemake

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "schemas" / "config.schema.yaml"
CONFIG_PATH = REPO / "config.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())
CONFIG_TEXT = CONFIG_PATH.read_text()


def snakemake_filled(config: dict) -> dict:
    """`config` as the workflow sees it: validated by Snakemake, which fills the defaults."""
    config = copy.deepcopy(config)
    validate(config, str(SCHEMA_PATH))
    return config


# -- filling defaults outside the workflow ---------------------------------------------------


def test_filling_outside_the_workflow_matches_snakemake():
    demo = yaml.safe_load(CONFIG_TEXT)
    assert with_defaults(demo) == snakemake_filled(demo)
    lean = copy.deepcopy(demo)
    del lean["train"], lean["faceswap"], lean["liveness"]["providers"]["baidu"]["http"]
    assert with_defaults(lean) == snakemake_filled(lean)
    assert with_defaults(lean)["train"]["attribution"]["clip_length"] == 10


def test_train_config_fills_partial_sections_in_schema_order():
    from dfmnist.train import train_config

    given = {"train": {"cam": {"frames": 3}, "epochs": 2}}
    section = train_config(given)
    assert given == {"train": {"cam": {"frames": 3}, "epochs": 2}}  # not filled in place
    assert section["epochs"] == 2 and section["batch_size"] == 64
    assert section["cam"] == {"model": "resnet50", "variant": "raw", "frames": 3}
    assert list(section) == list(SCHEMA["properties"]["train"]["properties"])
    assert list(section["cam"]) == ["model", "variant", "frames"]
    assert train_config({}) == section_defaults("train")
    # the workflow's validated section comes back unchanged
    demo = snakemake_filled(yaml.safe_load(CONFIG_TEXT))
    assert train_config(demo) == demo["train"]


def test_a_fresh_schema_per_fill():
    """Filling inserts the schema's default objects; one config's values must not leak into
    the next through them."""
    first = with_defaults({}, "train")
    first["table3"]["models"].append("xception")
    first["attribution"]["epochs"] = 1
    again = with_defaults({}, "train")
    assert again["table3"]["models"] == schema_default("train.table3.models")
    assert again["attribution"]["epochs"] == 50


# -- code that keeps its own defaults agrees with the schema ---------------------------------


def _train_settings():
    from dfmnist.train.loop import TrainSettings

    return TrainSettings


def _http_settings():
    from dfmnist.liveness.remote import HttpSettings

    return HttpSettings


def _blend_settings():
    from dfmnist.faceswap.blend import BlendSettings

    return BlendSettings


def _encoding():
    from dfmnist.storage.video import Encoding

    return Encoding


def _swap_settings():
    from dfmnist.faceswap.training import TrainSettings

    return TrainSettings


def _faceswap_recipe():
    from dfmnist.faceswap.losses import FaceswapRecipe

    return FaceswapRecipe


HTTP_KEYS = ("qps", "window_margin", "connections", "concurrency", "timeout", "connect_timeout",
             "max_attempts", "backoff_base", "backoff_max", "max_connect_failures",
             "max_token_requests", "token_interval")

#: Dataclass -> {field: the schema key whose default it must equal}, and the fields that
#: match no schema key (each with why), so that a new field needs a decision here.
DATACLASSES: dict[str, tuple[Any, dict[str, str], dict[str, str]]] = {
    "train.loop.TrainSettings": (_train_settings, {
        "epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr",
        "betas": "train.betas", "poly_power": "train.poly_power", "seed": "train.seed",
    }, {
        "weight_decay": "no train key: only attribution sets it (DMA-STA's release)",
        "freeze_backbone": "per model; train.freeze_backbone lists the models",
        "extra": "per model extras, set by train_settings",
    }),
    "liveness.remote.HttpSettings": (_http_settings, {
        **{key: f"liveness.providers.baidu.http.{key}" for key in HTTP_KEYS},
        "jobs": "liveness.api_jobs",
    }, {}),
    "faceswap.blend.BlendSettings": (_blend_settings, {
        key: f"faceswap.blend.{key}" for key in ("mask", "erode", "blur", "colour")
    }, {}),
    "storage.video.Encoding": (_encoding, {
        "preset": "compress.variants.*.preset", "pix_fmt": "compress.variants.*.pix_fmt",
    }, {
        "codec": "the variants are libx264; other encodes choose their own",
        "crf": "required in every variant",
        "gop": "no default: left out, ffmpeg's own",
    }),
    "faceswap.training.TrainSettings": (_swap_settings, {
        "recipe": "faceswap.train.recipe", "learn_mask": "faceswap.train.learn_mask",
    }, {"log_every": "how often progress is logged, not what is trained"}),
    "faceswap.losses.FaceswapRecipe": (_faceswap_recipe, {
        "learning_rate": "faceswap.train.lr", "learn_mask": "faceswap.train.learn_mask",
        "mask_type": "faceswap.blend.mask",
    }, {key: "a constant of faceswap's recipe, not a config key" for key in (
        "optimizer", "adam_beta_1", "adam_beta_2", "epsilon", "loss_function", "l2_reg_term",
        "mask_loss_function", "penalized_mask_loss", "mask_blur_kernel", "mask_threshold",
        "eye_multiplier", "mouth_multiplier", "centering", "color_lightness", "color_ab",
        "color_clahe_chance", "color_clahe_max_size")}
        | {"coverage": "a percentage: faceswap.coverage is its fraction (DEFAULT_COVERAGE)"}),
}


def _as_config(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("name", sorted(DATACLASSES))
def test_dataclass_defaults_equal_the_schema(name):
    load, mapped, unmapped = DATACLASSES[name]
    cls = load()
    with_default = {f.name: f.default for f in dataclasses.fields(cls)
                    if f.default is not dataclasses.MISSING}
    with_factory = {f.name for f in dataclasses.fields(cls)
                    if f.default_factory is not dataclasses.MISSING}
    assert set(with_default) | with_factory <= set(mapped) | set(unmapped), \
        f"{name}: map new defaulted fields to their schema key or say why they have none"
    for field, key in mapped.items():
        assert _as_config(with_default[field]) == schema_default(key), f"{name}.{field} vs {key}"


def _signature_defaults(func) -> dict[str, Any]:
    return {n: p.default for n, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _constructors() -> dict[str, tuple[Any, dict[str, str]]]:
    """Library entry points whose parameters are config keys: parameter -> schema key."""
    from dfmnist.driving.crop import crop_driving
    from dfmnist.faceswap.align import DEFAULT_COVERAGE
    from dfmnist.generators.fomm.model import FommGenerator
    from dfmnist.generators.landmark_warp import LandmarkWarpGenerator
    from dfmnist.generators.liveportrait.model import LivePortraitGenerator
    from dfmnist.generators.tpsmm.model import TpsmmGenerator
    from dfmnist.liveness.baidu import BaiduProvider
    from dfmnist.liveness.tianyan import TianyanProvider
    from dfmnist.vision.faces import FaceDetector

    fomm = ("checkpoint", "sha256", "config", "batch_size", "precision", "winograd",
            "relative", "adapt_scale")
    tpsmm = ("checkpoint", "sha256", "config", "batch_size", "precision", "mode",
             "find_best_frame", "background")
    liveportrait = ("checkpoint", "config", "stitching", "driving_option", "driving_multiplier",
                    "batch_size", "precision")
    return {
        "FaceDetector": (FaceDetector, {k: f"faces.{k}" for k in (
            "device", "batch_size", "min_face_size", "detect_max_side")}),
        "FaceDetector.track": (FaceDetector.track, {"min_prob": "faces.min_prob"}),
        "crop_driving": (crop_driving, {
            **{k: f"driving.{k}" for k in ("size", "margin", "smooth_window", "max_missing",
                                           "fps")},
            "min_prob": "faces.min_prob"}),
        "LandmarkWarpGenerator": (LandmarkWarpGenerator, {
            k: f"generate.landmark_warp.{k}" for k in ("relative", "adapt_scale")}),
        # not `device`: the workflow resolves generate.device (auto) before building one
        "FommGenerator": (FommGenerator, {k: f"generate.fomm.{k}" for k in fomm}),
        "TpsmmGenerator": (TpsmmGenerator, {k: f"generate.tpsmm.{k}" for k in tpsmm}),
        "LivePortraitGenerator": (LivePortraitGenerator, {
            k: f"generate.liveportrait.{k}" for k in liveportrait}),
        "BaiduProvider": (BaiduProvider, {k: f"liveness.providers.baidu.{k}" for k in (
            "token_url", "verify_url", "api_key_env", "secret_key_env", "token_margin")}),
        "TianyanProvider": (TianyanProvider, {k: f"liveness.providers.tianyan.{k}" for k in (
            "url", "appid_env", "secret_env")}),
        "DEFAULT_COVERAGE": (lambda coverage=DEFAULT_COVERAGE: None,
                             {"coverage": "faceswap.coverage"}),
    }


def test_constructor_defaults_equal_the_schema():
    for name, (func, mapped) in _constructors().items():
        defaults = _signature_defaults(func)
        for param, key in mapped.items():
            assert defaults[param] == schema_default(key), f"{name}({param}) vs {key}"


def test_name_lists_equal_the_schema():
    from dfmnist import ACTIONS
    from dfmnist.generators import GENERATORS
    from dfmnist.train import ATTRIBUTION_METHODS, DETECTORS, ENSEMBLE

    assert list(ACTIONS) == SCHEMA["$defs"]["action"]["enum"]
    assert sorted(GENERATORS) == sorted(SCHEMA["$defs"]["generator"]["enum"])
    assert list(DETECTORS) == SCHEMA["$defs"]["detector"]["enum"]
    assert list(ENSEMBLE) == schema_default("train.ensemble.models")
    assert list(ATTRIBUTION_METHODS) == schema_default("train.attribution.methods")


# -- config.yaml shows every key ----------------------------------------------------------


def _real_paths(node: Any, prefix: str = "") -> set[str]:
    if not isinstance(node, dict):
        return set()
    paths = set()
    for key, value in node.items():
        paths |= {f"{prefix}{key}", *_real_paths(value, f"{prefix}{key}.")}
    return paths


#: Keys shared by every entry of a map (the providers' `http` settings): shown when one
#: entry shows them.
SHARED = re.compile(r"^(liveness\.providers)\.[^.]+\.(http\..+)$")


def test_config_yaml_shows_every_schema_key():
    shown = _real_paths(yaml.safe_load(CONFIG_TEXT)) | set(commented_keys(CONFIG_TEXT, SCHEMA))
    shared = {SHARED.sub(r"\1.*.\2", path) for path in shown}
    missing = [path for path, _ in schema_keys(SCHEMA)
               if path not in shown and SHARED.sub(r"\1.*.\2", path) not in shared]
    assert not missing, f"config.yaml shows neither a key nor a `# key: value` line for {missing}"


def test_commented_out_keys_show_the_default_they_stand_for():
    """A commented-out key is left to its default: the schema's, else (the liveness providers'
    verdict settings, which the schema leaves to them) the provider's."""
    from dfmnist.liveness.baidu import REFUSAL_CODES
    from dfmnist.liveness.local import DEFAULT_THRESHOLDS, LocalProvider, merge_thresholds
    from dfmnist.liveness.tianyan import TianyanProvider

    tianyan = _signature_defaults(TianyanProvider)
    providers = {
        "liveness.providers.local.max_missing": _signature_defaults(LocalProvider)["max_missing"],
        "liveness.providers.baidu.fail_codes": list(REFUSAL_CODES),
        **{f"liveness.providers.tianyan.{k}": list(tianyan[k])
           for k in ("rate_codes", "quota_codes", "auth_codes", "fail_codes")},
    }
    hidden = commented_keys(CONFIG_TEXT, SCHEMA)
    assert set(providers) <= set(hidden)
    # no overrides: the provider's own thresholds
    assert merge_thresholds(hidden.pop("liveness.providers.local.thresholds")) == \
        DEFAULT_THRESHOLDS
    for path, value in hidden.items():
        if path in providers:
            assert value == providers[path], path
        elif value is not None:  # a parent line such as `# local:` has no value
            assert value == schema_default(path), path


def test_added_keys_keep_the_build():
    """The keys config.yaml sets to the schema's default read as if it left them out (only
    the providers' qps is the demo's own)."""
    demo = snakemake_filled(yaml.safe_load(CONFIG_TEXT))
    http = demo["liveness"]["providers"]["baidu"]["http"]
    defaults = {k: schema_default(f"liveness.providers.baidu.http.{k}") for k in HTTP_KEYS}
    assert http == {**defaults, "qps": 2}
    train = with_defaults({}, "train")
    for key in ("input_size", "robustness", "attention"):
        assert demo["train"][key] == train[key], key


# -- a removed key fails by name ---------------------------------------------------------------


def _with_burst() -> dict:
    config = yaml.safe_load(CONFIG_TEXT)
    config["liveness"]["providers"]["baidu"]["http"]["burst"] = 2
    return config


def test_removed_key_is_one_line_naming_it_and_why():
    assert retired(["liveness", "providers", "tianyan", "http", "burst"])
    assert retired(["liveness", "providers", "baidu", "http", "qps"]) is None
    assert all("removed" in why for why in RETIRED.values())
    with pytest.raises(WorkflowError) as caught:
        validate(_with_burst(), str(SCHEMA_PATH))
    error = caught.value.__cause__ or caught.value.__context__ or caught.value
    line = schema_error_line(error)
    assert line.startswith("config error at liveness.providers.baidu.http.burst: removed")
    assert "qps" in line and "\n" not in line
    # a key that never existed still gets the schema's own words
    config = yaml.safe_load(CONFIG_TEXT)
    config["liveness"]["providers"]["baidu"]["http"]["brust"] = 2
    with pytest.raises(WorkflowError) as caught:
        validate(config, str(SCHEMA_PATH))
    error = caught.value.__cause__ or caught.value.__context__ or caught.value
    assert "'brust' was unexpected" in schema_error_line(error)


def test_old_config_with_removed_key_stops_the_dry_run(tmp_path: Path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(_with_burst()))
    proc = run_snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("config error")]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert "liveness.providers.baidu.http.burst: removed" in lines[0]

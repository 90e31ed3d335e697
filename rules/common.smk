# Helpers shared by every stage: config validation, the input layout, sharding.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from dfmnist.config.checks import (
    ConfigError,
    apply_shortcuts,
    check_config,
    demo_clip_relpaths,
    driving_takes,
    schema_error_line,
    science,
    source_clips,
)
from dfmnist.compress import variants_from_config
from dfmnist.vision.faces import DETECTION_FORMAT
from dfmnist.faceswap.pairs import (
    RECIPES,
    couple_members,
    plan_couples,
    split_groups,
    train_settings,
)
from dfmnist.liveness.policy import expand_policy
from dfmnist.gpus import device_gpus, generator_gpus
from dfmnist.plan import shard_of
from dfmnist.workflow import generator_shares
from dfmnist.train import ensemble_runs, train_config
from dfmnist.storage.shard_inputs import write_lists

apply_shortcuts(config)  # --config generator=fomm fomm_checkpoint=FILE
expand_policy(config)  # liveness.policy: paper
try:
    validate(config, "../schemas/config.schema.yaml")
    check_config(config)
except WorkflowError as exc:
    # snakemake wraps the jsonschema ValidationError; report that one, in one line
    cause = exc.__cause__ or exc.__context__ or exc
    sys.exit(schema_error_line(cause))
except ConfigError as exc:
    sys.exit(str(exc))



include: "paths.smk"


ACTIONS = config["actions"]
try:
    # discovered once per invocation; ignored entries (hidden files, non-videos) are logged
    SOURCE_CLIPS, SOURCES_IGNORED = source_clips(config, DEMO_SOURCES)  # clip id -> path
    DRIVING, DRIVING_IGNORED = driving_takes(config, DEMO_TAKE)  # action -> take -> path
except ConfigError as exc:
    sys.exit(str(exc))
for _what, _ignored in (("source clips", SOURCES_IGNORED), ("driving takes", DRIVING_IGNORED)):
    if _ignored.entries:
        logger.info(f"inputs: {_what}: {_ignored.summary()}")

SOURCE_SHARDS = range(config["sources"]["shards"])
DRIVING_SHARDS = range(config["driving"]["shards"])
# What rules' params hold: the sections without execution-only keys (devices, batch sizes,
# threads, cache paths: dfmnist.config.checks.EXECUTION_ONLY), which scripts read from the config.
# what MTCNN finds, not how fast, and the grid its detections are rounded to
FACE_SCIENCE = {**science(config, "faces"), **DETECTION_FORMAT}
GENERATE_SCIENCE = science(config, "generate")
GENERATE_SHARDS = range(config["generate"]["shards"])
GENERATOR_GPUS = generator_gpus(config["generate"])  # the generate rule's gpu resource
# Face swaps (rules/faceswap.smk): couples of the discovered identities, known at DAG time.
SWAP_SCIENCE = science(config, "faceswap")
SWAP_MODELS = config["faceswap"]["models"]
try:
    SWAP_COUPLES = (
        plan_couples(
            sorted({c.split("/")[0] for c in SOURCE_CLIPS}),
            config["faceswap"]["pairs"],
            config["faceswap"]["seed"],
        )
        if SWAP_MODELS
        else []
    )
except ValueError as exc:
    sys.exit(f"config error at faceswap: {exc}")
SWAP_GROUPS = split_groups(SWAP_COUPLES)  # a couple's identities share a split
SWAP_CROPS = {k: config["faceswap"][k] for k in ("crop_size", "coverage", "per_identity")}
SWAP_CONVERT = {
    k: config["faceswap"][k] for k in ("scenes", "crop_size", "coverage", "blend")
}
SWAP_GPUS = device_gpus(config["faceswap"]["device"]) if SWAP_MODELS else 0
SWAP_RECIPES = RECIPES  # dfmnist.faceswap.training: faceswap (its defaults), simple
COMPRESS_SHARDS = range(config["compress"]["shards"])
VARIANTS_CONFIG = variants_from_config(config["compress"])
VARIANTS = list(VARIANTS_CONFIG)
PROVIDERS = sorted({p for a in ACTIONS for p in config["liveness"]["policy"][a]})
# Detectors (rules/train.smk, ensemble.smk, attribution.smk): the train section, its
# per-experiment variants defaulting to the first compression variant.
TRAIN = train_config(config)
for _key in ("single_action", "cam", "robustness", "attention", "published_scores"):
    TRAIN[_key]["variant"] = TRAIN[_key]["variant"] or VARIANTS[0]
    if TRAIN[_key]["variant"] not in VARIANTS:
        sys.exit(f"config error at train.{_key}.variant: {TRAIN[_key]['variant']!r} is not a "
                 f"variant ({', '.join(VARIANTS)})")
ENSEMBLE_RUNS = ensemble_runs(TRAIN, VARIANTS)  # the training jobs each ensemble target reads


wildcard_constraints:
    shard=r"\d+",
    action="|".join(ACTIONS),
    take=r"[^/]+",
    identity=r"[^/]+",
    variant="|".join(VARIANTS),
    provider="|".join(PROVIDERS),
    autoencoder="|".join(SWAP_MODELS) or "(?!)",
    recipe="|".join(SWAP_RECIPES),
    couple=r"[^/+]+\+[^/+]+",


def _by_shard(items, shards):
    """Item id -> path for every shard at once (ids hashed once per invocation)."""
    out = {s: {} for s in range(shards)}
    for item, path in items:
        out[shard_of(item, shards)][item] = str(path)
    return out


_CLIP_SHARDS = _by_shard(SOURCE_CLIPS.items(), config["sources"]["shards"])
_TAKE_SHARDS = _by_shard(
    ((f"{a}/{t}", p) for a, takes in DRIVING.items() for t, p in takes.items()),
    config["driving"]["shards"],
)


_RESULTS_PREFIX = os.path.normpath(RESULTS) + os.sep


def made_here(path):
    """Whether a workflow rule makes `path` (the embedded demo's inputs)."""
    return os.path.normpath(path).startswith(_RESULTS_PREFIX)


# One list file per shard names its items with their file stamps (dfmnist.storage.shard_inputs): the
# shard's input, rewritten only when an item changes, so Snakemake tracks a few hundred files
# instead of every clip. A broken link or a vanished file is a line like any other and becomes
# a failure row of its shard. Inputs the workflow makes (the demo) are inputs of their own.
_unmade = lambda path: not made_here(path)
SOURCE_INPUTS = {
    s: [path, *(p for p in _CLIP_SHARDS[s].values() if made_here(p))]
    for s, path in write_lists(_CLIP_SHARDS, f"{INPUT_LISTS}/sources", _unmade).items()
}
DRIVING_INPUTS = {
    s: [path, *(p for p in _TAKE_SHARDS[s].values() if made_here(p))]
    for s, path in write_lists(_TAKE_SHARDS, f"{INPUT_LISTS}/driving", _unmade).items()
}


def demo_photo_input(spec):
    """A demo photo given as a file is an input (replacing it rebuilds what derives from it)."""
    return [] if spec.startswith("builtin:") else [spec]


def run_files(target, name):
    """One file of each training job an ensemble target needs (train_detector's outputs)."""
    return [f"{RUN}/{name}".format(model=m, trainset=t) for m, t in ENSEMBLE_RUNS[target]]


def faces_of(couple):
    """The faces items of a couple's two identities (rules/faceswap.smk)."""
    a, b = couple_members(couple)
    return {"faces_a": SWAP_FACES.format(identity=a), "faces_b": SWAP_FACES.format(identity=b)}


def couple_faces(wildcards):
    return faces_of(wildcards.couple)


def swap_model(wildcards):
    """The checkpoint summary a couple's fakes of one model come from: trained with the
    model's recipe (faceswap.train.recipe, or its per_model override)."""
    recipe = train_settings(SWAP_SCIENCE, wildcards.autoencoder)["recipe"]
    return SWAP_MODEL.format(recipe=recipe, autoencoder=wildcards.autoencoder,
                             couple=wildcards.couple)


def recipe_models(wildcards):
    """The first couple's checkpoints of every model with each recipe: the recipe figure's
    (the dataset's own recipe comes from the store, the other trains once)."""
    couple = _first_couple()
    return [SWAP_MODEL.format(recipe=r, autoencoder=m, couple=couple)
            for r in SWAP_RECIPES for m in SWAP_MODELS]


def first_couple_faces(wildcards):
    return faces_of(_first_couple())


def _first_couple():
    if not SWAP_COUPLES:
        raise WorkflowError("faceswap_recipes needs a couple of identities: faceswap.models is "
                            "empty or fewer than two identities have sources")
    return SWAP_COUPLES[0]


def swap_fakes(template=SWAP_FAKES):
    """Every couple's and model's face-swap fakes tables (or failures: SWAP_FAILURES)."""
    return [
        template.format(autoencoder=m, couple=c) for m in SWAP_MODELS for c in SWAP_COUPLES
    ]

# Helpers shared by every stage: config validation, the input layout, sharding.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from dfmnist.config import (
    ConfigError,
    apply_shortcuts,
    check_config,
    demo_clip_relpaths,
    driving_takes,
    schema_error_line,
    source_clips,
)
from dfmnist.compress import variants_from_config
from dfmnist.liveness.policy import expand_policy
from dfmnist.gpus import generator_gpus
from dfmnist.plan import shard_of

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

RESULTS = config["results_dir"]
STORE = f"{RESULTS}/store"  # content-addressed items (see dfmnist.store)
ACTIONS = config["actions"]
try:
    SOURCE_CLIPS = source_clips(config)  # clip id -> path
    DRIVING = driving_takes(config)  # action -> take -> path
except ConfigError as exc:
    sys.exit(str(exc))

SOURCE_SHARDS = range(config["sources"]["shards"])
GENERATE_SHARDS = range(config["generate"]["shards"])
GENERATOR_GPUS = generator_gpus(config["generate"])  # the generate rule's gpu resource
COMPRESS_SHARDS = range(config["compress"]["shards"])
VARIANTS_CONFIG = variants_from_config(config["compress"])
VARIANTS = list(VARIANTS_CONFIG)
PROVIDERS = sorted({p for a in ACTIONS for p in config["liveness"]["policy"][a]})


wildcard_constraints:
    shard=r"\d+",
    action="|".join(ACTIONS),
    take=r"[^/]+",
    identity=r"[^/]+",
    variant="|".join(VARIANTS),
    provider="|".join(PROVIDERS),


def clips_in_shard(shard):
    """Clip id -> path for one scoring shard."""
    n = config["sources"]["shards"]
    return {c: str(p) for c, p in SOURCE_CLIPS.items() if shard_of(c, n) == int(shard)}


DRIVING_TAKES = [(action, take) for action, takes in DRIVING.items() for take in takes]


def accepted_driving(wildcards):
    """Crops of the takes the track_driving checkpoint accepted (evaluated after it ran)."""
    from dfmnist.driving import take_accepted

    videos, tracks = [], []
    for action, take in DRIVING_TAKES:
        info = checkpoints.track_driving.get(action=action, take=take).output.info
        if take_accepted(info):
            videos.append(f"{RESULTS}/driving/{action}/{take}.mp4")
            tracks.append(f"{RESULTS}/driving/{action}/{take}.landmarks.parquet")
    return {"videos": videos, "tracks": tracks}


def demo_photo_input(spec):
    """A demo photo given as a file is an input (replacing it rebuilds what derives from it)."""
    return [] if spec.startswith("builtin:") else [spec]

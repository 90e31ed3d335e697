"""Stage 5: liveness verdicts for one shard of fakes from one provider."""

import sys

import polars as pl

from dfmnist.filtering import LivenessError, verify_shard
from dfmnist.io import atomic_path
from dfmnist.liveness import make_provider
from dfmnist.liveness.cache import VerdictCache
from dfmnist.liveness.policy import provider_options
from dfmnist.liveness.remote import RemoteError
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
params = snakemake.params  # noqa: F821
provider_name = snakemake.wildcards.provider  # noqa: F821
options = provider_options(snakemake.config, provider_name)  # noqa: F821
if provider_name == "local":  # MTCNN on the CPU; web API providers need neither
    limit_threads(snakemake.threads)  # noqa: F821
    options["detector"] = make_detector(params.faces)
provider = make_provider(provider_name, **options)
fakes = pl.read_parquet(snakemake.input[0])  # noqa: F821
with VerdictCache(params.cache) as cache:
    try:
        table = verify_shard(fakes, provider, cache, actions=params.actions)
    except (RemoteError, LivenessError) as exc:  # quota, credentials, unjudged fakes
        log.error("%s", exc)
        sys.exit(1)
log.info("%s: %d passed of %d (%d from cache)", provider_name, table["passed"].sum(),
         table.height, table["cached"].sum())
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    table.write_parquet(tmp)

"""Stage 5: liveness verdicts for one shard of fakes from one provider."""

import sys

import polars as pl

from dfmnist.liveness import make_provider
from dfmnist.liveness.journal import JobCache
from dfmnist.liveness.policy import provider_options
from dfmnist.liveness.remote import RemoteError
from dfmnist.liveness.shard import verify_shard, write_verdicts
from dfmnist.storage.files import atomic_path
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])
params = snakemake.params
provider_name = snakemake.wildcards.provider
options = provider_options(snakemake.config, provider_name)
if provider_name == "local":  # MTCNN on the CPU; web API providers need neither
    limit_threads(snakemake.threads)
    options["detector"] = make_detector(snakemake.config["faces"])
provider = make_provider(provider_name, **options)
fakes = pl.read_parquet(snakemake.input[0])
job = f"{provider_name}-{snakemake.rule}-{'-'.join(snakemake.wildcards)}"
# new verdicts go to this job's own journal
with JobCache(snakemake.config["liveness"]["cache"], job) as cache:
    try:
        table = verify_shard(fakes, provider, cache, actions=params.actions)
    except RemoteError as exc:  # credentials, quota, provider unreachable: one line
        log.error("%s", exc)
        sys.exit(1)
log.info("%s: %d passed, %d failed, %d unjudged of %d (%d from cache)", provider_name,
         table["passed"].sum(), (~table["passed"]).sum(), table["passed"].null_count(),
         table.height, table["cached"].sum())
with atomic_path(snakemake.output[0]) as tmp:
    write_verdicts(table, tmp, params.retry)

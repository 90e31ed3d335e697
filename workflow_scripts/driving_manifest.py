"""Stage 2: the accepted takes (content hashes, jitter) and the rejected ones with reasons."""

import polars as pl

from dfmnist.driving.shard import split_manifest
from dfmnist.storage.files import atomic_path
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
accepted, rejected = split_manifest([pl.read_parquet(p) for p in snakemake.input])
for row in rejected.iter_rows(named=True):
    log.warning("rejected %s/%s (%s): %s", row["action"], row["take"], row["source_path"],
                row["reason"])
for path, why in snakemake.params.ignored:
    log.info("ignored %s: %s", path, why)
log.info("%d driving takes accepted, %d rejected (manifests/driving_failures.parquet), "
         "%d files ignored", accepted.height, rejected.height, len(snakemake.params.ignored))
with atomic_path(snakemake.output.manifest) as tmp:
    accepted.write_parquet(tmp)
with atomic_path(snakemake.output.failures) as tmp:
    rejected.write_parquet(tmp)

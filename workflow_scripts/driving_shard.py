"""Stage 2: track, judge and crop one shard of driving takes through the store."""

from dfmnist.driving.shard import process_shard, science_settings
from dfmnist.storage.files import atomic_path
from dfmnist.storage.shard_inputs import read_list
from dfmnist.storage.store import Store
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params = snakemake.params
listed = read_list(snakemake.input[0])  # the shard's takes (dfmnist.storage.shard_inputs)
takes = [(*take_id.split("/", 1), path) for take_id, path in listed.items()]
log.info("shard %s: %d takes", snakemake.wildcards.shard, len(takes))
table = process_shard(takes, make_detector(snakemake.config["faces"]),
                      science_settings(params.driving, params.faces), Store(params.store))
log.info("shard %s: %d accepted, %d rejected", snakemake.wildcards.shard,
         table["accepted"].sum(), (~table["accepted"]).sum())
with atomic_path(snakemake.output[0]) as tmp:
    table.write_parquet(tmp)

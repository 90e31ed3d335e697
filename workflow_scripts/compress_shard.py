"""Stage 6: encode one shard of reals and accepted fakes into one variant."""

import polars as pl

from dfmnist.compress import compress_shard, encoding_for
from dfmnist.plan import shard_of
from dfmnist.storage.files import atomic_path
from dfmnist.storage.store import Store
from dfmnist.targets.manifest import video_table
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params = snakemake.params
shard = int(snakemake.wildcards.shard)
reals = pl.read_parquet(snakemake.input.sources).filter("selected")
videos = video_table(reals, pl.read_parquet(snakemake.input.accepted))
videos = videos.filter(
    pl.col("video_id").map_elements(lambda v: shard_of(v, params.shards), pl.Int64) == shard
)
table = compress_shard(videos, snakemake.wildcards.variant,
                       encoding_for(params.variant), Store(params.store))
log.info("%d videos, %d encoded, %d reused", table.height, table["computed"].sum(),
         (~table["computed"]).sum())
with atomic_path(snakemake.output[0]) as tmp:
    table.write_parquet(tmp)

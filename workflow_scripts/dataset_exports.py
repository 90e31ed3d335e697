"""Stage 7: the dataset card."""

import polars as pl

from dfmnist.storage.files import atomic_path
from dfmnist.storage.store import Store
from dfmnist.targets.manifest import dataset_card
from dfmnist.workflow import fakes_generators, setup_logging

log = setup_logging(snakemake.log[0])
inp = snakemake.input
config = snakemake.params.config
manifest = pl.read_parquet(inp.manifest)
compressed = pl.concat([pl.read_parquet(p) for p in inp.compressed])
encodes = dict(compressed.group_by("variant").agg(pl.col("ffmpeg_args").first()).iter_rows())
generators = fakes_generators(inp.fakes, Store(snakemake.params.store))
card = dataset_card(manifest, pl.read_csv(inp.rates), config, generators, encodes)
with atomic_path(snakemake.output.card) as tmp:
    tmp.write_text(card)
log.info("dataset card for %d rows", manifest.height)

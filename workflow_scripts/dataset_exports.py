"""Stage 7: the dataset card."""

import polars as pl

from dfmnist.dataset import dataset_card
from dfmnist.io import atomic_path
from dfmnist.store import Store
from dfmnist.workflow import fakes_generator, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
inp = snakemake.input  # noqa: F821
config = snakemake.params.config  # noqa: F821
manifest = pl.read_parquet(inp.manifest)
compressed = pl.concat([pl.read_parquet(p) for p in inp.compressed])
encodes = dict(compressed.group_by("variant").agg(pl.col("ffmpeg_args").first()).iter_rows())
generator = fakes_generator(inp.fakes, Store(snakemake.params.store))  # noqa: F821
card = dataset_card(manifest, pl.read_csv(inp.rates), config, generator, encodes)
with atomic_path(snakemake.output.card) as tmp:  # noqa: F821
    tmp.write_text(card)
log.info("dataset card for %d rows", manifest.height)

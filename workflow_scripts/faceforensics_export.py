"""Stage 7: FaceForensics++'s directory layout and pair splits, as links to the videos."""

import polars as pl

from dfmnist.targets.faceforensics import write_faceforensics
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
params = snakemake.params
counts = write_faceforensics(pl.read_parquet(snakemake.input[0]), snakemake.output[0],
                             params.source_dataset)
log.info("linked %s", counts)

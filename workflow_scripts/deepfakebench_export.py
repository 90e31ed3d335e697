"""Stage 7: the DeepfakeBench export (dataset JSONs, an LMDB per JSON or a folder tree)."""

import polars as pl

from dfmnist.storage.store import Store
from dfmnist.targets.annotations import blank_mask
from dfmnist.targets.deepfakebench.layout import write_deepfakebench_folders
from dfmnist.targets.deepfakebench.lmdb_format import write_deepfakebench_lmdb
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
inp, params = snakemake.input, snakemake.params
manifest = pl.read_parquet(inp.manifest)
annotations = pl.concat([pl.read_parquet(p) for p in inp.annotations])
store = Store(params.store)
blank = blank_mask(params.size, store)
log.info("%d videos: writing the DeepfakeBench export (%s)", manifest.height, params.layout)
if params.layout == "lmdb":
    counts = write_deepfakebench_lmdb(manifest, annotations, snakemake.output[0], params.name,
                                      params.size, blank)
else:
    counts = write_deepfakebench_folders(manifest, annotations, snakemake.output[0], params.name,
                                         params.prefix, params.size, blank, store)
for stem, frames in counts.items():
    log.info("%s.json: %d frames", stem, frames)

"""Stage 4b: swap the faces of a couple's target clips with one trained autoencoder."""

import polars as pl

from dfmnist.faceswap.stage import convert_couple
from dfmnist.gpus import claim_device
from dfmnist.storage.files import atomic_path, read_json
from dfmnist.storage.store import Store
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
inp, params, wc = snakemake.input, snakemake.params, snakemake.wildcards
faces = {f["identity"]: f for f in (read_json(inp.faces_a), read_json(inp.faces_b))}
with claim_device(snakemake.config["faceswap"]["device"], params.gpu_locks) as claim:
    fakes, failures = convert_couple(wc.couple, read_json(inp.model), faces,
                                     pl.read_parquet(inp.sources), params.convert,
                                     Store(params.store), device=claim.device)
log.info("%s %s: %d fakes (%d computed), %d failed", wc.autoencoder, wc.couple, fakes.height,
         fakes["computed"].sum(), failures.height)
with atomic_path(snakemake.output.failures) as tmp:
    failures.write_parquet(tmp)
with atomic_path(snakemake.output.fakes) as tmp:
    fakes.write_parquet(tmp)

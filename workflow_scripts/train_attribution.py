"""Stage 8: train one attribution method on one variant's fakes (or reuse its stored model),
classify that variant's test fakes."""

import sys

import polars as pl

from dfmnist.gpus import claim_device
from dfmnist.storage.store import Store
from dfmnist.train import train_config
from dfmnist.train.attribution import (
    AttributionDataError,
    attribution_settings,
    run_attribution_job,
)
from dfmnist.train.experiments import write_job_outputs
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params, wildcards = snakemake.params, snakemake.wildcards
section = params.train
with claim_device(train_config(snakemake.config)["device"], params.gpu_locks) as claim:
    log.info("%s on %s: %s", wildcards.method, wildcards.variant, claim.label)
    try:
        predictions, history, record = run_attribution_job(
            pl.read_parquet(snakemake.input.manifest), wildcards.method, wildcards.variant,
            attribution_settings(section), Store(params.store), root=".", sizes=params.sizes,
            device=claim.device, pretrained=snakemake.input.get("pretrained"))
    except AttributionDataError as exc:  # a dataset attribution cannot use: one line
        log.error("%s", exc)
        sys.exit(1)
write_job_outputs(snakemake.output, predictions, history, record)

"""Stage 8: train one detector on one training set (or reuse its checkpoint), predict the test
split of every variant."""


import polars as pl

from dfmnist.gpus import claim_device
from dfmnist.storage.store import Store
from dfmnist.train import train_config, train_settings
from dfmnist.train.experiments import run_training_job, write_job_outputs
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params = snakemake.params
section = params.train
model = snakemake.wildcards.model
with claim_device(train_config(snakemake.config)["device"], params.gpu_locks) as claim:
    log.info("%s on %s: %s", model, snakemake.wildcards.trainset, claim.label)
    predictions, history, record = run_training_job(
        pl.read_parquet(snakemake.input.manifest), model, snakemake.wildcards.trainset,
        train_settings(section, model), Store(params.store), root=".", sizes=params.sizes,
        device=claim.device, pretrained=section["pretrained"].get(model),
        eval_batch=section["batch_size"],
    )
write_job_outputs(snakemake.output, predictions, history, record)

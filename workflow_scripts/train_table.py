"""Stage 8: one of the paper's tables or figures from the training jobs' test predictions."""

from dfmnist.train.report import write_experiment
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
params = snakemake.params  # noqa: F821
out = snakemake.output  # noqa: F821
table = write_experiment(
    params.experiment, list(snakemake.input.predictions), list(snakemake.input.runs),  # noqa: F821
    params.train, params.variants, params.actions, params.demo, out.csv, out.md, out.png,
)
log.info("%s: %d rows\n%s", params.experiment, table.height, table)

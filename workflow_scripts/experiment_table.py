"""Stage 8: one of the paper's tables or figures from the training jobs' test predictions."""

from dfmnist.train.table_files import write_experiment
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
params = snakemake.params
out = snakemake.output
table = write_experiment(
    snakemake.wildcards.experiment, list(snakemake.input.predictions), list(snakemake.input.runs),
    params.train, params.variants, params.actions, params.demo, out.csv, out.md, out.png,
)
log.info("%s: %d rows\n%s", snakemake.wildcards.experiment, table.height, table)

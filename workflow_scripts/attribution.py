"""Stage 8: the attribution accuracy table per variant and method, and confusion matrices."""

from dfmnist.train.attribution import write_attribution
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
params, inp, out = snakemake.params, snakemake.input, snakemake.output
table = write_attribution(list(inp.predictions), list(inp.runs), params.methods,
                          params.variants, params.crfs, params.demo, out.csv, out.md, out.png)
log.info("attribution: %d rows\n%s", table.height, table)

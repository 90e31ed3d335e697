"""Stage 5: fold the liveness jobs' verdict journals into the shared cache (one process)."""

import json

from dfmnist.liveness.journal import merge
from dfmnist.storage.files import atomic_path
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
report = merge(snakemake.config["liveness"]["cache"])
log.info("merged %(verdicts)d verdicts from %(journals)d journals (%(removed)d removed)", report)
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(json.dumps(report))

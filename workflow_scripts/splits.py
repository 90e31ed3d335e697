"""Stage 7: identity-disjoint splits over the selected reals and accepted fakes."""

import polars as pl

from dfmnist.storage.files import atomic_path
from dfmnist.targets.manifest import video_table
from dfmnist.targets.splits import assign_group_splits
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
params = snakemake.params
reals = pl.read_parquet(snakemake.input.sources).filter("selected")
videos = video_table(reals, pl.read_parquet(snakemake.input.accepted))
videos = videos.with_columns(pl.col("action").fill_null("real"))
assignment = assign_group_splits(videos, params.splits, params.seed, params.groups)
table = pl.DataFrame({"identity": list(assignment), "split": list(assignment.values())})
for split, group in table.group_by("split"):
    log.info("%s: %s", split[0], ", ".join(sorted(group["identity"])))
with atomic_path(snakemake.output[0]) as tmp:
    table.sort("identity").write_parquet(tmp)

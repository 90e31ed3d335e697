"""Stage 1: select sources over identities from all clip scores; selected frame-folder clips
are made videos (in the store) so that every real is a video downstream."""

import polars as pl

from dfmnist.io import atomic_path, sha256_file
from dfmnist.sources import clip_as_video, select_sources
from dfmnist.store import Store
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
cfg = snakemake.params.sources  # noqa: F821
store = Store(snakemake.params.store)  # noqa: F821
scores = pl.concat([pl.read_parquet(p) for p in snakemake.input], how="diagonal_relaxed")  # noqa: F821
table = select_sources(scores.drop("computed"), cfg["count"], cfg["seed"])
videos = {}
for row in table.filter("selected").iter_rows(named=True):
    video = clip_as_video(row["path"], store, cfg["folder_fps"])
    if str(video) != row["path"]:
        videos[row["clip_id"]] = (str(video), sha256_file(video))
table = table.with_columns(pl.col("path").alias("source_path")).with_columns(
    pl.col("clip_id").replace_strict({c: v[0] for c, v in videos.items()}, default=pl.col("path"))
    .alias("path"),
    pl.col("clip_id").replace_strict({c: v[1] for c, v in videos.items()},
                                     default=pl.col("sha256")).alias("sha256"),
)
log.info("selected %d of %d clips over %d identities (%d frame folders made videos)",
         table["selected"].sum(), table.height, table.filter("selected")["identity"].n_unique(),
         len(videos))
with atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    table.write_parquet(tmp)

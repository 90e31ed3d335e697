"""Stage 1: select sources over identities from all clip scores; a selected clip's best frame
becomes a PNG file of its own (`image_path`), and selected frame-folder clips are made videos
(in the store) so that every real is a video downstream. Rejected clips keep
their row (with its reason) and are also listed in manifests/source_failures.parquet."""

import polars as pl

from dfmnist.sources.scoring import with_source_images
from dfmnist.sources.selection import clip_as_video, select_sources, source_failures
from dfmnist.storage.files import atomic_path, sha256_file
from dfmnist.storage.store import Store
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
cfg = snakemake.params.sources
store = Store(snakemake.params.store)
scores = pl.concat([pl.read_parquet(p) for p in snakemake.input], how="diagonal_relaxed")
table = with_source_images(select_sources(scores.drop("computed"), cfg["count"], cfg["seed"]),
                           store)
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
failures = source_failures(table)
for row in failures.iter_rows(named=True):
    log.warning("rejected %s (%s): %s", row["clip_id"], row["source_path"], row["reason"])
for path, why in snakemake.params.ignored:
    log.info("ignored %s: %s", path, why)
log.info("selected %d of %d clips over %d identities (%d frame folders made videos); "
         "%d rejected, %d files ignored", table["selected"].sum(), table.height,
         table.filter("selected")["identity"].n_unique(), len(videos), failures.height,
         len(snakemake.params.ignored))
with atomic_path(snakemake.output.sources) as tmp:
    table.write_parquet(tmp)
with atomic_path(snakemake.output.failures) as tmp:
    failures.write_parquet(tmp)

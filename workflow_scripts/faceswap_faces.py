"""Stage 4b: one identity's face track per selected clip and its aligned training crops."""

import polars as pl

from dfmnist.faceswap.stage import identity_faces
from dfmnist.storage.files import write_json
from dfmnist.storage.store import Store
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
identity, params = snakemake.wildcards.identity, snakemake.params
sources = pl.read_parquet(snakemake.input[0])
clips = sources.filter(pl.col("selected") & (pl.col("identity") == identity))
log.info("%s: %d selected clips", identity, clips.height)
detector = make_detector(snakemake.config["faces"])  # faces.device: how, never what
summary = identity_faces(clips.select("clip_id", "path", "sha256"), detector, params.crops,
                         params.faces, Store(params.store))
log.info("%s: %d training crops from %d clips%s", identity, summary["crops"],
         len(summary["clips"]), f"; no face in {summary['faceless']}" if summary["faceless"]
         else "")
write_json(snakemake.output[0], {"identity": identity, **summary})

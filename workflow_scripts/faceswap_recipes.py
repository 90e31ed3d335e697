"""Report: one converted frame per face-swap model and training recipe, side by side."""

import polars as pl

from dfmnist.faceswap.recipe_figure import recipe_grid, write_png
from dfmnist.storage.files import atomic_path, read_json
from dfmnist.storage.store import Store
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
inp, params = snakemake.input, snakemake.params
faces = {f["identity"]: f for f in (read_json(inp.faces_a), read_json(inp.faces_b))}
trained = [read_json(path) for path in inp.models]
grid = recipe_grid(trained[0]["couple"], trained, faces, pl.read_parquet(inp.sources),
                   params.convert, Store(params.store))
with atomic_path(snakemake.output[0]) as tmp:  # keeps the .png suffix cv2 writes by
    write_png(tmp, grid)
log.info("%d models x %d recipes -> %s", len({t["model"] for t in trained}),
         len({t["recipe"] for t in trained}), snakemake.output[0])

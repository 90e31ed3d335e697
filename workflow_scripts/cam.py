"""Stage 8: class activation maps of the detector trained on one variant (Figure 7)."""

import json
from pathlib import Path

import polars as pl

from dfmnist.storage.files import atomic_path
from dfmnist.storage.store import Store
from dfmnist.train.cam import cam_grid, pick_frames, save_grid
from dfmnist.train.experiments import frame_size, load_detector
from dfmnist.train.tables import markdown
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params, inp, out = snakemake.params, snakemake.input, snakemake.output
record = json.loads(Path(inp.run).read_text())
store = Store(params.store)
model = load_detector(store, record)
chosen = pick_frames(pl.read_parquet(inp.manifest), params.variant, params.frames)
grid, table = cam_grid(model, chosen, frame_size(params.model, params.sizes, model.input_size))
save_grid(grid, table, out.png, out.csv)
notes = [f"{params.model} trained on {params.variant}, checkpoint {record['key'][:12]}",
         "top row: test frames (middle sampled frame of each video); bottom row: the map for "
         "the fake class, red where the detector looks",
         "the paper's Figure 7 shows ResNet-50 trained on raw videos"]
if params.demo:
    notes.append("**demo data**: a detector trained on a handful of videos; its maps show "
                 "where that detector looks, not what detectors learn on DeepFake MNIST+")
with atomic_path(out.md) as tmp:
    tmp.write_text(markdown(table, "Figure 7: class activation maps", notes))
log.info("cam: %d frames", table.height)

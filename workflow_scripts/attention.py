"""Stage 8: EfficientNetAutoAttB4's attention maps over test frames of each action."""

import json
from pathlib import Path

import polars as pl
import torch

from dfmnist.storage.files import atomic_path
from dfmnist.storage.store import Store
from dfmnist.train.cam import cam_grid, pick_frames, save_grid
from dfmnist.train.experiments import frame_size, load_detector
from dfmnist.train.tables import markdown
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
params, inp, out = snakemake.params, snakemake.input, snakemake.output
record = json.loads(Path(inp.run).read_text())
model = load_detector(Store(params.store), record)
chosen = pick_frames(pl.read_parquet(inp.manifest), params.variant, params.frames)


def attention(net, images):
    with torch.no_grad():
        return net.attention_map(images).numpy()


size = frame_size(record["model"], params.sizes, model.input_size)
grid, table = cam_grid(model, chosen, size, maps=attention)
save_grid(grid, table, out.png, out.csv)
notes = [f"{record['model']} trained on {params.variant}, checkpoint {record['key'][:12]}",
         "top row: test frames (middle sampled frame of each video); bottom row: the sigmoid "
         "attention map of the tenth MBConv block (red 1: kept, blue 0: suppressed)"]
if params.demo:
    notes.append("**demo data**: a detector trained on a handful of videos")
with atomic_path(out.md) as tmp:
    tmp.write_text(markdown(table, "EfficientNetAutoAttB4 attention maps", notes))
log.info("attention: %d frames", table.height)

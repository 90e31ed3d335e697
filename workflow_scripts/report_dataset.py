"""Report material: the dataset card as HTML, the spoof rates, sample frames per variant."""

import shutil
from pathlib import Path

import cv2
import polars as pl

from dfmnist.report import markdown_to_html, sample_frames_grid
from dfmnist.storage.files import atomic_path
from dfmnist.workflow import setup_logging

log = setup_logging(snakemake.log[0])
inp, out = snakemake.input, snakemake.output
with atomic_path(out.card) as tmp:
    tmp.write_text(markdown_to_html(Path(inp.card).read_text(), "Dataset card"))
with atomic_path(out.rates) as tmp:
    shutil.copyfile(inp.rates, tmp)
grid = sample_frames_grid(pl.read_parquet(inp.manifest), ".", snakemake.params.size)
with atomic_path(out.frames) as tmp:
    if not cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {out.frames}")
log.info("sample frames: %dx%d", grid.shape[1], grid.shape[0])

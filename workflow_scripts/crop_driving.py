"""Stage 2: crop one accepted driving take along its track and save the landmark track."""

import polars as pl

from dfmnist.driving import crop_take
from dfmnist.faces import FaceTrack
from dfmnist.io import atomic_path, write_video
from dfmnist.workflow import limit_threads, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
limit_threads(snakemake.threads)  # noqa: F821
cfg = snakemake.params.driving  # noqa: F821
track = FaceTrack.from_frame(pl.read_parquet(snakemake.input.track))  # noqa: F821
crop = crop_take(snakemake.input.video, track, fps=cfg["fps"], size=cfg["size"],  # noqa: F821
                 margin=cfg["margin"], smooth_window=cfg["smooth_window"])
write_video(snakemake.output.video, crop.frames, crop.fps)  # noqa: F821
with atomic_path(snakemake.output.track) as tmp:  # noqa: F821
    crop.track.to_frame().write_parquet(tmp)
log.info("cropped %d frames at %.2f fps from %dx%d, face missing in %.1f%%, jitter %.2f -> "
         "%.2f px", len(crop.frames), crop.fps, *crop.source_size,
         100 * crop.track.missing_fraction, crop.jitter_raw, crop.jitter)

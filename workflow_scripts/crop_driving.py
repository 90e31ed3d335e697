"""Stage 2: face-crop one raw driving take and save its landmark track."""

from dfmnist.driving import crop_driving
from dfmnist.io import atomic_path, write_video
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
limit_threads(snakemake.threads)  # noqa: F821
params = snakemake.params  # noqa: F821
cfg = params.driving
crop = crop_driving(snakemake.input[0], make_detector(params.faces), size=cfg["size"],  # noqa: F821
                    margin=cfg["margin"], smooth_window=cfg["smooth_window"],
                    min_prob=params.faces["min_prob"])
write_video(snakemake.output.video, crop.frames, crop.fps)  # noqa: F821
with atomic_path(snakemake.output.track) as tmp:  # noqa: F821
    crop.track.to_frame().write_parquet(tmp)
log.info("cropped %d frames at %.2f fps from %dx%d, face missing in %.1f%%", len(crop.frames),
         crop.fps, *crop.source_size, 100 * crop.track.missing_fraction)

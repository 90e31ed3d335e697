"""Demo: a raw phone-like driving video of one action, from a real photo."""

from dfmnist import demo
from dfmnist.plan import stable_int
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
cfg = snakemake.params.demo
w = snakemake.wildcards
photo = demo.load_photo(cfg["driving_performer"])
demo.make_driving_video(
    photo, w.action, snakemake.output[0], make_detector(snakemake.config["faces"]),
    width=cfg["driving_width"], height=cfg["driving_height"], fps=cfg["driving_fps"],
    seconds=cfg["driving_seconds"], seed=stable_int(cfg["seed"], w.action, w.take) % 2**31,
)
log.info("wrote %s", snakemake.output[0])

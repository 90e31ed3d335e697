"""Demo: one identity's VoxCeleb1-style source clips from a real photo (or real video)."""

from dfmnist import demo
from dfmnist.plan import stable_int
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params = snakemake.params
identity = snakemake.wildcards.identity
cfg = params.demo
photo, real_frames = demo.load_identity(params.spec)
paths = demo.make_source_clips(
    photo, identity, list(snakemake.output), make_detector(snakemake.config["faces"]),
    videos=cfg["videos_per_identity"], clips_per_video=cfg["clips_per_video"],
    seconds=cfg["clip_seconds"], fps=cfg["clip_fps"],
    seed=stable_int(cfg["seed"], identity) % 2**31, real_frames=real_frames,
)
log.info("wrote %d clips for %s", len(paths), identity)

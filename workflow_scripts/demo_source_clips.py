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
    photo, identity, params.out_dir, make_detector(params.faces),
    videos=cfg["videos_per_identity"], clips_per_video=cfg["clips_per_video"],
    seconds=cfg["clip_seconds"], fps=cfg["clip_fps"],
    seed=stable_int(cfg["seed"], identity) % 2**31, real_frames=real_frames,
)
expected = sorted(str(p) for p in snakemake.output)
if sorted(str(p) for p in paths) != expected:
    raise RuntimeError(f"demo clips {sorted(map(str, paths))} differ from outputs {expected}")
log.info("wrote %d clips for %s", len(paths), identity)

"""Stage 2: decode one raw driving take, track its face, and accept or reject it."""

import json

from dfmnist.driving import track_take
from dfmnist.io import atomic_path
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821
limit_threads(snakemake.threads)  # noqa: F821
params = snakemake.params  # noqa: F821
cfg = params.driving
track, info = track_take(snakemake.input[0], make_detector(params.faces), fps=cfg["fps"],  # noqa: F821
                         min_prob=params.faces["min_prob"], max_missing=cfg["max_missing"])
with atomic_path(snakemake.output.track) as tmp:  # noqa: F821
    track.to_frame().write_parquet(tmp)
with atomic_path(snakemake.output.info) as tmp:  # noqa: F821
    tmp.write_text(json.dumps(info.to_dict(), indent=1))
log.info("%s: %d frames at %.2f fps (%dx%d, %s, rotation %d), face in %d: %s", info.path,
         info.frames, info.fps, info.width, info.height, info.codec, info.rotation,
         info.faces_found, "accepted" if info.accepted else f"REJECTED, {info.reason}")

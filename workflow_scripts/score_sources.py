"""Stage 1: score the sampled frames of one shard of source clips into one store item for the
shard (a bad clip is a row with a reason, never the end of its shard)."""

from dfmnist.sources.scoring import score_shard
from dfmnist.sources.selection import score_table
from dfmnist.storage.files import atomic_path
from dfmnist.storage.shard_inputs import read_list
from dfmnist.storage.store import Store
from dfmnist.workflow import limit_threads, make_detector, setup_logging

log = setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
params = snakemake.params
detector = make_detector(snakemake.config["faces"])
store = Store(params.store)
clips = read_list(snakemake.input[0])  # the shard's clips (dfmnist.storage.shard_inputs)
records = score_shard(clips, detector, params.sources["frames_per_clip"],
                      params.faces["min_prob"], store, params.sources["min_frames"])
for i, record in enumerate(records, start=1):
    clip_id, path = record["clip_id"], record["path"]
    if record["reason"]:
        log.warning("[%d/%d] %s REJECTED (%s): %s", i, len(clips), clip_id, path,
                    record["reason"])
    else:
        log.info("[%d/%d] %s: best frame %s score %.3f%s", i, len(clips), clip_id,
                 record["frame"], record["score"], "" if record["computed"] else " (reused)")
with atomic_path(snakemake.output[0]) as tmp:
    score_table(records).write_parquet(tmp)

# Stage 1: score sampled frames of every source clip (MTCNN pose proxies, detection
# probability, sharpness), keep the best frame per clip (one store item per shard), select
# sources over identities (only a selected source's frame becomes a file of its own).
# A clip that cannot be used (empty, not a video, damaged, a damaged frame image, too short, no
# face) is a row with a reason; it never costs its shard.


rule score_sources:
    input:
        lambda w: SOURCE_INPUTS[int(w.shard)],  # the list file first
    output:
        SOURCE_SCORES,
    params:
        faces=FACE_SCIENCE,
        sources={k: config["sources"][k] for k in ("frames_per_clip", "min_frames")},
        store=STORE,
    threads: 1  # MTCNN runs on one thread whatever the job has (dfmnist.vision.faces.one_thread)
    log:
        f"{LOGS}/score_sources/{{shard}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/score_sources.py"


rule select_sources:
    input:
        expand(SOURCE_SCORES, shard=SOURCE_SHARDS),
    output:
        sources=SOURCES_MANIFEST,
        failures=SOURCE_FAILURES,
    params:
        sources={k: config["sources"][k] for k in ("count", "seed", "folder_fps")},
        store=STORE,
        ignored=SOURCES_IGNORED.entries,
    log:
        f"{LOGS}/select_sources.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/select_sources.py"

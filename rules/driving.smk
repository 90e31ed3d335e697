# Stage 2: face-crop each raw driving take to 256x256 with a smoothed MTCNN track, in shards.
# Each take is one item in the store (keyed by its bytes and the crop settings); a take that
# cannot be used (empty, not a video, damaged, too short, no face, too many faceless frames)
# is a row with a reason in the shard's table, and the rest of the dataset still builds. The
# decision lives in the shard tables, so the graph has no checkpoint per take.


rule driving_shard:
    input:
        lambda w: DRIVING_INPUTS[int(w.shard)],  # the list file first
    output:
        DRIVING_SHARD,
    params:
        driving=config["driving"],
        faces=FACE_SCIENCE,
        store=STORE,
    # one thread per job, jobs side by side: the batched cascade gains most per thread
    # (bench/mtcnn_crop.py)
    threads: 1
    log:
        f"{LOGS}/driving_shard/{{shard}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/driving_shard.py"


rule driving_manifest:
    input:
        expand(DRIVING_SHARD, shard=DRIVING_SHARDS),
    output:
        manifest=DRIVING_MANIFEST,
        failures=DRIVING_FAILURES,
    params:
        ignored=DRIVING_IGNORED.entries,
    log:
        f"{LOGS}/driving_manifest.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/driving_manifest.py"

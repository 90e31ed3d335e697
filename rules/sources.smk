# Stage 1: score sampled frames of every source clip (MTCNN pose proxies, detection
# probability, sharpness), keep the best frame per clip, select sources over identities.


rule score_sources:
    input:
        lambda w: list(clips_in_shard(w.shard).values()),
    output:
        f"{RESULTS}/sources/scores/{{shard}}.parquet",
    params:
        clips=lambda w: clips_in_shard(w.shard),
        faces=config["faces"],
        sources=config["sources"],
        store=STORE,
    threads: 2
    log:
        f"{RESULTS}/logs/score_sources/{{shard}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/score_sources.py"


rule select_sources:
    input:
        expand(f"{RESULTS}/sources/scores/{{shard}}.parquet", shard=SOURCE_SHARDS),
    output:
        f"{RESULTS}/manifests/sources.parquet",
    params:
        sources=config["sources"],
        store=STORE,
    log:
        f"{RESULTS}/logs/select_sources.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/select_sources.py"

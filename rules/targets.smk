# Stage 7: training targets: frames per video and variant, identity-disjoint splits, and
# the dataset manifest.


rule extract_frames:
    input:
        f"{RESULTS}/compress/{{variant}}/{{shard}}.parquet",
    output:
        f"{RESULTS}/frames/{{variant}}/{{shard}}.parquet",
    params:
        frames_per_video=config["targets"]["frames_per_video"],
        store=STORE,
    log:
        f"{RESULTS}/logs/extract_frames/{{variant}}/{{shard}}.log",
    conda:
        "../envs/media.yaml"
    script:
        "../workflow_scripts/extract_frames.py"


rule splits:
    input:
        sources=f"{RESULTS}/manifests/sources.parquet",
        accepted=f"{RESULTS}/fake/accepted.parquet",
    output:
        f"{RESULTS}/dataset/splits.parquet",
    params:
        targets=config["targets"],
    log:
        f"{RESULTS}/logs/splits.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/splits.py"


rule dataset_manifest:
    input:
        sources=f"{RESULTS}/manifests/sources.parquet",
        accepted=f"{RESULTS}/fake/accepted.parquet",
        splits=f"{RESULTS}/dataset/splits.parquet",
        compressed=expand(
            f"{RESULTS}/compress/{{variant}}/{{shard}}.parquet",
            variant=VARIANTS,
            shard=COMPRESS_SHARDS,
        ),
        frames=expand(
            f"{RESULTS}/frames/{{variant}}/{{shard}}.parquet",
            variant=VARIANTS,
            shard=COMPRESS_SHARDS,
        ),
    output:
        f"{RESULTS}/dataset/dataset.parquet",
    params:
        generator=config["generate"]["generator"],
    log:
        f"{RESULTS}/logs/dataset_manifest.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/dataset_manifest.py"

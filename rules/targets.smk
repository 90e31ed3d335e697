# Stage 7: training targets: frames per video and variant, identity-disjoint splits, the
# dataset manifest, a DeepfakeBench-style JSON and a dataset card.


rule extract_frames:
    input:
        f"{RESULTS}/compress/{{variant}}/{{shard}}.parquet",
    output:
        f"{RESULTS}/frames/{{variant}}/{{shard}}.parquet",
    params:
        sampling=config["targets"]["frames"],
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
        verdicts=[f"{RESULTS}/liveness/verdicts.parquet"],  # every round's verdicts
        fakes=expand(f"{RESULTS}/fake/raw/shards/{{shard}}.parquet", shard=GENERATE_SHARDS),
    output:
        f"{RESULTS}/dataset/dataset.parquet",
    params:
        store=STORE,
    log:
        f"{RESULTS}/logs/dataset_manifest.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/dataset_manifest.py"


rule dataset_exports:
    input:
        manifest=f"{RESULTS}/dataset/dataset.parquet",
        rates=f"{RESULTS}/liveness/spoof_rates.csv",
        compressed=expand(
            f"{RESULTS}/compress/{{variant}}/{{shard}}.parquet",
            variant=VARIANTS,
            shard=COMPRESS_SHARDS,
        ),
        fakes=expand(f"{RESULTS}/fake/raw/shards/{{shard}}.parquet", shard=GENERATE_SHARDS),
    output:
        json=f"{RESULTS}/dataset/deepfakebench.json",
        card=f"{RESULTS}/dataset/README.md",
    params:
        config=config,
        store=STORE,
    log:
        f"{RESULTS}/logs/dataset_exports.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/dataset_exports.py"

# Stage 7: training targets: frames per video and variant (with face landmarks and masks),
# identity-disjoint splits, the dataset manifest, a dataset card, and exports that
# DeepfakeBench and FaceForensics++ tooling read unmodified.


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


rule annotate_frames:
    input:
        f"{RESULTS}/frames/{{variant}}/{{shard}}.parquet",
    output:
        f"{RESULTS}/annotations/{{variant}}/{{shard}}.parquet",
    params:
        size=config["targets"]["frames"]["sizes"][0],
        faces=FACE_SCIENCE,
        store=STORE,
    log:
        f"{RESULTS}/logs/annotate_frames/{{variant}}/{{shard}}.log",
    conda:
        "../envs/media.yaml"
    script:
        "../workflow_scripts/annotate_frames.py"


rule splits:
    input:
        sources=f"{RESULTS}/manifests/sources.parquet",
        accepted=f"{RESULTS}/fake/accepted.parquet",
    output:
        f"{RESULTS}/dataset/splits.parquet",
    params:
        splits=config["targets"]["splits"],
        seed=config["targets"]["seed"],
        groups=SWAP_GROUPS,  # a face-swap couple's identities share a split
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
    output:
        f"{RESULTS}/dataset/dataset.parquet",
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
        fakes=expand(FAKES, shard=GENERATE_SHARDS),
    output:
        card=f"{RESULTS}/dataset/README.md",
    params:
        # the card states the dataset's making: every science key but the detectors' training
        config={k: v for k, v in science(config).items() if k != "train"},
        store=STORE,
    log:
        f"{RESULTS}/logs/dataset_exports.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/dataset_exports.py"


rule deepfakebench_export:
    input:
        manifest=f"{RESULTS}/dataset/dataset.parquet",
        annotations=expand(
            f"{RESULTS}/annotations/{{variant}}/{{shard}}.parquet",
            variant=VARIANTS,
            shard=COMPRESS_SHARDS,
        ),
    output:
        directory(f"{RESULTS}/deepfakebench"),
    params:
        name=config["targets"]["dataset_name"],
        layout=config["targets"]["deepfakebench"]["format"],
        # folders only: LMDB keys carry no prefix
        prefix=(config["targets"]["deepfakebench"]["path_prefix"]
                if config["targets"]["deepfakebench"]["format"] == "folders" else None),
        size=config["targets"]["frames"]["sizes"][0],
        store=STORE,
    log:
        f"{RESULTS}/logs/deepfakebench_export.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/deepfakebench_export.py"


rule faceforensics_export:
    input:
        f"{RESULTS}/dataset/dataset.parquet",
    output:
        directory(f"{RESULTS}/faceforensics"),
    params:
        source_dataset=config["targets"]["faceforensics"]["source_dataset"],
    log:
        f"{RESULTS}/logs/faceforensics_export.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/faceforensics_export.py"

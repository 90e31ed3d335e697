# Stage 7: training targets: frames per video and variant (with face landmarks and masks),
# identity-disjoint splits, the dataset manifest, a dataset card, and exports that
# DeepfakeBench and FaceForensics++ tooling read unmodified.


rule extract_frames:
    input:
        COMPRESSED,
    output:
        FRAMES,
    params:
        sampling=config["targets"]["frames"],
        store=STORE,
    log:
        f"{LOGS}/extract_frames/{{variant}}/{{shard}}.log",
    conda:
        "../envs/media.yaml"
    script:
        "../workflow_scripts/extract_frames.py"


rule annotate_frames:
    input:
        FRAMES,
    output:
        ANNOTATIONS,
    params:
        size=config["targets"]["frames"]["sizes"][0],
        faces=FACE_SCIENCE,
        store=STORE,
    log:
        f"{LOGS}/annotate_frames/{{variant}}/{{shard}}.log",
    conda:
        "../envs/media.yaml"
    script:
        "../workflow_scripts/annotate_frames.py"


rule splits:
    input:
        sources=SOURCES_MANIFEST,
        accepted=ACCEPTED,
    output:
        SPLITS,
    params:
        splits=config["targets"]["splits"],
        seed=config["targets"]["seed"],
        groups=SWAP_GROUPS,  # a face-swap couple's identities share a split
    log:
        f"{LOGS}/splits.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/splits.py"


rule dataset_manifest:
    input:
        sources=SOURCES_MANIFEST,
        accepted=ACCEPTED,
        splits=SPLITS,
        compressed=expand(
            COMPRESSED,
            variant=VARIANTS,
            shard=COMPRESS_SHARDS,
        ),
        frames=expand(
            FRAMES,
            variant=VARIANTS,
            shard=COMPRESS_SHARDS,
        ),
        verdicts=[ALL_VERDICTS],  # every round's verdicts
    output:
        DATASET,
    log:
        f"{LOGS}/dataset_manifest.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/dataset_manifest.py"


rule dataset_exports:
    input:
        manifest=DATASET,
        rates=SPOOF_RATES,
        compressed=expand(
            COMPRESSED,
            variant=VARIANTS,
            shard=COMPRESS_SHARDS,
        ),
        fakes=expand(FAKES, shard=GENERATE_SHARDS),
    output:
        card=DATASET_CARD,
    params:
        # the card states the dataset's making: every science key but the detectors' training
        config={k: v for k, v in science(config).items() if k != "train"},
        store=STORE,
    log:
        f"{LOGS}/dataset_exports.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/dataset_exports.py"


rule deepfakebench_export:
    input:
        manifest=DATASET,
        annotations=expand(
            ANNOTATIONS,
            variant=VARIANTS,
            shard=COMPRESS_SHARDS,
        ),
    output:
        directory(DEEPFAKEBENCH),
    params:
        name=config["targets"]["dataset_name"],
        layout=config["targets"]["deepfakebench"]["format"],
        # folders only: LMDB keys carry no prefix
        prefix=(config["targets"]["deepfakebench"]["path_prefix"]
                if config["targets"]["deepfakebench"]["format"] == "folders" else None),
        size=config["targets"]["frames"]["sizes"][0],
        store=STORE,
    log:
        f"{LOGS}/deepfakebench_export.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/deepfakebench_export.py"


rule faceforensics_export:
    input:
        DATASET,
    output:
        directory(FACEFORENSICS),
    params:
        source_dataset=config["targets"]["faceforensics"]["source_dataset"],
    log:
        f"{LOGS}/faceforensics_export.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/faceforensics_export.py"

# dfmnist: DeepFake MNIST+-style facial-animation datasets, end to end.
# Stages (one rules/*.smk each): demo -> sources -> driving -> plan -> generate -> liveness
# -> compress -> targets. See README.md for the DAG and the config reference.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/sources.smk"
include: "rules/driving.smk"
include: "rules/plan.smk"
include: "rules/faceswap.smk"
include: "rules/generators.smk"
include: "rules/liveness.smk"
include: "rules/compress.smk"
include: "rules/targets.smk"
include: "rules/train.smk"  # opt-in: table3, table4, table5, per_action, ...
include: "rules/ensemble.smk"  # opt-in: ensemble, robustness, attention
include: "rules/attribution.smk"  # opt-in: attribution
include: "rules/report.smk"


rule all:
    input:
        DATASET,
        SPOOF_RATES,
        DATASET_CARD,
        DEEPFAKEBENCH,
        FACEFORENSICS,
        REPORT_SWAP_RECIPES if SWAP_COUPLES and config["faceswap"]["recipe_figure"] else [],
    default_target: True

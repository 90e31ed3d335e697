# Stage 8 (continued): model attribution, opt-in by naming its target:
#   snakemake --cores all attribution
# One job per (method, compression variant) trains DMA-STA or the frame-level baseline on that
# variant's fakes, labelled by the dataset's `model` column, and classifies its test fakes; the
# `attribution` rule writes the accuracy table and the confusion matrices.
from dfmnist.gpus import device_gpus
from dfmnist.train import ATTRIBUTION_METHODS

ATTRIBUTION = TRAIN["attribution"]
ATTRIBUTION_BACKBONE_WEIGHTS = TRAIN["pretrained"].get(ATTRIBUTION["backbone"])

ATTRIBUTION_FILES = lambda name: expand(
    f"{ATTRIBUTION_RUN}/{name}", method=ATTRIBUTION["methods"], variant=VARIANTS
)


rule train_attribution:
    input:
        # a user's local ImageNet file for the backbone is an input: replacing it retrains
        unpack(lambda w: {"pretrained": ATTRIBUTION_BACKBONE_WEIGHTS}
               if ATTRIBUTION_BACKBONE_WEIGHTS else {}),
        manifest=DATASET,
    output:
        predictions=f"{ATTRIBUTION_RUN}/predictions.parquet",
        history=f"{ATTRIBUTION_RUN}/history.csv",
        run=f"{ATTRIBUTION_RUN}/run.json",
    wildcard_constraints:
        method="|".join(ATTRIBUTION_METHODS),
    params:
        # the shared recipe keys attribution reads, and its own section (its `recipe` too: a
        # changed recipe changes this param, so the outputs are rebuilt)
        train={key: TRAIN[key] for key in ("betas", "poly_power", "seed", "attribution")},
        sizes=config["targets"]["frames"]["sizes"],
        store=STORE,
        gpu_locks=GPU_LOCKS,
    threads: workflow.cores  # CPU training uses every core; jobs run one after another
    resources:
        gpu=device_gpus(TRAIN["device"]),
    log:
        f"{LOGS}/train_attribution/{{method}}/{{variant}}.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_attribution.py"


rule attribution:
    input:
        predictions=ATTRIBUTION_FILES("predictions.parquet"),
        runs=ATTRIBUTION_FILES("run.json"),
    output:
        csv=report(f"{TABLES}/attribution.csv", caption="../report/attribution.rst",
                   category="Detectors", subcategory="Model attribution"),
        md=f"{TABLES}/attribution.md",
        png=report(f"{TABLES}/attribution.png", caption="../report/attribution.rst",
                   category="Detectors", subcategory="Model attribution"),
    params:
        methods=ATTRIBUTION["methods"],
        variants=VARIANTS,
        crfs={v: VARIANTS_CONFIG[v].get("crf") for v in VARIANTS},
        demo=config["demo"]["enabled"],
    log:
        f"{LOGS}/tables/attribution.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/attribution.py"

# Stage 8: detector baselines and the paper's experiments, opt-in by naming a target:
#   snakemake --cores all table3 per_action   (also table4, table5, single_action, corpus_size)
# One job per (detector, training set) trains or reuses a stored checkpoint and predicts the
# test split of every variant; the table rules only aggregate those predictions.
from dfmnist.train import DETECTORS, experiment_runs, run_paths, train_config

TRAIN = train_config(config)
for _key in ("single_action", "cam"):
    TRAIN[_key]["variant"] = TRAIN[_key]["variant"] or VARIANTS[0]
    if TRAIN[_key]["variant"] not in VARIANTS:
        sys.exit(f"config error at train.{_key}.variant: {TRAIN[_key]['variant']!r} is not a "
                 f"variant ({', '.join(VARIANTS)})")
TRAIN_DIR = f"{RESULTS}/train"
TABLES_DIR = f"{RESULTS}/tables"
EXPERIMENT_INPUT = {name: run_paths(TRAIN_DIR, pairs)
                    for name, pairs in experiment_runs(TRAIN, VARIANTS, ACTIONS).items()}
EXPERIMENT_OUTPUT = {
    name: {
        "csv": report(f"{TABLES_DIR}/{name}.csv", caption=f"../report/{name}.rst",
                      category="Detectors", subcategory=category),
        "md": f"{TABLES_DIR}/{name}.md",
        "png": report(f"{TABLES_DIR}/{name}.png", caption=f"../report/{name}.rst",
                      category="Detectors", subcategory=category),
    }
    for name, category in {
        "table3": "Table 3: model x compression",
        "table4": "Table 4: cross-compression",
        "table5": "Table 5: mixed-quality training",
        "per_action": "Figure 6: per action",
        "single_action": "Figure 5: single-action training",
        "corpus_size": "Figure 3: corpus size",
    }.items()
}
EXPERIMENT_PARAMS = dict(train=TRAIN, variants=VARIANTS, actions=ACTIONS,
                         demo=config["demo"]["enabled"])


rule train_detector:
    input:
        # a user's local ImageNet file is an input: replacing it retrains
        unpack(lambda w: {"pretrained": TRAIN["pretrained"][w.model]}
               if w.model in TRAIN["pretrained"] else {}),
        manifest=f"{RESULTS}/dataset/dataset.parquet",
    output:
        predictions=f"{TRAIN_DIR}/{{model}}/{{trainset}}/predictions.parquet",
        history=f"{TRAIN_DIR}/{{model}}/{{trainset}}/history.csv",
        run=f"{TRAIN_DIR}/{{model}}/{{trainset}}/run.json",
    wildcard_constraints:
        model="|".join(DETECTORS),
        trainset=r"mixed|[A-Za-z0-9_]+(-action-[a-z_]+|-n\d+)?",
    params:
        train=TRAIN,
        sizes=config["targets"]["frames"]["sizes"],
        store=STORE,
    threads: workflow.cores  # CPU training uses every core; jobs run one after another
    resources:
        gpu=1 if TRAIN["device"].startswith("cuda") else 0,
    log:
        f"{RESULTS}/logs/train_detector/{{model}}/{{trainset}}.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_detector.py"


rule table3:
    input:
        **EXPERIMENT_INPUT["table3"],
    output:
        **EXPERIMENT_OUTPUT["table3"],
    params:
        experiment="table3",
        **EXPERIMENT_PARAMS,
    log:
        f"{RESULTS}/logs/tables/table3.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_table.py"


rule table4:
    input:
        **EXPERIMENT_INPUT["table4"],
    output:
        **EXPERIMENT_OUTPUT["table4"],
    params:
        experiment="table4",
        **EXPERIMENT_PARAMS,
    log:
        f"{RESULTS}/logs/tables/table4.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_table.py"


rule table5:
    input:
        **EXPERIMENT_INPUT["table5"],
    output:
        **EXPERIMENT_OUTPUT["table5"],
    params:
        experiment="table5",
        **EXPERIMENT_PARAMS,
    log:
        f"{RESULTS}/logs/tables/table5.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_table.py"


rule per_action:
    input:
        **EXPERIMENT_INPUT["per_action"],
    output:
        **EXPERIMENT_OUTPUT["per_action"],
    params:
        experiment="per_action",
        **EXPERIMENT_PARAMS,
    log:
        f"{RESULTS}/logs/tables/per_action.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_table.py"


rule single_action:
    input:
        **EXPERIMENT_INPUT["single_action"],
    output:
        **EXPERIMENT_OUTPUT["single_action"],
    params:
        experiment="single_action",
        **EXPERIMENT_PARAMS,
    log:
        f"{RESULTS}/logs/tables/single_action.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_table.py"


rule corpus_size:
    input:
        **EXPERIMENT_INPUT["corpus_size"],
    output:
        **EXPERIMENT_OUTPUT["corpus_size"],
    params:
        experiment="corpus_size",
        **EXPERIMENT_PARAMS,
    log:
        f"{RESULTS}/logs/tables/corpus_size.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_table.py"


rule cam:
    input:
        manifest=f"{RESULTS}/dataset/dataset.parquet",
        run=f"{TRAIN_DIR}/{TRAIN['cam']['model']}/{TRAIN['cam']['variant']}/run.json",
    output:
        csv=f"{TABLES_DIR}/cam.csv",
        md=f"{TABLES_DIR}/cam.md",
        png=report(f"{TABLES_DIR}/cam.png", caption="../report/cam.rst", category="Detectors",
                   subcategory="Figure 7: class activation maps"),
    params:
        model=TRAIN["cam"]["model"],
        variant=TRAIN["cam"]["variant"],
        frames=TRAIN["cam"]["frames"],
        sizes=config["targets"]["frames"]["sizes"],
        store=STORE,
        demo=config["demo"]["enabled"],
    log:
        f"{RESULTS}/logs/tables/cam.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_cam.py"

# Stage 8 (continued): Bonettini et al.'s EfficientNet ensemble, robustness and attention maps,
# opt-in by naming a target:  snakemake --cores all ensemble robustness attention
# Their training jobs are train_detector's (rules/train.smk); these rules only score and plot.
from dfmnist.train import ensemble_runs

for _key in ("robustness", "attention"):
    TRAIN[_key]["variant"] = TRAIN[_key]["variant"] or VARIANTS[0]
    if TRAIN[_key]["variant"] not in VARIANTS:
        sys.exit(f"config error at train.{_key}.variant: {TRAIN[_key]['variant']!r} is not a "
                 f"variant ({', '.join(VARIANTS)})")
ENSEMBLE_RUNS = ensemble_runs(TRAIN, VARIANTS)


rule ensemble:
    input:
        predictions=run_files("ensemble", "predictions.parquet"),
        runs=run_files("ensemble", "run.json"),
    output:
        csv=report(f"{TABLES_DIR}/ensemble.csv", caption="../report/ensemble.rst",
                   category="Detectors", subcategory="Ensemble: network fusion"),
        md=f"{TABLES_DIR}/ensemble.md",
        png=report(f"{TABLES_DIR}/ensemble.png", caption="../report/ensemble.rst",
                   category="Detectors", subcategory="Ensemble: network fusion"),
    params:
        models=TRAIN["ensemble"]["models"],
        variants=VARIANTS,
        video_score=TRAIN["video_score"],
        demo=config["demo"]["enabled"],
    log:
        f"{RESULTS}/logs/tables/ensemble.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/ensemble.py"


rule robustness:
    input:
        manifest=f"{RESULTS}/dataset/dataset.parquet",
        runs=run_files("robustness", "run.json"),
    output:
        scores=f"{TABLES_DIR}/robustness_scores.parquet",
        csv=report(f"{TABLES_DIR}/robustness.csv", caption="../report/robustness.rst",
                   category="Detectors", subcategory="Robustness to perturbations"),
        md=f"{TABLES_DIR}/robustness.md",
        png=report(f"{TABLES_DIR}/robustness.png", caption="../report/robustness.rst",
                   category="Detectors", subcategory="Robustness to perturbations"),
    params:
        variant=TRAIN["robustness"]["variant"],
        perturbations=TRAIN["robustness"]["perturbations"],
        levels=TRAIN["robustness"]["levels"],
        seed=TRAIN["seed"],
        video_score=TRAIN["video_score"],
        sizes=config["targets"]["frames"]["sizes"],
        store=STORE,
        demo=config["demo"]["enabled"],
    threads: workflow.cores
    log:
        f"{RESULTS}/logs/tables/robustness.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/robustness.py"


rule attention:
    input:
        manifest=f"{RESULTS}/dataset/dataset.parquet",
        run=run_files("attention", "run.json")[0],
    output:
        csv=f"{TABLES_DIR}/attention.csv",
        md=f"{TABLES_DIR}/attention.md",
        # beside the class activation maps in the report
        png=report(f"{TABLES_DIR}/attention.png", caption="../report/attention.rst",
                   category="Detectors", subcategory="Figure 7: class activation maps"),
    params:
        variant=TRAIN["attention"]["variant"],
        frames=TRAIN["attention"]["frames"] or len(ACTIONS) + 1,
        sizes=config["targets"]["frames"]["sizes"],
        store=STORE,
        demo=config["demo"]["enabled"],
    log:
        f"{RESULTS}/logs/tables/attention.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/attention.py"

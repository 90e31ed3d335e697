# Stage 8 (continued): Bonettini et al.'s EfficientNet ensemble, robustness, their published
# networks under the seed report's alterations and attention maps, opt-in by naming a target:
#   snakemake --cores all ensemble robustness published_scores attention
# Their training jobs are train_detector's (rules/train.smk); these rules only score and plot.


rule ensemble:
    input:
        predictions=run_files("ensemble", "predictions.parquet"),
        runs=run_files("ensemble", "run.json"),
    output:
        csv=report(f"{TABLES}/ensemble.csv", caption="../report/ensemble.rst",
                   category="Detectors", subcategory="Ensemble: network fusion"),
        md=f"{TABLES}/ensemble.md",
        png=report(f"{TABLES}/ensemble.png", caption="../report/ensemble.rst",
                   category="Detectors", subcategory="Ensemble: network fusion"),
    params:
        models=TRAIN["ensemble"]["models"],
        variants=VARIANTS,
        video_score=TRAIN["video_score"],
        demo=config["demo"]["enabled"],
    log:
        f"{LOGS}/tables/ensemble.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/ensemble.py"


rule robustness:
    input:
        manifest=DATASET,
        runs=run_files("robustness", "run.json"),
    output:
        scores=f"{TABLES}/robustness_scores.parquet",
        csv=report(f"{TABLES}/robustness.csv", caption="../report/robustness.rst",
                   category="Detectors", subcategory="Robustness to perturbations"),
        md=f"{TABLES}/robustness.md",
        png=report(f"{TABLES}/robustness.png", caption="../report/robustness.rst",
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
        f"{LOGS}/tables/robustness.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/robustness.py"


rule published_scores:
    input:
        manifest=DATASET,
        # the published files themselves: replacing one is an input change
        published=[n["path"] for n in TRAIN["published_scores"]["networks"]],
        runs=run_files("published_scores", "run.json"),
    output:
        scores=f"{TABLES}/published_scores.parquet",
        csv=report(f"{TABLES}/published_scores.csv", caption="../report/published_scores.rst",
                   category="Detectors", subcategory="Published networks under alterations"),
        md=f"{TABLES}/published_scores.md",
        png=report(f"{TABLES}/published_scores.png", caption="../report/published_scores.rst",
                   category="Detectors", subcategory="Published networks under alterations"),
    params:
        networks=TRAIN["published_scores"]["networks"],
        variant=TRAIN["published_scores"]["variant"],
        frames=TRAIN["published_scores"]["frames"],
        margin=TRAIN["published_scores"]["margin"],
        alterations=TRAIN["published_scores"]["alterations"],
        faces=FACE_SCIENCE,
        seed=TRAIN["seed"],
        size=max(config["targets"]["frames"]["sizes"]),
        store=STORE,
        demo=config["demo"]["enabled"],
    threads: workflow.cores
    log:
        f"{LOGS}/tables/published_scores.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/published_scores.py"


rule attention:
    input:
        manifest=DATASET,
        run=run_files("attention", "run.json")[0],
    output:
        csv=f"{TABLES}/attention.csv",
        md=f"{TABLES}/attention.md",
        # beside the class activation maps in the report
        png=report(f"{TABLES}/attention.png", caption="../report/attention.rst",
                   category="Detectors", subcategory="Figure 7: class activation maps"),
    params:
        variant=TRAIN["attention"]["variant"],
        frames=TRAIN["attention"]["frames"] or len(ACTIONS) + 1,
        sizes=config["targets"]["frames"]["sizes"],
        store=STORE,
        demo=config["demo"]["enabled"],
    log:
        f"{LOGS}/tables/attention.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/attention.py"

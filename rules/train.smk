# Stage 8: detector baselines and the paper's experiments, opt-in by naming a target:
#   snakemake --cores all table3 per_action   (also table4, table5, single_action, corpus_size)
# One job per (detector, training set) trains or reuses a stored checkpoint and predicts the
# test split of every variant; one table rule aggregates those predictions per experiment.
from dfmnist.gpus import device_gpus
from dfmnist.train import DETECTORS, EXPERIMENTS, experiment_runs, recipe
from dfmnist.train.trainsets import PATTERN as TRAINSET_PATTERN
from dfmnist.train.trainsets import trainset_name

EXPERIMENT_JOBS = experiment_runs(TRAIN, VARIANTS, ACTIONS)
EXPERIMENT_CATEGORY = {
    "table3": "Table 3: model x compression",
    "table4": "Table 4: cross-compression",
    "table5": "Table 5: mixed-quality training",
    "per_action": "Figure 6: per action",
    "single_action": "Figure 5: single-action training",
    "corpus_size": "Figure 3: corpus size",
}


# the predictions and run records of the training jobs one experiment's table needs
EXPERIMENT_INPUTS = lambda w: {
    name: [f"{RUN}/{file}".format(model=m, trainset=t) for m, t in EXPERIMENT_JOBS[w.experiment]]
    for name, file in (("predictions", "predictions.parquet"), ("runs", "run.json"))
}


rule train_detector:
    input:
        # a user's local ImageNet file is an input: replacing it retrains
        unpack(lambda w: {"pretrained": TRAIN["pretrained"][w.model]}
               if w.model in TRAIN["pretrained"] else {}),
        manifest=DATASET,
    output:
        predictions=f"{RUN}/predictions.parquet",
        history=f"{RUN}/history.csv",
        run=f"{RUN}/run.json",
    wildcard_constraints:
        model="|".join(DETECTORS),
        trainset=TRAINSET_PATTERN,
    params:
        train=recipe(TRAIN),  # train.device reaches the job through the config
        sizes=config["targets"]["frames"]["sizes"],
        store=STORE,
        gpu_locks=GPU_LOCKS,
    threads: workflow.cores  # CPU training uses every core; jobs run one after another
    resources:
        gpu=device_gpus(TRAIN["device"]),  # auto takes a GPU when torch sees one
    log:
        f"{LOGS}/train_detector/{{model}}/{{trainset}}.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train_detector.py"


rule experiment_table:
    input:
        unpack(EXPERIMENT_INPUTS),
    output:
        csv=report(f"{TABLES}/{{experiment}}.csv", caption="../report/experiment.rst",
                   category="Detectors", subcategory=lambda w: EXPERIMENT_CATEGORY[w.experiment]),
        md=f"{TABLES}/{{experiment}}.md",
        png=report(f"{TABLES}/{{experiment}}.png", caption="../report/experiment.rst",
                   category="Detectors", subcategory=lambda w: EXPERIMENT_CATEGORY[w.experiment]),
    wildcard_constraints:
        experiment="|".join(EXPERIMENTS),
    params:
        # the recipe and this experiment's own section: another experiment's models are not
        # this table's
        train=lambda w: {**recipe(TRAIN), w.experiment: TRAIN[w.experiment],
                         "video_score": TRAIN["video_score"]},
        variants=VARIANTS,
        actions=ACTIONS,
        demo=config["demo"]["enabled"],
    log:
        f"{LOGS}/tables/{{experiment}}.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/experiment_table.py"


# `snakemake table3 per_action ...`: each experiment's name is a target for its table
for _experiment in EXPERIMENTS:

    rule:
        name:
            _experiment
        input:
            expand(f"{TABLES}/{_experiment}.{{ext}}", ext=("csv", "md", "png")),
        localrule: True


rule cam:
    input:
        manifest=DATASET,
        run=f"{RUN}/run.json".format(model=TRAIN["cam"]["model"],
                                      trainset=trainset_name(TRAIN["cam"]["variant"])),
    output:
        csv=f"{TABLES}/cam.csv",
        md=f"{TABLES}/cam.md",
        png=report(f"{TABLES}/cam.png", caption="../report/cam.rst", category="Detectors",
                   subcategory="Figure 7: class activation maps"),
    params:
        model=TRAIN["cam"]["model"],
        variant=TRAIN["cam"]["variant"],
        frames=TRAIN["cam"]["frames"],
        sizes=config["targets"]["frames"]["sizes"],
        store=STORE,
        demo=config["demo"]["enabled"],
    log:
        f"{LOGS}/tables/cam.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/cam.py"

# The HTML report: `snakemake --report report.html table3 per_action report_dataset` gathers the
# dataset card, the liveness spoof rates, sample frames per variant and every table and plot.


report: "../report/workflow.rst"


rule report_dataset:
    input:
        manifest=DATASET,
        card=DATASET_CARD,
        rates=SPOOF_RATES,
    output:
        card=report(REPORT_CARD, caption="../report/dataset.rst",
                    category="Dataset", subcategory="Dataset card"),
        rates=report(REPORT_RATES, caption="../report/spoof_rates.rst",
                     category="Dataset", subcategory="Liveness"),
        frames=report(REPORT_FRAMES, caption="../report/frames.rst",
                      category="Dataset", subcategory="Sample frames"),
    params:
        size=config["targets"]["frames"]["sizes"][0],
    log:
        f"{LOGS}/report_dataset.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/report_dataset.py"

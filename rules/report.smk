# The HTML report: `snakemake --report report.html table3 per_action report_dataset` gathers the
# dataset card, the liveness spoof rates, sample frames per variant and every table and plot.


report: "../report/workflow.rst"


rule report_dataset:
    input:
        manifest=f"{RESULTS}/dataset/dataset.parquet",
        card=f"{RESULTS}/dataset/README.md",
        rates=f"{RESULTS}/liveness/spoof_rates.csv",
    output:
        card=report(f"{RESULTS}/report/dataset_card.html", caption="../report/dataset.rst",
                    category="Dataset", subcategory="Dataset card"),
        rates=report(f"{RESULTS}/report/spoof_rates.csv", caption="../report/spoof_rates.rst",
                     category="Dataset", subcategory="Liveness"),
        frames=report(f"{RESULTS}/report/sample_frames.png", caption="../report/frames.rst",
                      category="Dataset", subcategory="Sample frames"),
    params:
        size=config["targets"]["frames"]["sizes"][0],
    log:
        f"{RESULTS}/logs/report_dataset.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/report_dataset.py"

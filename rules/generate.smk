# Stage 4: animate the plan, one job per shard. Generators that use a GPU declare it as a
# resource, so `--resources gpu=N` bounds concurrent generator jobs.

GENERATOR_GPUS = 0  # landmark_warp runs on the CPU


rule generate_shard:
    input:
        f"{RESULTS}/plan/plan.parquet",
    output:
        f"{RESULTS}/fake/raw/shards/{{shard}}.parquet",
    params:
        generate=config["generate"],
        store=STORE,
    resources:
        gpu=GENERATOR_GPUS,
    threads: 1
    log:
        f"{RESULTS}/logs/generate_shard/{{shard}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/generate_shard.py"

# Stage 4: animate the plan, one job per shard. A generator job on a GPU declares
# `resources: gpu=1`, so `--resources gpu=N` bounds how many run at once; on a workstation each
# job then takes a free device itself (lock-file slots, dfmnist.gpus), under SLURM the
# scheduler assigns it. A candidate whose generation raises is a row in the shard's
# failures table (with the error); the shard's other fakes are kept.



rule generate_shard:
    input:
        PLAN,
    output:
        fakes=FAKES,
        failures=FAKE_FAILURES,
    params:
        generate=GENERATE_SCIENCE,
        store=STORE,
        gpu_locks=GPU_LOCKS,
    resources:
        gpu=GENERATOR_GPUS,
    threads: config["generate"]["threads"]
    log:
        f"{LOGS}/generate_shard/{{shard}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/generate_shard.py"

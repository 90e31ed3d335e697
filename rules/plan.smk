# Stage 3: pair selected sources with driving takes per action (seeded); every candidate
# gets a content key over its inputs and the generator, and a generation shard.



rule plan:
    input:
        sources=SOURCES_MANIFEST,
        driving=DRIVING_MANIFEST,
    output:
        PLAN,
    params:
        actions=ACTIONS,
        plan={k: config["plan"][k] for k in ("per_action", "oversample", "seed")},
        generate=GENERATE_SCIENCE,
    log:
        f"{LOGS}/plan.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/plan.py"

# Stage 6: every selected real clip and accepted fake, re-encoded per named variant.


rule compress_shard:
    input:
        sources=SOURCES_MANIFEST,
        accepted=ACCEPTED,
    output:
        COMPRESSED,
    params:
        variant=lambda w: VARIANTS_CONFIG[w.variant],
        shards=config["compress"]["shards"],
        store=STORE,
    threads: 1
    log:
        f"{LOGS}/compress_shard/{{variant}}/{{shard}}.log",
    conda:
        "../envs/media.yaml"
    script:
        "../workflow_scripts/compress_shard.py"

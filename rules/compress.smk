# Stage 6: every selected real clip and accepted fake, re-encoded per named variant.


rule compress_shard:
    input:
        sources=f"{RESULTS}/manifests/sources.parquet",
        accepted=f"{RESULTS}/fake/accepted.parquet",
    output:
        f"{RESULTS}/compress/{{variant}}/{{shard}}.parquet",
    params:
        variant=lambda w: VARIANTS_CONFIG[w.variant],
        shards=config["compress"]["shards"],
        store=STORE,
    threads: 1
    log:
        f"{RESULTS}/logs/compress_shard/{{variant}}/{{shard}}.log",
    conda:
        "../envs/media.yaml"
    script:
        "../workflow_scripts/compress_shard.py"

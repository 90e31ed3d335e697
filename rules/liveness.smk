# Stage 5: liveness verdicts per provider and shard, through a cache shared by all runs;
# then the per-action policy keeps the first passing fakes up to plan.per_action.


rule liveness_shard:
    input:
        f"{RESULTS}/fake/raw/shards/{{shard}}.parquet",
    output:
        f"{RESULTS}/liveness/{{provider}}/{{shard}}.parquet",
    params:
        faces=config["faces"],
        cache=config["liveness"]["cache"],
    threads: 1
    log:
        f"{RESULTS}/logs/liveness_shard/{{provider}}/{{shard}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/liveness_shard.py"


rule filter_fakes:
    input:
        fakes=expand(f"{RESULTS}/fake/raw/shards/{{shard}}.parquet", shard=GENERATE_SHARDS),
        verdicts=expand(
            f"{RESULTS}/liveness/{{provider}}/{{shard}}.parquet",
            provider=PROVIDERS,
            shard=GENERATE_SHARDS,
        ),
    output:
        accepted=f"{RESULTS}/fake/accepted.parquet",
        rates=f"{RESULTS}/liveness/spoof_rates.csv",
    params:
        policy={a: config["liveness"]["policy"][a] for a in ACTIONS},
        per_action=config["plan"]["per_action"],
    log:
        f"{RESULTS}/logs/filter_fakes.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/filter_fakes.py"

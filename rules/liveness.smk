# Stage 5: liveness verdicts per provider and shard, through a cache shared by all runs (each
# job reads it and writes its new verdicts to a journal of its own; liveness_cache_merge folds
# the journals in, one process at a time, see dfmnist/liveness/journal.py);
# then the per-action policy keeps the first passing fakes up to plan.per_action. Actions that
# fall short get top-up rounds (new candidates, generated and judged) up to plan.max_rounds.
from dfmnist.liveness.policy import (
    actions_for,
    api_calls,
    check_api_jobs,
    check_liveness_config,
    verdict_options,
)
from dfmnist.liveness.shard import retry_key
from dfmnist.liveness.topup import rounds_inputs

try:
    check_liveness_config(config)
    # web API jobs at once (Snakemake's api_calls) within what each job's qps share assumes
    _api_calls = workflow.global_resources.get("api_calls")  # a Resource (Snakemake 9)
    check_api_jobs(config, getattr(_api_calls, "value", _api_calls))
except ValueError as exc:
    sys.exit(str(exc))

MAX_ROUNDS = config["plan"]["max_rounds"]
# files of rounds 0..last; asking for round r's plan (a checkpoint) schedules that round
ROUNDS_INPUTS = lambda last: rounds_inputs(
    last,
    PROVIDERS,
    list(GENERATE_SHARDS),
    lambda r: checkpoints.topup_plan.get(round=r).output[0],
    plan=PLAN,
    fakes=(FAKES, ROUND_FAKES),
    verdicts=(VERDICTS, ROUND_VERDICTS),
)

# a liveness job's output (round 0 or a top-up round), for its params' retry key
VERDICTS_OF = lambda wc: (ROUND_VERDICTS if hasattr(wc, "round") else VERDICTS).format(
    **dict(wc.items())
)


wildcard_constraints:
    round=r"[1-9]\d*",


rule liveness_shard:
    input:
        FAKES,
    output:
        VERDICTS,
    params:
        faces=FACE_SCIENCE,
        actions=lambda wc: actions_for(config, wc.provider),
        # verdict-relevant options only; the script reads endpoints and http from the config
        options=lambda wc: verdict_options(config, wc.provider),
        # changes while the last run left fakes unjudged, so the job runs again (asking only
        # about those: the rest are cached); stable once every fake has a verdict
        retry=lambda wc: retry_key(VERDICTS_OF(wc)),
    threads: 1
    resources:
        # web API jobs run one at a time (profiles/default: api_calls=1), each at its
        # provider's qps
        api_calls=lambda wc: api_calls(wc.provider),
    log:
        f"{LOGS}/liveness_shard/{{provider}}/{{shard}}.log",
    conda:
        "../envs/faces.yaml"
    script:
        "../workflow_scripts/liveness_shard.py"


checkpoint topup_plan:
    input:
        unpack(
            lambda wc: {
                "sources": SOURCES_MANIFEST,
                "driving": DRIVING_MANIFEST,
                **ROUNDS_INPUTS(int(wc.round) - 1),
            }
        ),
    output:
        ROUND_PLAN,
    params:
        policy={a: config["liveness"]["policy"][a] for a in ACTIONS},
        per_action=config["plan"]["per_action"],
        oversample=config["plan"]["oversample"],
        seed=config["plan"]["seed"],
        generate=GENERATE_SCIENCE,
    log:
        f"{LOGS}/topup_plan/{{round}}.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/topup_plan.py"


use rule generate_shard as generate_round_shard with:
    input:
        ROUND_PLAN,
    output:
        fakes=ROUND_FAKES,
        failures=ROUND_FAKE_FAILURES,
    log:
        f"{LOGS}/generate_shard/rounds/{{round}}/{{shard}}.log",


use rule liveness_shard as liveness_round_shard with:
    input:
        ROUND_FAKES,
    output:
        ROUND_VERDICTS,
    log:
        f"{LOGS}/liveness_shard/{{provider}}/rounds/{{round}}/{{shard}}.log",


rule liveness_cache_merge:
    input:
        lambda wc: ROUNDS_INPUTS(MAX_ROUNDS)["verdicts"],
    output:
        CACHE_MERGE,
    localrule: True
    log:
        f"{LOGS}/liveness_cache_merge.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/liveness_cache_merge.py"


rule filter_fakes:
    input:
        unpack(
            lambda wc: {
                **{k: v for k, v in ROUNDS_INPUTS(MAX_ROUNDS).items() if k != "plans"},
                "merged": CACHE_MERGE,
                "swaps": swap_fakes(),  # face swaps (rules/faceswap.smk), not filtered
                "swap_failures": swap_fakes(SWAP_FAILURES),
            }
        ),
    output:
        accepted=ACCEPTED,
        swap_failures=ACCEPTED_SWAP_FAILURES,
        verdicts=ALL_VERDICTS,
        rates=SPOOF_RATES,
        by_provider=SPOOF_RATES_BY_PROVIDER,
        plot=SPOOF_RATES_PLOT,
    params:
        policy={a: config["liveness"]["policy"][a] for a in ACTIONS},
        per_action=config["plan"]["per_action"],
        max_rounds=MAX_ROUNDS,
        generators=sorted(generator_shares(config["generate"])),  # the fakes' items say the rest
        store=STORE,
    log:
        f"{LOGS}/filter_fakes.log",
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/filter_fakes.py"

# Every path the workflow writes, named once. Rules and helpers refer to these names, so moving
# an output is a one-line change here. Templates keep Snakemake's wildcards ({shard},
# {variant}, ...). Logs go under LOGS as {rule}/{wildcards}.log. Included by rules/common.smk
# once the config is validated (results_dir has its default then).

RESULTS = config["results_dir"]
LOGS = f"{RESULTS}/logs"
STORE = f"{RESULTS}/store"  # content-addressed items (dfmnist.storage.store)
GPU_LOCKS = f"{RESULTS}/locks/gpu"  # one lock-file slot per GPU (dfmnist.gpus)
INPUT_LISTS = f"{RESULTS}/inputs"  # one list file per shard: {stage}/{shard}.txt

# the embedded demo (rules/demo.smk): {identity}/{video}/{clip}.mp4 and the driving takes
DEMO_SOURCES = f"{RESULTS}/demo/voxceleb"
DEMO_TAKE = f"{RESULTS}/demo/driving/{{action}}/{{take}}.mp4"

# sources and driving (rules/sources.smk, rules/driving.smk)
SOURCE_SCORES = f"{RESULTS}/sources/scores/{{shard}}.parquet"
SOURCES_MANIFEST = f"{RESULTS}/manifests/sources.parquet"
SOURCE_FAILURES = f"{RESULTS}/manifests/source_failures.parquet"
DRIVING_SHARD = f"{RESULTS}/driving/shards/{{shard}}.parquet"
DRIVING_MANIFEST = f"{RESULTS}/manifests/driving.parquet"
DRIVING_FAILURES = f"{RESULTS}/manifests/driving_failures.parquet"

# plan and generation, round 0 and top-up rounds (rules/plan.smk, generators.smk, liveness.smk)
PLAN = f"{RESULTS}/plan/plan.parquet"
ROUND_PLAN = f"{RESULTS}/plan/rounds/{{round}}.parquet"
FAKES = f"{RESULTS}/fake/raw/shards/{{shard}}.parquet"
FAKE_FAILURES = f"{RESULTS}/fake/raw/failures/{{shard}}.parquet"
ROUND_FAKES = f"{RESULTS}/fake/raw/rounds/{{round}}/{{shard}}.parquet"
ROUND_FAKE_FAILURES = f"{RESULTS}/fake/raw/failures/rounds/{{round}}/{{shard}}.parquet"

# face swaps (rules/faceswap.smk)
SWAP_FACES = f"{RESULTS}/faceswap/faces/{{identity}}.json"
SWAP_MODEL = f"{RESULTS}/faceswap/models/{{recipe}}/{{autoencoder}}/{{couple}}.json"
SWAP_PARTIAL = f"{RESULTS}/faceswap/partial"  # unfinished trainings, resumable
SWAP_FAKES = f"{RESULTS}/faceswap/fakes/{{autoencoder}}/{{couple}}.parquet"
SWAP_FAILURES = f"{RESULTS}/faceswap/failures/{{autoencoder}}/{{couple}}.parquet"

# liveness and acceptance (rules/liveness.smk)
VERDICTS = f"{RESULTS}/liveness/{{provider}}/{{shard}}.parquet"
ROUND_VERDICTS = f"{RESULTS}/liveness/{{provider}}/rounds/{{round}}/{{shard}}.parquet"
CACHE_MERGE = f"{RESULTS}/liveness/cache_merge.json"
ALL_VERDICTS = f"{RESULTS}/liveness/verdicts.parquet"
SPOOF_RATES = f"{RESULTS}/liveness/spoof_rates.csv"
SPOOF_RATES_BY_PROVIDER = f"{RESULTS}/liveness/spoof_rates_by_provider.csv"
SPOOF_RATES_PLOT = f"{RESULTS}/liveness/spoof_rates.png"
ACCEPTED = f"{RESULTS}/fake/accepted.parquet"
ACCEPTED_SWAP_FAILURES = f"{RESULTS}/fake/face_swap_failures.parquet"

# compression variants and training targets (rules/compress.smk, rules/targets.smk)
COMPRESSED = f"{RESULTS}/compress/{{variant}}/{{shard}}.parquet"
FRAMES = f"{RESULTS}/frames/{{variant}}/{{shard}}.parquet"
ANNOTATIONS = f"{RESULTS}/annotations/{{variant}}/{{shard}}.parquet"
SPLITS = f"{RESULTS}/dataset/splits.parquet"
DATASET = f"{RESULTS}/dataset/dataset.parquet"
DATASET_CARD = f"{RESULTS}/dataset/README.md"
DEEPFAKEBENCH = f"{RESULTS}/deepfakebench"
FACEFORENSICS = f"{RESULTS}/faceforensics"

# the HTML report's material (rules/report.smk)
REPORT_CARD = f"{RESULTS}/report/dataset_card.html"
REPORT_RATES = f"{RESULTS}/report/spoof_rates.csv"
REPORT_FRAMES = f"{RESULTS}/report/sample_frames.png"
REPORT_SWAP_RECIPES = f"{RESULTS}/report/faceswap_recipes.png"  # one frame per model and recipe

# detectors, experiments and attribution (rules/train.smk, ensemble.smk, attribution.smk)
RUN = f"{RESULTS}/train/{{model}}/{{trainset}}"  # one training job's outputs
ATTRIBUTION_RUN = f"{RESULTS}/attribution/{{method}}/{{variant}}"
TABLES = f"{RESULTS}/tables"  # {experiment}.csv/.md/.png, ensemble, robustness, cam, ...

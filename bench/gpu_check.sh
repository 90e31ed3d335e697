#!/usr/bin/env bash
# FOMM frames/s on one GPU, in one go (at most 3 steps of 95 s; no network needed):
#   the original first-order-model demo loop, ours at batch 1/8/32 in fp32, tf32 and bf16,
#   and 2 shard processes sharing the GPU; then one summary table.
#
# usage: bench/gpu_check.sh [--dry-run] [ORIGINAL]
#   ORIGINAL  a first-order-model checkout (default: $FOMM_ORIGINAL). Without one the
#             baseline is our own frame-by-frame loop, and the table says so.
#   --dry-run the same steps on the CPU with the small model and a few frames (checks the
#             script, measures nothing of interest).
# Environment: PYTHON (default: .venv/bin/python if present, else python3), STEP_TIMEOUT
# (seconds per step, default 95: at most 3 steps, under 5 minutes), LOG_DIR (default: a
# fresh temporary directory).
set -euo pipefail

dry=0
original="${FOMM_ORIGINAL:-}"
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "gpu_check.sh: unknown option $arg" >&2; exit 2 ;;
    *) original="$arg" ;;
  esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
fi
step_timeout="${STEP_TIMEOUT:-95}"
log_dir="${LOG_DIR:-$(mktemp -d -t fomm-gpu-check.XXXXXX)}"
mkdir -p "$log_dir"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONWARNINGS=ignore

if (( dry )); then
  device=cpu; config=small; frames=8; batches=(8 32); precisions=(fp32); threads=2
else
  device=cuda; config=vox-256; frames=64; batches=(8 32); precisions=(fp32 tf32 bf16); threads=4
fi
original_args=()
if [[ -n "$original" ]]; then
  if [[ ! -f "$original/demo.py" || ! -d "$original/modules" ]]; then
    echo "gpu_check.sh: $original is not a first-order-model checkout (no demo.py/modules)" >&2
    exit 2
  fi
  original_args=(--original "$original")
  baseline="the original first-order-model demo loop ($original)"
else
  baseline="OUR OWN frame-by-frame loop (no original checkout given: not the original code)"
fi

echo "# FOMM GPU check: device $device, config $config, $frames frames; logs in $log_dir"
if [[ "$device" == cuda ]]; then
  timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    || echo "(nvidia-smi unavailable)"
  timeout 60 "$python" -c 'import sys, torch; ok = torch.cuda.is_available(); print("torch", torch.__version__, "cuda", torch.version.cuda, "available", ok); sys.exit(0 if ok else 1)' \
    || { echo "gpu_check.sh: torch sees no CUDA device" >&2; exit 1; }
fi

status=0
for precision in "${precisions[@]}"; do
  shards=()
  if [[ "$precision" == fp32 ]]; then shards=(--shards 2); fi
  log="$log_dir/$precision.txt"
  echo "## $precision"
  if timeout --kill-after=10 "$step_timeout" "$python" bench/fomm_throughput.py \
      "${original_args[@]}" --device "$device" --config "$config" --frames "$frames" \
      --batch "${batches[@]}" --precision "$precision" --threads "$threads" --repeats 3 \
      "${shards[@]}" >"$log" 2>&1; then
    cat "$log"
  else
    rc=$?
    status=1
    echo "gpu_check.sh: the $precision step failed (exit $rc; 124 = over ${step_timeout}s):"
    tail -n 20 "$log"
  fi
done

echo
echo "# summary: frames/s (median of 3), baseline: $baseline"
printf '%-34s %-10s %12s %14s\n' configuration precision "frames/s" "x baseline"
for precision in "${precisions[@]}"; do
  log="$log_dir/$precision.txt"
  [[ -f "$log" ]] || continue
  awk -v p="$precision" '
    / frames\/s  \(/ { n = index($0, " frames/s"); head = substr($0, 1, n - 1);
                       fps = head; sub(/.* /, "", fps); label = head; sub(/ +[^ ]+$/, "", label);
                       if (label ~ /loop/) base = fps; rows[++k] = label; vals[k] = fps }
    /^shards/ { shard = $0 }
    END { for (i = 1; i <= k; i++)
            printf "%-34s %-10s %12s %14s\n", rows[i], p, vals[i],
                   (base > 0 ? sprintf("%.2fx", vals[i] / base) : "-");
          if (shard != "") print "  " shard }' "$log"
done
echo "(GPU figures: copy this table into the README's FOMM performance section with the date.)"
exit "$status"

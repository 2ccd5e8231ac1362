#!/usr/bin/env bash
# Training under load (docs/performance.md, "Under load"): `antibody train` on the real
# checkpoint ../shared/models/stories260k-hf (32 rows, 10 epochs = 80 steps, 2 threads) alone and next to
# one busy process (`yes`), with OpenMP's old default (threads spin 300,000 rounds before
# sleeping: GOMP_SPINCOUNT=300000), passive waiting, and antibody's own choice (passive when
# the load average is at least half the cores). Prints a markdown table of the median
# wall time of REPS runs (default 3) and the adapter's hash (identical in every row).
#   bash bench/load.sh [BUILD] [REPS]
set -u
build=${1:-build}
reps=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
shared=${ANTIBODY_SHARED:-../shared}
tmp=$(mktemp -d /tmp/antibody_load_XXXXXX)
trap 'rm -rf "$tmp"; [ -n "${busy:-}" ] && kill $busy 2>/dev/null' EXIT
grep -o '"instruction":"[A-Za-z ,]*' "$shared/data/alpaca_eval/alpaca_eval_805.json" | cut -c16-60 | head -32 |
  awk '{ printf "{\"instruction\": \"Q%d\", \"input\": \"\", \"output\": \"%s\"}\n", NR, $0 }' > "$tmp/d.jsonl"
run() {  # prints seconds and hash
  rm -rf "$tmp/o" "$tmp/o.checkpoint"  # train checkpoints to OUT.checkpoint
  local t0=$(date +%s%N)
  env "$@" OMP_NUM_THREADS=2 ANTIBODY_PROGRESS=0 "$build/antibody" train "$shared/models/stories260k-hf" \
    --data "$tmp/d.jsonl" --out "$tmp/o" --epochs 10 --batch-size 4 --max-len 160 --seed 7 > /dev/null 2> "$tmp/err" ||
    { echo "bench/load.sh: antibody train failed:" >&2; cat "$tmp/err" >&2; kill $$; exit 1; }
  local t1=$(date +%s%N)
  echo "$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.2f", (b - a) / 1e9 }') $(sha1sum "$tmp/o/adapter_model.safetensors" | cut -c1-8)"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo
echo "| waiting | alone (s) | next to one busy process (s) | adapter |"
echo "|---|---:|---:|---|"
for mode in "old default:GOMP_SPINCOUNT=300000" "passive:OMP_WAIT_POLICY=PASSIVE" "antibody's choice:X=1"; do
  label=${mode%%:*}; envv=${mode#*:}
  alone=(); loaded=(); hash=""
  for r in $(seq 1 "$reps"); do
    out=$(run "$envv"); alone+=("${out% *}"); hash=${out#* }
    yes > /dev/null & busy=$!
    out=$(run "$envv"); loaded+=("${out% *}"); [ "${out#* }" = "$hash" ] || hash="$hash/${out#* }"
    kill $busy; wait $busy 2>/dev/null; busy=""
  done
  echo "| $label | $(printf '%s\n' "${alone[@]}" | median) | $(printf '%s\n' "${loaded[@]}" | median) | $hash |"
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

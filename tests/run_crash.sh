#!/usr/bin/env bash
# Crash consistency (docs/reliability.md), on the real checkpoint ../shared/models/stories260k-hf:
#  1. kill -9 series: `antibody train` with a checkpoint every step is killed at random
#     instants until a run finishes; the adapter must be byte-identical to an
#     uninterrupted run's and nothing temporary may be left behind.
#  2. concurrent writers: a second run into the same --out refuses at once, naming the
#     folder and the first run's pid; the first run's adapter is its own.
# Prints "N passed, N failed"; KILLS (default 10) sets the number of kills.
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
shared=${ANTIBODY_SHARED:-../shared}
model=$shared/models/stories260k-hf
bin=$build/antibody
kills_wanted=${KILLS:-10}
export OMP_NUM_THREADS=2 ANTIBODY_PROGRESS=0
tmp=$(mktemp -d /tmp/antibody_crash_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }

# 16 short instruction rows made from the shared Alpaca eval set
data=$tmp/data.jsonl
grep -o '"instruction":"[A-Za-z ,]*' "$shared/data/alpaca_eval/alpaca_eval_805.json" | cut -c16-60 | head -16 |
  awk '{ printf "{\"instruction\": \"Q%d\", \"input\": \"\", \"output\": \"%s\"}\n", NR, $0 }' > "$data"
args=(--data "$data" --batch-size 4 --max-len 160 --checkpoint-every 1 --seed 7)
train() { "$bin" train "$model" "${args[@]}" --out "$1" --epochs "${2:-2}"; }
# in the background, exec'd so that $! is antibody itself (kill -9 reaches it, the lock names it)
train_bg() { exec "$bin" train "$model" "${args[@]}" --out "$1" --epochs "${2:-2}"; }

# 1. the uninterrupted reference
start=$(date +%s%N)
train "$tmp/ref" > "$tmp/ref.log" 2>&1 || { bad "reference run"; tail -5 "$tmp/ref.log"; }
dur=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')

# the kill -9 series: trials from an empty folder, each run killed after a random delay
# within the reference's duration, until a run finishes; trials until KILLS kills
kills=0; runs=0; trials=0; identical=0; errors=0; left=""
while [ $kills -lt "$kills_wanted" ] && [ $trials -lt 20 ]; do
  trials=$((trials+1))
  out=$tmp/killed$trials
  finished=0
  while [ $finished -eq 0 ] && [ $runs -lt 200 ]; do
    runs=$((runs+1))
    train_bg "$out" >> "$tmp/killed.log" 2>&1 &
    pid=$!
    sleep "$(awk -v d="$dur" -v s="$RANDOM" 'BEGIN { srand(s); printf "%.3f", rand() * d * 0.6 }')"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    st=$?
    if [ $st -eq 0 ]; then finished=1; elif [ $st -eq 137 ]; then kills=$((kills+1)); else errors=$((errors+1)); fi
  done
  cmp -s "$tmp/ref/adapter_model.safetensors" "$out/adapter_model.safetensors" && identical=$((identical+1))
  left="$left$(cd "$tmp" && find "killed$trials" "killed$trials".* -name '*.tmp*' -o -name '*.old' -o -name '.antibody.lock' 2>/dev/null | tr '\n' ' ')"
done
echo "kill9: trials=$trials runs=$runs kills=$kills errors=$errors identical=$identical/$trials left=[${left}]"
if [ $identical -eq $trials ] && [ $trials -gt 0 ] && [ $errors -eq 0 ]; then
  ok "kill -9 series: $trials trials, $runs runs, $kills kills, every adapter identical to the uninterrupted run"
else
  bad "kill -9 series: $identical of $trials trials identical to the uninterrupted run, $errors runs failed"
  tail -5 "$tmp/killed.log"
fi
[ -z "$left" ] && ok "kill -9 series: nothing temporary left behind" || bad "kill -9 series left: $left"

# 2. concurrent writers
out=$tmp/shared_out
train_bg "$out" > "$tmp/first.log" 2>&1 &
first=$!
for _ in $(seq 1 200); do [ -s "$out/.antibody.lock" ] && break; sleep 0.05; done
t0=$(date +%s%N)
train "$out" > "$tmp/second.log" 2>&1
rc2=$?
t1=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
if [ $rc2 -ne 0 ] && grep -q "$out" "$tmp/second.log" && grep -q "pid $first" "$tmp/second.log" && [ "$(wc -l < "$tmp/second.log")" -eq 1 ]; then
  ok "second run into the same folder refused in ${t1}s: $(cat "$tmp/second.log")"
else
  bad "second run into the same folder (exit $rc2): $(cat "$tmp/second.log")"
fi
wait $first; rc1=$?
if [ $rc1 -eq 0 ] && cmp -s "$out/adapter_model.safetensors" "$tmp/ref/adapter_model.safetensors"; then
  ok "the first run finished with its own adapter"
else
  bad "the first run (exit $rc1) did not end with its own adapter"; tail -3 "$tmp/first.log"
fi
echo "crash ($build): $pass passed, $fail failed"
[ $fail -eq 0 ]

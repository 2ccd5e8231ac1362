#!/usr/bin/env bash
# Generation against llama.cpp on a shared machine (bench/README.md): every generation row,
# antibody and llama.cpp alternating within each round, ROUNDS rounds, 1 thread, compared
# in tokens per CPU-second (CPU time is what load from other processes disturbs least).
# Rows: one sequence (32-token prompt + 128 tokens) and 16 sequences together (16 x (32 +
# 128), llama-batched-bench -npl 16), fp32 and bf16 weights, antibody through its best
# kernels and again through the AVX2 ones (ANTIBODY_ISA=avx2) when the CPU has AVX-512, and
# then llama.cpp also runs a second build held to AVX2 (LLAMACPP_ISA=avx2, side llama.cpp-avx2):
# the like-for-like peer of antibody's AVX2 kernels.
#   bash bench/llamacpp_rounds.sh [ROUNDS] [REPS]     (after make; default 3 rounds, 2 reps)
# Prints the JSON records, then a table: per row the median over rounds of each side.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
REPS=${2:-2}
BIN=${ANTIBODY_BUILD:-build}/bench/bench_train
[ -x "$BIN" ] || { echo "bench/llamacpp_rounds.sh: $BIN missing: run make first" >&2; exit 1; }
PY=$(bash tests/oracle/setup.sh | tail -1)
LLAMA=($(bash bench/llamacpp.sh "$PY" "$BIN"))  # bin folder, Hugging Face folder, GGUF folder
export OMP_NUM_THREADS=1
RES=$(mktemp)
trap 'rm -f "$RES"' EXIT
isas="default"
LLAMA2=""
if grep -qw avx512f /proc/cpuinfo; then
    isas="default avx2"
    LLAMA2=$(LLAMACPP_ISA=avx2 bash bench/llamacpp.sh "$PY" "$BIN" | head -1)
fi
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1); flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
    grep -xE 'avx2|fma|avx512f|avx512_bf16|avx512_vnni' | tr '\n' ' '); load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    for w in f32 bf16; do
        sfx=$([ $w = bf16 ] && echo _bf16 || true)
        for step in generate generate16; do
            for isa in $isas; do
                env $([ $isa = avx2 ] && echo ANTIBODY_ISA=avx2) "$BIN" smollm $step "$REPS" nolora \
                    model="${LLAMA[1]}" $([ $w = bf16 ] && echo bf16) | sed "s/^{/{\"round\": $round, /" | tee -a "$RES"
            done
            env -u OPENBLAS_CORETYPE "$PY" bench/peer_llamacpp.py "${LLAMA[0]}" "${LLAMA[2]}" "${step}${sfx}_nolora" 1 \
                "$REPS" | sed "s/^{/{\"round\": $round, /" | tee -a "$RES"
            [ -z "$LLAMA2" ] || env -u OPENBLAS_CORETYPE "$PY" bench/peer_llamacpp.py "$LLAMA2" "${LLAMA[2]}" \
                "${step}${sfx}_nolora" 1 "$REPS" | sed "s/^{/{\"round\": $round, /; s/\"side\": \"llama.cpp\"/\"side\": \"llama.cpp-avx2\"/" |
                tee -a "$RES"
        done
    done
done
"$PY" - "$RES" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    side = r["side"] + ("" if r["side"] != "antibody" else " (%s)" % r["isa"])
    rows.setdefault(r["step"], {}).setdefault(side, []).append(r["tokens"] / r["cpu_seconds"])
print("\n| row (1 thread) | side | tokens per CPU-s, median (each round) |\n|---|---|---:|")
for step, sides in rows.items():
    for side, v in sides.items():
        print("| %s | %s | %.1f (%s) |" % (step, side, statistics.median(v), ", ".join("%.1f" % x for x in v)))
EOF

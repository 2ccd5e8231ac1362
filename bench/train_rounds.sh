#!/usr/bin/env bash
# Training steps against the PyTorch peer on a shared machine (bench/README.md): antibody and
# the peer alternate on each step within each of ROUNDS rounds, at THREADS threads (default 2),
# so a slow patch of the machine hits both sides of a pair; the ratio of each round's pair
# and its median over the rounds, in wall time and in CPU time. T-Vaccine's pair also gives
# its probability pass (probe_s), with the peer training the layers antibody sampled.
#   bash bench/train_rounds.sh [ROUNDS] [REPS] [STEPS...]   (after make; default 3 rounds, 2 reps,
#                                                          steps sft vaccine tvaccine antidote)
# Environment: BENCH_SHAPE (default smollm), BENCH_THREADS (default 2); ANTIBODY_ISA,
# ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY hold either side back as in bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
REPS=${2:-2}
shift $(($# < 2 ? $# : 2))
STEPS=${*:-sft vaccine tvaccine antidote}
SHAPE=${BENCH_SHAPE:-smollm}
BIN=${ANTIBODY_BUILD:-build}/bench/bench_train
[ -x "$BIN" ] || { echo "bench/train_rounds.sh: $BIN missing: run make first" >&2; exit 1; }
PY=$(bash tests/oracle/setup.sh | tail -1)
export OMP_NUM_THREADS=${BENCH_THREADS:-2}
RES=$(mktemp)
trap 'rm -f "$RES"' EXIT
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1); flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
    grep -xE 'avx2|fma|avx512f|avx512_bf16' | tr '\n' ' '); $OMP_NUM_THREADS threads; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    for step in $STEPS; do
        "$BIN" "$SHAPE" "$step" "$REPS" 2>/dev/null | sed "s/^{/{\"round\": $round, /" | tee -a "$RES" | cut -c1-150
        act=()
        if [ "$step" = tvaccine ]; then  # the peer trains the layers antibody sampled
            act=(--active "$(tail -1 "$RES" | sed 's/.*"active": "\([0-9,]*\)".*/\1/')")
        fi
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONWARNINGS=ignore "$PY" bench/peer_torch.py "$SHAPE" "$step" \
            "$REPS" "${act[@]}" 2>/dev/null | sed "s/^{/{\"round\": $round, /" | tee -a "$RES" | cut -c1-150
    done
done
"$PY" - "$RES" <<'EOF'
import json, statistics, sys
pairs = {}  # (step, round) -> side -> record
for line in open(sys.argv[1]):
    r = json.loads(line)
    pairs.setdefault((r["step"], r["round"]), {})[r["side"]] = r
rows = {}
for (step, rnd), sides in sorted(pairs.items()):
    a, p = sides.get("antibody"), sides.get("torch")
    if not a or not p:
        continue
    rows.setdefault(step, []).append((p["seconds"] / a["seconds"], p["cpu_seconds"] / a["cpu_seconds"], a["seconds"], p["seconds"]))
    if step == "tvaccine" and "probe_s" in a and "probe_s" in p:
        rows.setdefault("tvaccine probe", []).append((p["probe_s"] / a["probe_s"], p["probe_cpu_s"] / a["probe_cpu_s"],
                                                      a["probe_s"], p["probe_s"]))
print("\n| step | peer/antibody wall, median (each round) | CPU, median | antibody s | peer s |\n|---|---:|---:|---|---|")
for step, v in rows.items():
    print("| %s | %.2fx (%s) | %.2fx | %s | %s |" % (
        step, statistics.median(x[0] for x in v), ", ".join("%.2f" % x[0] for x in v), statistics.median(x[1] for x in v),
        ", ".join("%.2f" % x[2] for x in v), ", ".join("%.2f" % x[3] for x in v)))
EOF

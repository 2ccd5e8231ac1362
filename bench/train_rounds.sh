#!/usr/bin/env bash
# Training steps against the PyTorch peer on a shared machine (bench/README.md): antibody and
# the peer alternate on each step within each of ROUNDS rounds, at THREADS threads (default 2),
# so a slow patch of the machine hits both sides of a pair; the ratio of each round's pair
# and its median over the rounds, in wall time and in CPU time. T-Vaccine's pair also gives
# its probability pass (probe_s), with the peer training the layers antibody sampled. Each
# round also measures the machine's fp32 rate (bench_train's 4096^3 SGEMM, just before the
# steps): with the step's FLOP count (peer_torch.py's flops) it gives antibody's share of
# that rate and the ceiling, the ratio a step running wholly at that rate would show against
# the peer's time of the same round.
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
    "$BIN" "$SHAPE" peak 1 2>/dev/null | sed "s/^{/{\"round\": $round, /" | tee -a "$RES" | cut -c1-150
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
"$PY" - "$RES" "$SHAPE" <<'EOF'
import json, statistics, sys
sys.path.insert(0, "bench")
from peer_torch import flops
pairs, peak = {}, {}  # (step, round) -> side -> record; round -> fp32 GFLOP/s
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["step"] == "peak":
        peak[r["round"]] = r["gflops"]
    else:
        pairs.setdefault((r["step"], r["round"]), {})[r["side"]] = r
rows = {}
for (step, rnd), sides in sorted(pairs.items()):
    a, p = sides.get("antibody"), sides.get("torch")
    if not a or not p:
        continue
    for name, key, fstep in ((step, "seconds", step), ("tvaccine probe", "probe_s", "tvaccine_probe")):
        if key not in a or key not in p:  # probe_s: T-Vaccine's records only
            continue
        cpu = "cpu_seconds" if key == "seconds" else "probe_cpu_s"
        f = flops(sys.argv[2], fstep, a) / 1e9  # GFLOP of the step; 0: not counted
        pk = peak.get(rnd)
        rows.setdefault(name, []).append((p[key] / a[key], p[cpu] / a[cpu], a[key], p[key],
                                          f / a[key] / pk if f and pk else None, p[key] * pk / f if f and pk else None))
print("\n| step | peer/antibody wall, median (each round) | CPU, median | antibody s | peer s "
      "| antibody's share of the fp32 rate | ceiling: peer s / (GFLOP / rate) |\n|---|---:|---:|---|---|---|---|")
fmt = lambda v, f: ", ".join(f % x for x in v) or "-"
for step, v in rows.items():
    print("| %s | %.2fx (%s) | %.2fx | %s | %s | %s | %s |" % (
        step, statistics.median(x[0] for x in v), fmt([x[0] for x in v], "%.2f"), statistics.median(x[1] for x in v),
        fmt([x[2] for x in v], "%.2f"), fmt([x[3] for x in v], "%.2f"), fmt([100 * x[4] for x in v if x[4]], "%.0f%%"),
        fmt([x[5] for x in v if x[5]], "%.2fx")))
print("\nfp32 rate of each round (4096^3 SGEMM, GFLOP/s): " + ", ".join("%.0f" % peak[r] for r in sorted(peak)))
EOF

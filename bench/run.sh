#!/usr/bin/env bash
# antibody vs PyTorch (transformers + peft), side by side on this machine: `make bench`
# (or `bash bench/run.sh [--7b]` after `make`). Each measurement runs in its own process,
# antibody first, then the peer, at the same thread count. Writes bench/results.md.
#   BENCH_THREADS  threads for both sides (default 2)
#   BENCH_REPS     timed steps after one warm-up step (default 3; the median is reported)
#   BENCH_SHAPES   default "tinystories smollm"
#   --7b           also the Llama-2-7B-shaped LoRA step (bf16 weights, 1 x 128; antibody only; minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${ANTIBODY_BUILD:-$ROOT/build}
THREADS=${BENCH_THREADS:-2}
REPS=${BENCH_REPS:-3}
SHAPES=${BENCH_SHAPES:-"tinystories smollm"}
STEPS="sft vaccine tvaccine generate antidote"
RUN7B=0
for a in "$@"; do
    case "$a" in
        --7b) RUN7B=1 ;;
        *) echo "usage: bench/run.sh [--7b]" >&2; exit 2 ;;
    esac
done
BIN=$BUILD/bench/bench_train
[ -x "$BIN" ] || { echo "bench/run.sh: $BIN missing: run make first" >&2; exit 1; }
PY=$(bash tests/oracle/setup.sh | tail -1)
[ -x "$PY" ] || { echo "bench/run.sh: no oracle venv python (tests/oracle/setup.sh)" >&2; exit 1; }

export OMP_NUM_THREADS=$THREADS
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
RES=$OUT/results.jsonl
LOG=$OUT/stderr.log
start=$(date +%s)

ab() { "$BIN" "$@" 2>>"$LOG" | tee -a "$RES" | cut -c1-160; }
# The peer runs without our OpenBLAS settings (torch uses its own MKL / oneDNN kernels).
peer() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONWARNINGS=ignore "$PY" bench/peer_torch.py "$@" \
             2>>"$LOG" | tee -a "$RES" | cut -c1-160; }

handwritten() { local name=$1 py=$2; shift 2
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PEER_NAME=$name PYTHONWARNINGS=ignore "$py" bench/peer_handwritten.py "$@" "$REPS" \
        2>>"$LOG" | tee -a "$RES" | cut -c1-160; }
# Debian's python3-torch for the extra row (installed on demand; skipped if it cannot be had)
DEBPY=/usr/bin/python3
if ! "$DEBPY" -c "import torch" 2>/dev/null; then
    { apt-get install -y -qq python3-torch >/dev/null 2>&1 || sudo apt-get install -y -qq python3-torch >/dev/null 2>&1; } || true
    "$DEBPY" -c "import torch" 2>/dev/null || DEBPY=""
fi
DEBTORCH=$([ -n "$DEBPY" ] && "$DEBPY" -c "import torch; print(torch.__version__)" || echo "not installable here")

echo "== peak (4096^3 matrix product in fp32 and bf16, vector-unit loops, $THREADS threads)"
ab smollm peak
peer peak
for shape in $SHAPES; do
    for step in $STEPS; do
        echo "== $shape $step"
        ab "$shape" "$step" "$REPS"
        if [ "$step" = tvaccine ]; then
            # the peer trains the same layers antibody sampled, so both do the same work
            act=$(grep "\"shape\": \"$shape\", \"step\": \"tvaccine\"" "$RES" | tail -1 | sed 's/.*"active": "\([0-9,]*\)".*/\1/')
            peer "$shape" "$step" "$REPS" --active "$act"
        else
            peer "$shape" "$step" "$REPS"
        fi
        if [ "$step" = generate ]; then
            echo "== $shape generate, bf16 weights"
            ab "$shape" generate "$REPS" bf16
            peer "$shape" generate_bf16 "$REPS"
            echo "== $shape generate, 8 prompts 4 at a time (evaluation), fp32 and bf16 weights"
            ab "$shape" generate4 "$REPS"
            peer "$shape" generate4 "$REPS"
            ab "$shape" generate4 "$REPS" bf16
            peer "$shape" generate4_bf16 "$REPS"
        fi
        if [ "$step" = sft ] || [ "$step" = vaccine ]; then
            # extra rows: a hand-written Llama + LoRA in plain PyTorch, on the newest torch and on
            # Debian's python3-torch (which the transformers/peft peer cannot use)
            handwritten torch-handwritten "$PY" "$shape" "$step"
            [ -n "$DEBPY" ] && handwritten debian-torch-handwritten "$DEBPY" "$shape" "$step"
        fi
    done
done
if [ $RUN7B = 1 ]; then
    echo "== llama7b sft (bf16 weights, batch 1 x 128)"
    "$BIN" llama7b sft 1 2>>"$LOG" | tee "$OUT/7b.json"
fi

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
cores=$(nproc)
mem=$(free -g | awk '/Mem:/ {print $2}')
vers=$(grep '"step": "peak"' "$RES" | grep '"side": "torch"' | "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); print("torch %s, transformers %s, peft %s; torch BLAS: %s; torch.get_num_threads() = %s" % (r["torch"], r["transformers"], r["peft"], r["blas"], r["threads"]))')
blas=$(grep '"step": "peak"' "$RES" | grep '"side": "antibody"' | sed 's/.*"blas": "\([^"]*\)".*/\1/')
{
    echo "# antibody vs PyTorch: measured figures"
    echo
    echo "- Date: $(date -u +%Y-%m-%d) ($(date -u +%H:%MZ))"
    echo "- Machine: $cpu, $cores cores, ${mem} GB RAM"
    echo "- Command: \`make bench\` (= \`bash bench/run.sh$([ $RUN7B = 1 ] && echo ' --7b')\`), $THREADS threads both sides (OMP_NUM_THREADS=$THREADS, torch.set_num_threads($THREADS)), median of $REPS steps after 1 warm-up step"
    echo "- antibody: fp32 (bf16 weights only in the rows that say so), GEMM: $blas"
    echo "- Peer: $vers; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for the peer (this environment sets OPENBLAS_CORETYPE, which slows OpenBLAS); the bf16 generation row runs the peer's model in torch.bfloat16"
    echo "- Extra rows: torch-handwritten = bench/peer_handwritten.py (a compact Llama + LoRA in plain PyTorch, SFT and Vaccine steps) on the same torch; debian-torch-handwritten = the same on Debian's python3-torch ($DEBTORCH), which transformers 5 / peft 0.21 cannot use"
    echo "- Model: random init, LoRA r=8, alpha 4, dropout 0.1 on q,k,v,o,gate,up,down; batch 5 x 200 random tokens, loss over all tokens (labels = input ids); AdamW lr 1e-3 wd 0.1, grad clip 1.0; Vaccine rho 2; T-Vaccine rho 3, S=8 (reference quirk: > 26 layers also activates i-1), both sides train the same sampled layers; peak RSS = whole process (ru_maxrss / VmHWM)"
    echo "- FLOP counts: bench/peer_torch.py flops() (frozen base: forward 2N(P+VC) + attention 4BT^2*NH*HD*L + LoRA; backward = input gradients only)"
    echo
} > "$OUT/head.md"
"$PY" bench/peer_torch.py table "$RES" "$OUT/table.md" > /dev/null
{
    cat "$OUT/head.md" "$OUT/table.md"
    if [ -s "$OUT/7b.json" ]; then
        echo
        "$PY" - "$OUT/7b.json" <<'EOF'
import json, sys
r = json.loads(open(sys.argv[1]).read())
print("Llama-2-7B shape (4096 x 32 layers, MLP 11008, vocab 32000), bf16 base weights, LoRA r=8 on all seven projections, batch 1 x 128, one SFT step (forward + backward + AdamW):")
print()
print("| step time (s) | warm-up step (s) | init (s) | RSS after init (GB) | peak RSS (GB) | workspace (MB) |")
print("|---:|---:|---:|---:|---:|---:|")
print(f"| {r['seconds']:.1f} | {r['warmup_s']:.1f} | {r['init_s']:.1f} | {r['model_rss']/1e9:.2f} | {r['peak_rss']/1e9:.2f} | {r['workspace_bytes']/1e6:.0f} |")
EOF
    fi
    echo
    echo "Total bench time: $(( $(date +%s) - start )) s"
} > bench/results.md.tmp
mv bench/results.md.tmp bench/results.md
echo
cat bench/results.md
cp "$RES" bench/results.jsonl.tmp && mv bench/results.jsonl.tmp bench/results.jsonl

#!/usr/bin/env bash
# antibody vs PyTorch (transformers + peft) and llama.cpp, side by side on this machine:
# `make bench` (or `bash bench/run.sh [--full] [--7b]` after `make`). Each measurement runs in its own
# process, antibody first, then the peers, at the same thread count. Writes bench/results.md.
# The default set fits in 15 minutes on a 2-core AVX2 machine (bench/README.md, "Time");
# the rest is behind --full.
#   BENCH_THREADS   threads for every side (default 2)
#   BENCH_REPS      timed steps after one warm-up step (default 2, 3 with --full; the median is reported)
#   BENCH_SHAPES    default "smollm" ("tinystories smollm" with --full)
#   BENCH_LLAMACPP  0: no llama.cpp rows (default 1: built once, bench/llamacpp.sh)
#   BENCH_EXTRA     1: also the hand-written PyTorch Llama rows (on PyPI's and Debian's torch)
#   --full          also the TinyStories shape, 3 timed steps per row, the 16-prompt rows with
#                   LoRA (antibody and the peer), llama.cpp's fp32-weight rows, the generation
#                   rows through the AVX2 kernels on an AVX-512 CPU, and the baseline defenses
#                   (Booster, RepNoise, TAR, Lisa, LDIFS) on the TinyStories shape
#   --7b            also the Llama-2-7B-shaped SFT, Vaccine and T-Vaccine steps (bf16 weights,
#                   1 x 128; antibody only; one process at a time, ~15 GB each; long) and the
#                   Gemma-2-9B-shaped SFT step (~21 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${ANTIBODY_BUILD:-$ROOT/build}
THREADS=${BENCH_THREADS:-2}
STEPS="sft vaccine tvaccine generate antidote"
BASELINES="booster repnoise tar lisa ldifs"  # --full, TinyStories shape
RUN7B=0 FULL=0
for a in "$@"; do
    case "$a" in
        --7b) RUN7B=1 ;;
        --full) FULL=1 ;;
        *) echo "usage: bench/run.sh [--full] [--7b]" >&2; exit 2 ;;
    esac
done
SHAPES=${BENCH_SHAPES:-$([ $FULL = 1 ] && echo "tinystories smollm" || echo smollm)}
REPS=${BENCH_REPS:-$([ $FULL = 1 ] && echo 3 || echo 2)}
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

llama() { env -u OPENBLAS_CORETYPE "$PY" bench/peer_llamacpp.py "${LLAMA[0]}" "${LLAMA[2]}" "$1" "$THREADS" "$REPS" \
              2>>"$LOG" | tee -a "$RES" | cut -c1-160; }

handwritten() { local name=$1 py=$2; shift 2
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PEER_NAME=$name PYTHONWARNINGS=ignore "$py" bench/peer_handwritten.py "$@" "$REPS" \
        2>>"$LOG" | tee -a "$RES" | cut -c1-160; }
# Debian's python3-torch for the extra row (installed on demand; skipped if it cannot be had)
DEBPY=/usr/bin/python3
if [ "${BENCH_EXTRA:-0}" != 1 ]; then DEBPY=""
elif ! "$DEBPY" -c "import torch" 2>/dev/null; then
    { apt-get install -y -qq python3-torch >/dev/null 2>&1 || sudo apt-get install -y -qq python3-torch >/dev/null 2>&1; } || true
    "$DEBPY" -c "import torch" 2>/dev/null || DEBPY=""
fi
DEBTORCH=$([ -n "$DEBPY" ] && "$DEBPY" -c "import torch; print(torch.__version__)" || echo "not run")

# the machine, first: the CPU and the instruction sets that decide which kernels run
# (antibody's, torch's, llama.cpp's), and any that the environment holds back
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | { grep -xE 'avx2|fma|f16c|avx512f|avx512bw|avx512vl|avx512_bf16|avx512_vnni|amx_tile|amx_bf16' || true; } | tr '\n' ' ' | sed 's/ $//')
forced=$(env | { grep -E '^(ANTIBODY_ISA|ONEDNN_MAX_CPU_ISA|DNNL_MAX_CPU_ISA|ATEN_CPU_CAPABILITY|MKL_ENABLE_INSTRUCTIONS)=' || true; } | sort | tr '\n' ' ' | sed 's/ $//')
printf '{"side": "machine", "step": "machine", "cpu": "%s", "cores": %d, "flags": "%s", "forced": "%s", "load": "%s"}\n' \
    "$cpu" "$(nproc)" "$flags" "$forced" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES"
echo "== $cpu, $(nproc) cores; flags: $flags${forced:+; held back: $forced}"
echo "== peak (4096^3 matrix product in fp32 and bf16, vector-unit loops, $THREADS threads)"
ab smollm peak
peer peak
echo "== vector kernels through each instruction set this CPU runs (alternating rounds, best of 5)"
ab smollm kernels 5
# llama.cpp: built once (cached), the same SmolLM-shaped weights converted to GGUF
LLAMA=""
if [ "${BENCH_LLAMACPP:-1}" = 1 ]; then
    if out=$(bash bench/llamacpp.sh "$PY" "$BIN" 2>>"$LOG"); then
        LLAMA=($out)  # bin folder, Hugging Face folder, GGUF folder
    else
        echo "bench/run.sh: llama.cpp could not be built or converted (see the log below); no llama.cpp rows" >&2
        tail -5 "$LOG" >&2
    fi
fi
for shape in $SHAPES; do
    for step in $STEPS $([ $FULL = 1 ] && [ "$shape" = tinystories ] && echo "$BASELINES"); do
        echo "== $shape $step"
        ab "$shape" "$step" "$REPS"
        if [ "$step" = tvaccine ]; then
            # the peer trains the same layers antibody sampled, so both do the same work
            act=$(grep "\"shape\": \"$shape\", \"step\": \"tvaccine\"" "$RES" | tail -1 | sed 's/.*"active": "\([0-9,]*\)".*/\1/')
            peer "$shape" "$step" "$REPS" --active "$act"
        else
            peer "$shape" "$step" "$REPS"
        fi
        if [ "$step" = generate ] && [ -n "$LLAMA" ] && [ "$shape" = smollm ]; then
            # the base model alone (llama.cpp runs no LoRA here), from the same checkpoint both sides
            for w in $([ $FULL = 1 ] && echo f32) bf16; do  # fp32 weights with --full
                sfx=$([ $w = bf16 ] && echo _bf16 || true)
                echo "== $shape generate, no LoRA, $w weights: antibody, llama.cpp"
                ab "$shape" generate "$REPS" nolora model="${LLAMA[1]}" $([ $w = bf16 ] && echo bf16)
                llama "generate${sfx}_nolora"
                echo "== $shape generate, 16 prompts all at once, no LoRA, $w weights: antibody, llama.cpp"
                ab "$shape" generate16 "$REPS" nolora model="${LLAMA[1]}" $([ $w = bf16 ] && echo bf16)
                llama "generate16${sfx}_nolora"
            done
            if [ $FULL = 1 ] && grep -qw avx512f /proc/cpuinfo; then  # the AVX2 kernels on this AVX-512 CPU
                echo "== $shape generate and generate16, no LoRA, through the AVX2 kernels (ANTIBODY_ISA=avx2)"
                for w in f32 bf16; do
                    for g in generate generate16; do
                        ANTIBODY_ISA=avx2 "$BIN" "$shape" $g "$REPS" nolora model="${LLAMA[1]}" \
                            $([ $w = bf16 ] && echo bf16) 2>>"$LOG" | sed 's/"side": "antibody"/"side": "antibody-avx2"/' |
                            tee -a "$RES" | cut -c1-160
                    done
                done
            fi
        fi
        if [ "$step" = generate ]; then
            echo "== $shape generate, bf16 weights"
            ab "$shape" generate "$REPS" bf16
            peer "$shape" generate_bf16 "$REPS"
            if [ $FULL = 1 ]; then
                echo "== $shape generate, 16 prompts all at once (evaluation), fp32 and bf16 weights"
                ab "$shape" generate16 "$REPS"
                peer "$shape" generate16 "$REPS"
                ab "$shape" generate16 "$REPS" bf16
                peer "$shape" generate16_bf16 "$REPS"
            fi
        fi
        if [ "${BENCH_EXTRA:-0}" = 1 ] && { [ "$step" = sft ] || [ "$step" = vaccine ]; }; then
            # extra rows: a hand-written Llama + LoRA in plain PyTorch, on the newest torch and on
            # Debian's python3-torch (which the transformers/peft peer cannot use)
            handwritten torch-handwritten "$PY" "$shape" "$step"
            [ -z "$DEBPY" ] || handwritten debian-torch-handwritten "$DEBPY" "$shape" "$step"
        fi
    done
done
if [ $RUN7B = 1 ]; then
    for step in sft vaccine tvaccine; do  # one process each: its own peak memory
        avail=$(free -g | awk '/Mem:/ {print $7}')
        if [ "$avail" -lt 16 ]; then  # 13.5 GB of weights + activations; the machine may be shared
            echo "bench/run.sh: llama7b $step skipped: $avail GB available, it needs about 15" >&2
            continue
        fi
        echo "== llama7b $step (bf16 weights, batch 1 x 128)"
        "$BIN" llama7b $step 1 2>>"$LOG" | tee -a "$OUT/7b.json" "$RES" | cut -c1-160
    done
    # Gemma-2-9B: 18.5 GB of bf16 weights and 2.3 GB of activations, gradients, adapter and moments
    avail=$(free -g | awk '/Mem:/ {print $7}')
    if [ "$avail" -lt 21 ]; then
        echo "bench/run.sh: gemma2_9b sft skipped: $avail GB available, it needs about 21" >&2
    else
        echo "== gemma2_9b sft (bf16 weights, batch 1 x 128)"
        "$BIN" gemma2_9b sft 1 2>>"$LOG" | tee -a "$OUT/9b.json" "$RES" | cut -c1-160
    fi
fi

# the records first: they outlive a failure of the tables below
cp "$RES" bench/results.jsonl.tmp && mv bench/results.jsonl.tmp bench/results.jsonl
cores=$(nproc)
isa=$(grep '"step": "kernels"' "$RES" | sed 's/.*"isa": "\([^"]*\)".*/\1/' | tr '\n' ' ')
active=$(grep '"side": "antibody", "shape"' "$RES" | head -1 | sed 's/.*"isa": "\([^"]*\)".*/\1/')
mem=$(free -g | awk '/Mem:/ {print $2}')
vers=$(grep '"step": "peak"' "$RES" | grep '"side": "torch"' | "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); print("torch %s, transformers %s, peft %s; torch BLAS: %s; torch.get_num_threads() = %s" % (r["torch"], r["transformers"], r["peft"], r["blas"], r["threads"]))')
blas=$(grep '"step": "peak"' "$RES" | grep '"side": "antibody"' | sed 's/.*"blas": "\([^"]*\)".*/\1/')
{
    echo "# antibody vs PyTorch: measured figures"
    echo
    echo "- Date: $(date -u +%Y-%m-%d) ($(date -u +%H:%MZ))"
    echo "- Machine: $cpu, $cores cores, ${mem} GB RAM; CPU flags: $flags; antibody's kernels: $active (this CPU runs: ${isa})${forced:+; instruction sets held back by the environment: $forced}"
    echo "- Command: \`make bench\` (= \`bash bench/run.sh$([ $FULL = 1 ] && echo ' --full')$([ $RUN7B = 1 ] && echo ' --7b')\`), $THREADS threads both sides (OMP_NUM_THREADS=$THREADS, torch.set_num_threads($THREADS)), median of $REPS steps after 1 warm-up step"
    echo "- antibody: fp32 (bf16 weights only in the rows that say so), GEMM: $blas"
    echo "- Peer: $vers; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for the peer (this environment sets OPENBLAS_CORETYPE, which slows OpenBLAS); the bf16 generation row runs the peer's model in torch.bfloat16"
    echo "- Extra rows: torch-handwritten = bench/peer_handwritten.py (a compact Llama + LoRA in plain PyTorch, SFT and Vaccine steps) on the same torch; debian-torch-handwritten = the same on Debian's python3-torch ($DEBTORCH), which transformers 5 / peft 0.21 cannot use"
    echo "- Model: random init, LoRA r=8, alpha 4, dropout 0.1 on q,k,v,o,gate,up,down; batch 5 x 200 random tokens, loss over all tokens (labels = input ids); AdamW lr 1e-3 wd 0.1, grad clip 1.0; Vaccine rho 2; T-Vaccine rho 3, S=8 (reference quirk: > 26 layers also activates i-1), both sides train the same sampled layers; Booster lambda 5, alpha 0.1, 10 harmful rows; RepNoise alpha 0.1, beta 1e-3, 5 harmful rows; TAR one SGD attack step (lr 0.01) on 10 harmful rows, weight 2; Lisa in the fine-tuning state with the proximal term (rho 1); LDIFS rho 1e-4; peak RSS = whole process (ru_maxrss / VmHWM)"
    echo "- FLOP counts: bench/peer_torch.py flops() (frozen base: forward 2N(P+VC) + attention 4BT^2*NH*HD*L + LoRA; backward = input gradients only)"
    echo
} > "$OUT/head.md"
"$PY" bench/peer_torch.py table "$RES" "$OUT/table.md" > /dev/null
{
    cat "$OUT/head.md" "$OUT/table.md"
    for big in 7b 9b; do
        [ -s "$OUT/$big.json" ] || continue
        echo
        "$PY" - "$OUT/$big.json" "$big" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
shape = {"7b": "Llama-2-7B shape (4096 x 32 layers, MLP 11008, vocab 32000)",
         "9b": "Gemma-2-9B shape (3584 x 42 layers, 16/8 heads of 256, GeGLU MLP 14336, vocab 256000, tied; soft-caps 50/30, "
               "window 4096 on even layers)"}[sys.argv[2]]
print(shape + ", bf16 base weights, LoRA r=8 on all seven projections, batch 1 x 128, "
      "one step after the warm-up step (forward + backward + AdamW; T-Vaccine's warm-up includes its probability pass, timed on its own); "
      "activations = the training workspace after the steps (activations kept or recomputed, gradients, buffers):")
print()
print("| method | step time (s) | CPU s/step | warm-up step (s) | init (s) | RSS after init (GB) | peak RSS (GB) | activations (MB) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in recs:
    name = r["step"]
    if r.get("active"):
        name += f" (S=8, layers {r['active']}; probability pass {r['probe_s']:.1f} s)"
    print(f"| {name} | {r['seconds']:.1f} | {r.get('cpu_seconds', 0):.1f} | {r['warmup_s']:.1f} | {r['init_s']:.1f} | "
          f"{r['model_rss']/1e9:.2f} | {r['peak_rss']/1e9:.2f} | {r['workspace_bytes']/1e6:.0f} |")
EOF
    done
    echo
    echo "Total bench time: $(( $(date +%s) - start )) s"
} > bench/results.md.tmp
mv bench/results.md.tmp bench/results.md
echo
cat bench/results.md

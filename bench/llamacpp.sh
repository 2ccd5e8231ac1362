#!/usr/bin/env bash
# llama.cpp, the peer for generation (bench/README.md): built once from the llama.cpp that
# llama-cpp-python's PyPI sdist vendors (CPU only, for this CPU: GGML_NATIVE), cached under
# ~/.cache/antibody/llamacpp/ (ANTIBODY_CACHE overrides ~/.cache/antibody); then the
# benchmark's SmolLM-shaped model, saved by bench_train as a Hugging Face folder, converted
# with llama.cpp's own convert_hf_to_gguf.py to fp32 and bf16 GGUF (cached by the
# checkpoint's hash).
#   bench/llamacpp.sh PY BENCH_TRAIN   prints three lines: llama.cpp's bin folder, the Hugging
#                                      Face folder, the folder holding smollm-f32.gguf and smollm-bf16.gguf
# PY is a Python with torch, numpy and sentencepiece (the oracle venv). The first build
# takes 10-60 minutes on 2 cores; later runs reuse it.
# LLAMACPP_ISA=avx2 builds (in build-avx2/) and prints a llama.cpp held to AVX2 + FMA + F16C
# (no AVX-512, GGML_NATIVE off), the peer of antibody's AVX2 kernels on an AVX-512 CPU.
set -euo pipefail
PY=$1 BT=$2
VER=0.3.36  # llama-cpp-python; its vendored llama.cpp is what gets built
CACHE=${ANTIBODY_CACHE:-$HOME/.cache/antibody}/llamacpp
SRC=$CACHE/llama_cpp_python-$VER/vendor/llama.cpp
case "${LLAMACPP_ISA:-native}" in
    native) BUILD=build ISAFLAGS="-DGGML_NATIVE=ON" ;;
    avx2) BUILD=build-avx2
          ISAFLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF" ;;
    *) echo "bench/llamacpp.sh: LLAMACPP_ISA must be native or avx2" >&2; exit 2 ;;
esac
BIN=$SRC/$BUILD/bin
mkdir -p "$CACHE"
log() { echo "bench/llamacpp.sh: $*" >&2; }

if [ ! -x "$BIN/llama-bench" ] || [ ! -x "$BIN/llama-batched-bench" ]; then
    if ! command -v cmake >/dev/null || ! command -v c++ >/dev/null; then
        log "installing cmake and g++"
        { apt-get install -y -qq cmake g++ >/dev/null 2>&1 || sudo apt-get install -y -qq cmake g++ >/dev/null 2>&1; } ||
            { log "cannot install cmake/g++"; exit 1; }
    fi
    if [ ! -d "$SRC" ]; then
        log "downloading llama-cpp-python $VER (sdist) from PyPI"
        "$PY" -m pip download -q --no-binary :all: --no-deps "llama-cpp-python==$VER" -d "$CACHE" >&2
        tar -xzf "$CACHE/llama_cpp_python-$VER.tar.gz" -C "$CACHE"
    fi
    log "building llama-bench and llama-batched-bench (CPU only; long on 2 cores, once)"
    (cd "$SRC" &&
        cmake -B "$BUILD" -DCMAKE_BUILD_TYPE=Release $ISAFLAGS -DLLAMA_CURL=OFF -DGGML_OPENMP=ON \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >"$CACHE/cmake-config-$BUILD.log" 2>&1 &&
        nice cmake --build "$BUILD" -j "$(nproc)" --target llama-bench llama-batched-bench >"$CACHE/cmake-$BUILD.log" 2>&1) ||
        { log "build failed: see $CACHE/cmake-$BUILD.log"; exit 1; }
fi

# The same weights on both sides: bench_train's random SmolLM-shaped model (seed 42) with the
# SmolLM tokenizer, which llama.cpp's converter needs.
HF=$CACHE/models/smollm-hf
mkdir -p "$HF"
"$BT" smollm save "$HF" >&2
TOK=${ANTIBODY_SHARED:-$(cd "$(dirname "$0")/.." && pwd)/../shared}/tokenizers/smollm-135m
cp "$TOK/tokenizer.json" "$TOK/tokenizer_config.json" "$HF/"
sum=$(sha256sum "$HF/model.safetensors" | cut -c1-16)
G=$CACHE/models/gguf-$sum
if [ ! -s "$G/smollm-bf16.gguf" ]; then
    rm -rf "$CACHE"/models/gguf-*
    mkdir -p "$G"
    for t in f32 bf16; do
        log "converting to $t GGUF"
        PYTHONPATH=$SRC/gguf-py "$PY" "$SRC/convert_hf_to_gguf.py" "$HF" --outfile "$G/smollm-$t.gguf.tmp" --outtype $t \
            >"$CACHE/convert-$t.log" 2>&1 || { log "conversion failed: see $CACHE/convert-$t.log"; exit 1; }
        mv "$G/smollm-$t.gguf.tmp" "$G/smollm-$t.gguf"
    done
fi
echo "$BIN"
echo "$HF"
echo "$G"

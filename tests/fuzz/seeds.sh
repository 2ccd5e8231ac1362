#!/usr/bin/env bash
# Seed corpora for the fuzz harnesses (docs/reliability.md), from ../shared and from tiny
# files written by make_seeds: FUZZ_BUILD/corpus/<harness>/. Multi-file inputs are the
# files joined by the harnesses' PART_SEP (tests/fuzz/fuzz.h).
set -euo pipefail
fb=${1:-build-fuzz}
build=${2:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${ANTIBODY_SHARED:-$root/../shared}
cd "$root"
c=$fb/corpus
rm -rf "$c" "$fb/seedfiles"
mkdir -p "$c" "$fb/seedfiles"
"$fb/make_seeds" "$fb/seedfiles"
t=$fb/seedfiles
sep=$'\n@@antibody-fuzz-part@@\n'
join() { local out=$1; shift; local first=1; : > "$out"; for f in "$@"; do
  [ $first -eq 1 ] || printf '%s' "$sep" >> "$out"; first=0; cat "$f" >> "$out"; done; }
for h in safetensors model tokenizer dataset pipeline_config peft checkpoint; do mkdir -p "$c/$h"; done
m=$shared/models/stories260k-hf

# safetensors: single files, and an index with its shards
cp "$m/model.safetensors" "$c/safetensors/stories260k"
cp "$t/model/model.safetensors" "$c/safetensors/tiny"
cp "$t/adapter/adapter_model.safetensors" "$c/safetensors/adapter"
cp "$t/ck/checkpoint.safetensors" "$c/safetensors/checkpoint"
shards=("$t"/sharded/model-0000?-of-*.safetensors)
join "$c/safetensors/sharded" "$t/sharded/model.safetensors.index.json" "${shards[@]:0:3}"

# config.json + weights
join "$c/model/stories260k" "$m/config.json" "$m/model.safetensors"
join "$c/model/tiny" "$t/model/config.json" "$t/model/model.safetensors"
cp "$m/config.json" "$c/model/config_only"

# tokenizer.json + text: the real SentencePiece-style one and a byte-level BPE trained on the shared corpus
text=$fb/seedfiles/text.txt
head -c 600 "$shared/tokenizers/corpus.txt" > "$text"
printf ' <s></s> \xe4\xbd\xa0\xe5\xa5\xbd 1234 caf\xc3\xa9\n\t' >> "$text"
join "$c/tokenizer/stories260k" "$m/tokenizer.json" "$text"
if "$build/antibody" tokenize --train "$shared/tokenizers/corpus.txt" --vocab-size 400 --special '<|endoftext|>' \
     --out "$t/bytelevel.json" >/dev/null 2>&1; then
  join "$c/tokenizer/bytelevel" "$t/bytelevel.json" "$text"
fi

# datasets: the loader byte, then the head of a real file
ds() { local name=$1 byte=$2 file=$3 n=$4; { printf "\\x$byte"; head -n "$n" "$file"; } > "$c/dataset/$name"; }
ds sst2_tsv 03 "$shared/data/sst2/dev.tsv" 20
ds agnews 04 "$shared/data/ag_news/test.csv" 10
ds gsm8k 05 "$shared/data/gsm8k/test.jsonl" 4
{ printf '\x00'; head -c 3000 "$shared/data/alpaca_eval/alpaca_eval_805.json" | sed '$d'; printf '}]\n'; } > "$c/dataset/alpaca_json"
{ printf '\x01'; printf '{"instruction":"Say hi","input":"","output":"hi"}\n{"prompt":"p","response":"r","category":{"a":true},"is_safe":false}\n'; } > "$c/dataset/jsonl"
{ printf '\x02'; printf '{"question":"q?","context":"c","answer":"a"}\n'; } > "$c/dataset/fieldmap"
for f in "$shared"/data/beavertails_vaccine_sst2_mix/*.json; do
  { printf '\x00'; head -c 2000 "$f" | sed '$d'; printf '}]\n'; } > "$c/dataset/bt_$(basename "$f")"; break
done

# pipeline configs: the repository's examples
for f in examples/*.json examples/*/*.json; do cp "$f" "$c/pipeline_config/$(echo "$f" | tr / _)"; done

# PEFT adapter and checkpoint of the tiny model
join "$c/peft/tiny" "$t/adapter/adapter_config.json" "$t/adapter/adapter_model.safetensors"
join "$c/checkpoint/tiny" "$t/ck/trainer_state.json" "$t/ck/checkpoint.safetensors"
for h in "$c"/*; do echo "fuzz seeds: $(ls "$h" | wc -l) in $h"; done

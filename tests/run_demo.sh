#!/usr/bin/env bash
# The reduced demo end to end (issue 5): world, base model, every stage, the table.
# Checks the harmful fine-tuning effect itself: SFT's harmful score at p = 0.2 is above p = 0.
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
# the base model is kept in BUILD/demo-cache: the oracle tests load it in transformers
if ! "$root/$build/antibody" demo --quick --out "$out/demo" --cache "$root/$build/demo-cache" > "$out/stdout" 2> "$out/stderr"; then
  tail -20 "$out/stderr"; echo "demo: 0 passed, 1 failed"; exit 1
fi
secs=$(( $(date +%s) - start ))
cat "$out/stdout"
/usr/bin/python3 - "$out/demo" "$secs" <<'PY'
import json, os, sys
d, secs = sys.argv[1], int(sys.argv[2])
ok = fail = 0
def check(cond, what):
    global ok, fail
    if cond: ok += 1
    else: fail += 1; print("FAIL", what)

r = json.load(open(os.path.join(d, "results.json")))
for f in ["results.md", "results.csv", "hs.svg", "fa.svg"]:
    check(os.path.getsize(os.path.join(d, f)) > 0, f + " written")
runs = {(x["method"], x["sweep_value"]): x for x in r["runs"]}
hs = lambda m, v: runs[(m, v)]["harmful_score"]
check(len(runs) == 20, "20 runs (5 methods x 4 values), got %d" % len(runs))
check(hs("sft", 0.2) > hs("sft", 0.0), "SFT harmful score rises with p: %.1f at p=0, %.1f at p=0.2" % (hs("sft", 0.0), hs("sft", 0.2)))
check(hs("none", 0.0) > hs("sft", 0.0), "alignment lowers the harmful score at p=0")
print("demo took %ds; SFT HS %.1f (p=0) -> %.1f (p=0.2)" % (secs, hs("sft", 0.0), hs("sft", 0.2)))
print("demo: %d passed, %d failed" % (ok, fail))
sys.exit(1 if fail else 0)
PY

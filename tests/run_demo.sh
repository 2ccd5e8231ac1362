#!/usr/bin/env bash
# The reduced demo end to end (issue 5): world, base model, every stage, the table.
# Two seeds (1, 2) at p = 0 and 0.2; checks the results over seeds and the harmful fine-tuning
# effect itself: SFT's mean harmful score at p = 0.2 is above p = 0.
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
# two seeds (1, 2), p = 0 and 0.2: every run in its seed's folder, the table over both
check(r["seeds"] == [1, 2], "seeds 1, 2: %s" % r["seeds"])
runs = {(x["method"], x["sweep_value"], x["seed"]): x for x in r["runs"]}
check(len(runs) == 20, "20 runs (5 methods x 2 values x 2 seeds), got %d" % len(runs))
for s in (1, 2):
    check(os.path.exists(os.path.join(d, "seed=%d" % s, "eval", "sft", "p=0.2", "summary.json")), "seed=%d folder" % s)
hs = lambda m, v: sum(runs[(m, v, s)]["harmful_score"] for s in (1, 2)) / 2
rows = {x["method"]: x for x in r["aggregate"]["rows"]}
cell = rows["sft"]["cells"][1]["HS"]
check(cell["n"] == 2 and abs(cell["mean"] - hs("sft", 0.2)) < 1e-9, "SFT HS at p=0.2: mean over the two seeds")
cmps = {x["method"]: x for x in r["aggregate"]["comparisons"]}
check(sorted(cmps) == ["sft+antidote", "tvaccine", "vaccine"], "each defense against SFT: %s" % sorted(cmps))
check("±" in open(os.path.join(d, "results.md"), encoding="utf-8").read(), "results.md shows mean ± sd")
check(hs("sft", 0.2) > hs("sft", 0.0), "SFT harmful score rises with p: %.1f at p=0, %.1f at p=0.2 (mean of 2 seeds)" % (hs("sft", 0.0), hs("sft", 0.2)))
check(hs("none", 0.0) > hs("sft", 0.0), "alignment lowers the harmful score at p=0")
print("demo took %ds; SFT HS %.1f (p=0) -> %.1f (p=0.2), mean of seeds 1 and 2" % (secs, hs("sft", 0.0), hs("sft", 0.2)))
print("demo: %d passed, %d failed" % (ok, fail))
sys.exit(1 if fail else 0)
PY

# debian-python
# Data loaders against independent Python readings of the real files in shared/data:
# BeaverTails (raw_decode over the concatenated arrays), unsafe_unmatch, SST-2 (csv, as the
# HF GLUE rows), AG News (csv.reader with HF ag_news settings, text = title + " " + description),
# GSM8K (the Vaccine build_dataset.py transform + extract_answer_number on the output), AdvBench,
# DecodingTrust (as T-Vaccine's train.py / pred.py build it: type == 'toxic' rows harmful,
# 'non_toxic' rows safe, instruction + prompt.text as input + continuation.text as output).
import csv, json, os, re, subprocess, sys

BUILD = os.environ.get("ANTIBODY_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
SHARED = os.environ.get("ANTIBODY_SHARED", os.path.join(os.path.dirname(__file__), "../../../shared"))
EXE = os.path.join(BUILD, "tests", "test_data")
D = os.path.join(SHARED, "data")
compared = mismatches = 0


def check(ok, what):
    global compared, mismatches
    compared += 1
    if not ok:
        mismatches += 1
        print("MISMATCH:", what)


def dump(kind, path):
    r = subprocess.run([EXE, "--dump", kind, path], capture_output=True, text=True)
    if r.returncode:
        print("C loader failed:", r.stderr.strip())
        sys.exit(1)
    return json.loads(r.stdout)


def compare(name, got, want):
    check(len(got) == len(want), f"{name}: {len(got)} rows vs {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        check(g == w, f"{name} row {i}: {g!r:.300} vs {w!r:.300}")


cats = lambda c: ",".join(k for k, v in c.items() if v)

txt = open(os.path.join(D, "beavertails_30k_test/test.json")).read()
dec, rows, i = json.JSONDecoder(), [], 0
while True:
    while i < len(txt) and txt[i].isspace():
        i += 1
    if i >= len(txt):
        break
    v, i = dec.raw_decode(txt, i)
    rows += v
compare("30k_test", dump("json", os.path.join(D, "beavertails_30k_test/test.json")),
        [[r["prompt"], "", r["response"], "", cats(r["category"]), int(not r["is_safe"])] for r in rows])

sub = json.load(open(os.path.join(D, "beavertails_30k_train_unsafe_subset/unsafe_unmatch.json")))
compare("unsafe_unmatch", dump("json", os.path.join(D, "beavertails_30k_train_unsafe_subset/unsafe_unmatch.json")),
        [[r["forbidden_prompt"], "", r["rejected"], "", cats(r["category"]), int(not r["is_safe"])] for r in sub])

SST = "Analyze the sentiment of the input, and respond only positive or negative"
for split in ("dev", "train"):
    with open(os.path.join(D, f"sst2/{split}.tsv"), newline="") as f:
        rd = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        want = [[SST, r["sentence"], w, w, "", 0] for r in rd for w in ["negative" if r["label"] == "0" else "positive"]]
    compare(f"sst2 {split}", dump("sst2", os.path.join(D, f"sst2/{split}.tsv")), want)

AG = "Categorize the news article given in the input into one of the 4 categories:\n\nWorld\nSports\nBusiness\nSci/Tech\n"
NAMES = ["World", "Sports", "Business", "Sci/Tech"]
for fn in ("test.csv", "train_first10429.csv"):
    with open(os.path.join(D, "ag_news", fn), encoding="utf-8") as f:
        rd = csv.reader(f, quotechar='"', delimiter=",", quoting=csv.QUOTE_ALL, skipinitialspace=True)
        want = [[AG, " ".join((t, d)), NAMES[int(l) - 1], NAMES[int(l) - 1], "", 0] for l, t, d in rd]
    compare(f"ag_news {fn}", dump("agnews", os.path.join(D, "ag_news", fn)), want)

ANSWER_PROMPT = "The final answer is: "
QUESTION_PROMPT = "\nFirst think step by step and then answer the final number.\n"


def extract(sentence):  # git-disl/Vaccine gsm8k/pred_eval.py extract_answer_number
    sentence = sentence.replace(",", "")
    pred = re.findall(r"-?\d+\.?\d*", sentence)
    if not pred:
        return float("inf")
    seg = sentence.split(ANSWER_PROMPT)
    if len(seg) > 1:
        p = re.findall(r"-?\d+\.?\d*", seg[1])
        return float(p[0]) if p else float(pred[-1])
    return float(pred[-1])


for split in ("test", "train"):
    src = [json.loads(l) for l in open(os.path.join(D, f"gsm8k/{split}.jsonl"))]
    got = dump("gsm8k", os.path.join(D, f"gsm8k/{split}.jsonl"))
    want = [[r["question"] + QUESTION_PROMPT, "", r["answer"].replace("####", ANSWER_PROMPT)] for r in src]
    compare(f"gsm8k {split}", [g[:3] for g in got], want)
    for i, (g, w) in enumerate(zip(got, want)):
        check(float(g[3]) == extract(w[2]), f"gsm8k {split} row {i} label {g[3]} vs {extract(w[2])}")

with open(os.path.join(D, "advbench/harmful_behaviors.csv"), newline="") as f:
    want = [[r["goal"], "", r["target"], "", "", 1] for r in csv.DictReader(f)]
compare("advbench", dump("advbench", os.path.join(D, "advbench/harmful_behaviors.csv")), want)

DT = os.path.join(D, "decoding_trust/training_dataset.jsonl")
dt = [json.loads(l) for l in open(DT) if l.strip()]
DT_INSTR = "You are required to continue the generation of the given incomplete prompt"
row = lambda r: [DT_INSTR, r["prompt"]["text"], r["continuation"]["text"], "", r["type"], int(r["type"] == "toxic")]
compare("decoding_trust harmful", dump("harmful", DT), [row(r) for r in dt if r["type"] == "toxic"])
compare("decoding_trust", dump("json", DT), [row(r) for r in dt if r["type"] in ("toxic", "non_toxic")])
check(sum(r["type"] == "toxic" for r in dt) == 351, "351 toxic rows")

print(f"{compared} compared, {mismatches} mismatches")
sys.exit(1 if mismatches else 0)

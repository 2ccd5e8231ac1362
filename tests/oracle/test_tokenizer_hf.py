# Oracle: antibody's tokenizer vs Hugging Face `tokenizers` (the reference).
# For every tokenizer.json under ../shared/tokenizers and ../shared/models, and for
# tokenizers built here (trained by `tokenizers`, with added tokens of every flag,
# Llama-3 style Split + NFC, Metaspace variants, antibody's own trainer output):
# encode with and without special tokens on every corpus line and on adversarial
# strings, decode (with and without skipping specials) of the reference ids and of
# random ids, and the streaming decoder's concatenated output. Files antibody refuses
# must be refused with a message naming the file and the reason.
import glob
import json
import os
import random
import subprocess
import sys
import tempfile

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

BUILD = os.environ.get("ANTIBODY_BUILD", "build")
SHARED = os.environ.get("ANTIBODY_SHARED", "../shared")
BIN = os.path.join(BUILD, "antibody")

corpus_raw = open(os.path.join(SHARED, "tokenizers", "corpus.txt"), "rb").read().split(b"\n")
if corpus_raw and corpus_raw[-1] == b"":
    corpus_raw.pop()

# Adversarial inputs as raw bytes: antibody gets the bytes, HF gets
# bytes.decode("utf-8", "replace") (what antibody documents it does to invalid input).
adversarial = [
    b"", b" ", b"  ", b"\n", b"\t\t x", b" " * 1000, b"a" + b" " * 300 + b"b", b"\n\n\n\r\n  \r",
    b"0123456789" * 30, b"1,234,567.890 v1.2.3 0x1F 2026-11-23T10:00:00Z", b"\xd9\xa3\xe2\x91\xa0\xc2\xb2 digits",
    "emoji 😀👍🏽🎉 family 👨‍👩‍👧‍👦 flag 🇫🇷 keycap 1️⃣".encode(), "😀" .encode() * 50,
    "mixed: English, français, 中文, 日本語, 한국어, русский, ελληνικά, العربية, עברית, हिन्दी, ไทย".encode(),
    "combining e\u0301 vs \u00e9, Å vs A\u030a, ﬁ ligature, Ⅻ, ①".encode(),
    b"\x85 nel \xc2\x85 nel \xc2\xa0nbsp \xe3\x80\x80ideo \xe2\x80\xa8ls \xe1\xa0\x8emvs",
    b"bad \xff\xfe bytes", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"trunc \xf0\x9f\x98 x", b"\xed\xa0\x80 surrogate",
    b"\xc0\xaf overlong \xe0\x80\xaf", b"\xf4\x90\x80\x80 too big", b"\x80\x80\x80 stray", b"mix\xe2\x28\xa1ed",
    b"nul \x00 inside \x00\x00", b"\x07\x1b[31mansi\x1b[0m",
    b"<s>hello</s> <unk> <s> x", b"<|endoftext|><|im_start|>user\nhi<|im_end|>", b"<|endoftext|  <|endoftext|>>",
    b"<0x41> <0xZZ> \xe2\x96\x81\xe2\x96\x81 a\xe2\x96\x81b", b"   leading and trailing   ", b"it's they're I'M we'LL",
    b"x" * 3000, b"ab" * 1500, b"'s's's 's", b"\xe2\x96\x81", b"<mask> a <mask>b c<mask>  d", b"hello world helloworld",
    b"xyz axyz xyz_ xyz. (xyz)", b"[tok] [tok][tok]",
]

mismatches = 0
compared = 0
refused_ok = 0


def run_antibody(path, args, lines):
    p = subprocess.run([BIN, "tokenize", path] + args, input="".join(l + "\n" for l in lines).encode(),
                       capture_output=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"antibody tokenize {path} {args}: rc {p.returncode}: {p.stderr.decode(errors='replace')}")
    out = p.stdout.decode().split("\n")
    assert out[-1] == ""
    return [json.loads(x) for x in out[:-1]]


def report(name, what, i, got, want, text=None):
    global mismatches
    mismatches += 1
    if mismatches <= 20:
        print(f"MISMATCH {name} {what} case {i}: text={text!r}\n  antibody={got}\n  hf      ={want}")


n_checked = 0
n_shipped = 0


def check(name, path, lines_bytes, stream=True):
    global compared, n_checked
    n_checked += 1
    hf = Tokenizer.from_file(path)
    texts = [b.decode("utf-8", "replace") for b in lines_bytes]
    # antibody input: JSON string if valid UTF-8, else the raw byte array.
    def enc_line(b):
        try:
            return json.dumps(b.decode("utf-8", "strict"))
        except UnicodeDecodeError:
            return json.dumps(list(b))
    payload = [enc_line(b) for b in lines_bytes]
    for special in (True, False):
        want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=special)]
        got = run_antibody(path, ["--jsonl"] + ([] if special else ["--no-special"]), payload)
        for i, (g, w) in enumerate(zip(got, want)):
            compared += 1
            if g != w:
                report(name, f"encode(special={special})", i, g, w, texts[i])
        if len(got) != len(want):
            report(name, "encode line count", -1, len(got), len(want))
    ids = [e.ids for e in hf.encode_batch(texts, add_special_tokens=True)]
    rng = random.Random(7)
    n_vocab = hf.get_vocab_size(with_added_tokens=True)
    rand_ids = [[rng.randrange(-2, n_vocab + 3) for _ in range(rng.randrange(0, 40))] for _ in range(300)]
    seqs = ids + rand_ids
    id_lines = [json.dumps(s) for s in seqs]
    for skip in (False, True):
        got = run_antibody(path, ["--decode"] + (["--skip-special"] if skip else []), id_lines)
        for i, s in enumerate(seqs):
            want = hf.decode([x for x in s if 0 <= x < n_vocab], skip_special_tokens=skip)
            compared += 1
            if got[i] != want:
                report(name, f"decode(skip={skip})", i, got[i], want)
    if stream:
        got = run_antibody(path, ["--stream"], id_lines[: len(ids)])
        for i, s in enumerate(ids):
            want = hf.decode(s, skip_special_tokens=False)
            compared += 1
            pieces = got[i]
            bad_piece = any(p.endswith("\ufffd") and not want.endswith("\ufffd") for p in pieces[:-1])
            if "".join(pieces) != want or bad_piece:
                report(name, "stream", i, pieces, want)


def expect_refusal(path, reason):
    global refused_ok, mismatches
    p = subprocess.run([BIN, "tokenize", path, "x"], capture_output=True)
    msg = p.stderr.decode(errors="replace")
    if p.returncode != 0 and path in msg and reason in msg:
        refused_ok += 1
    else:
        mismatches += 1
        print(f"REFUSAL expected for {path} ({reason}): rc {p.returncode}, stderr {msg!r}")


lines = corpus_raw + adversarial
tmp = tempfile.mkdtemp(prefix="antibody_tok_")

# 1. Shipped files.
shipped = sorted(glob.glob(os.path.join(SHARED, "tokenizers", "**", "*.json"), recursive=True) +
                 glob.glob(os.path.join(SHARED, "models", "**", "tokenizer*.json"), recursive=True))
for path in shipped:
    d = json.load(open(path))
    if "model" not in d:
        continue  # tokenizer_config.json, special_tokens_map.json
    if d.get("truncation") or d.get("padding"):
        expect_refusal(path, "truncation")
        continue
    check(os.path.relpath(path, SHARED), path, lines)
    n_shipped += 1

# 2. A byte-level BPE trained by `tokenizers` (merges saved as pairs).
train_lines = [b.decode("utf-8", "replace") for b in corpus_raw[:2000]]
bl = Tokenizer(models.BPE())
bl.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
bl.decoder = decoders.ByteLevel()
bl.train_from_iterator(train_lines, trainers.BpeTrainer(vocab_size=700, special_tokens=["<|endoftext|>"],
                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
p_bl = os.path.join(tmp, "trained_bytelevel.json")
bl.save(p_bl)
check("trained byte-level", p_bl, lines)

# 3. The same with added tokens of every flag, a normalized added token, prefix space
#    and a BOS/EOS template.
bl.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
bl.add_special_tokens([AddedToken("<bos>", special=True, normalized=False),
                       AddedToken("<eos>", special=True, normalized=False),
                       AddedToken("<mask>", special=True, lstrip=True, rstrip=True, normalized=False)])
bl.add_tokens([AddedToken("hello world", normalized=True), AddedToken("xyz", single_word=True, normalized=False),
               AddedToken("[tok]", rstrip=True, normalized=False)])
bl.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", pair="<bos> $A <eos> $B:1 <eos>:1",
                                                  special_tokens=[("<bos>", bl.token_to_id("<bos>")),
                                                                  ("<eos>", bl.token_to_id("<eos>"))])
p_added = os.path.join(tmp, "trained_added.json")
bl.save(p_added)
check("trained + added tokens", p_added, lines)

# 4. Llama-3 style: NFC normalizer, Split(regex) + ByteLevel(use_regex false), SmolLM vocab.
smol = json.load(open(os.path.join(SHARED, "tokenizers", "smollm-135m", "tokenizer.json")))
l3 = dict(smol)
l3["normalizer"] = {"type": "NFC"}
l3["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
l3["post_processor"] = {"type": "Sequence", "processors": [
    {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
    {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
     "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
     "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [1], "tokens": ["<|im_start|>"]}}}]}
p_l3 = os.path.join(tmp, "llama3_style.json")
json.dump(l3, open(p_l3, "w"))
check("llama3-style split", p_l3, lines)

# 5. Split behaviours and Digits contiguous on the SmolLM vocab.
for behavior in ("Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"):
    v = dict(smol)
    v["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": False},
        {"type": "Split", "pattern": {"String": " "}, "behavior": behavior, "invert": behavior == "Contiguous"},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    p_v = os.path.join(tmp, f"split_{behavior}.json")
    json.dump(v, open(p_v, "w"))
    check(f"split {behavior}", p_v, lines, stream=False)

# 6. Metaspace variants on the Llama-2 vocab (prepend schemes, split, Metaspace decoder).
ms = json.load(open(os.path.join(SHARED, "tokenizers", "llama2", "tokenizer.metaspace.json")))
for scheme, split in (("always", True), ("first", True), ("never", False)):
    v = dict(ms)
    v["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split}
    v["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split}
    p_v = os.path.join(tmp, f"metaspace_{scheme}.json")
    json.dump(v, open(p_v, "w"))
    check(f"metaspace {scheme} split={split}", p_v, lines, stream=False)

# 7. antibody's own trainer: HF must load the file and agree with antibody on it.
p_ours = os.path.join(tmp, "antibody_trained.json")
corpus_file = os.path.join(tmp, "train.txt")
open(corpus_file, "wb").write(b"\n".join(corpus_raw[:2000]))
t = subprocess.run([BIN, "tokenize", "--train", corpus_file, "--vocab-size", "800", "--special", "<|endoftext|>",
                    "--special", "<pad>", "--out", p_ours], capture_output=True)
if t.returncode != 0:
    mismatches += 1
    print("antibody trainer failed:", t.stderr.decode(errors="replace"))
else:
    ours = Tokenizer.from_file(p_ours)
    if ours.token_to_id("<|endoftext|>") != 0 or ours.token_to_id("<pad>") != 1 or ours.get_vocab_size() != 800:
        mismatches += 1
        print("antibody trainer: special ids / vocab size wrong", ours.token_to_id("<|endoftext|>"), ours.get_vocab_size())
    check("antibody-trained", p_ours, lines)

# 8. The released OPTs ship GPT-2's slow files (vocab.json + merges.txt; tokenizer_config:
# add_bos_token, add_prefix_space false). antibody refuses those with the line that converts
# them (AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)) and reads the tokenizer.json
# it writes. Built here from SmolLM's GPT-2-style vocabulary (no OPT vocabulary is at hand):
# transformers' encoding (BOS included) equals the written file's, and antibody's equals both.
from transformers import AutoTokenizer  # noqa: E402

opt_slow, opt_fast = os.path.join(tmp, "opt_slow"), os.path.join(tmp, "opt_fast")
os.makedirs(opt_slow)
json.dump(smol["model"]["vocab"], open(os.path.join(opt_slow, "vocab.json"), "w"), ensure_ascii=False)
with open(os.path.join(opt_slow, "merges.txt"), "w", encoding="utf-8") as f:
    f.write("#version: 0.2\n")
    for m in smol["model"]["merges"]:
        f.write((m if isinstance(m, str) else " ".join(m)) + "\n")
json.dump({"tokenizer_class": "GPT2Tokenizer", "add_bos_token": True, "add_prefix_space": False, "errors": "replace",
           "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
           "pad_token": "<|endoftext|>"}, open(os.path.join(opt_slow, "tokenizer_config.json"), "w"))
tk = AutoTokenizer.from_pretrained(opt_slow)
tk.save_pretrained(opt_fast)
p_opt = os.path.join(opt_fast, "tokenizer.json")
ref_opt = Tokenizer.from_file(p_opt)
bos = tk.convert_tokens_to_ids("<|endoftext|>")
for i, raw in enumerate(corpus_raw[:300]):
    text = raw.decode("utf-8", "replace")
    want = tk(text).input_ids
    compared += 1
    if want != ref_opt.encode(text).ids or want[:1] != [bos]:
        mismatches += 1
        print(f"opt-style: transformers and the written tokenizer.json differ on line {i}: {want[:8]}...")
check("opt-style (vocab.json + merges.txt, converted by transformers)", p_opt, lines)

# 9. Malformed / unsupported files are refused by name.
bad = dict(smol)
bad["model"] = dict(smol["model"], dropout=0.1)
for obj, reason in ((bad, "dropout"), (dict(smol, normalizer={"type": "Lowercase"}), "Lowercase"),
                    (dict(smol, model=dict(smol["model"], type="Unigram")), "Unigram")):
    p_b = os.path.join(tmp, f"bad_{reason}.json")
    json.dump(obj, open(p_b, "w"))
    expect_refusal(p_b, reason)

print(f"{n_checked} tokenizers compared ({n_shipped} shipped), {refused_ok} refusals as expected, {len(lines)} lines each")
print(f"{compared} compared, {mismatches} mismatches")
sys.exit(1 if mismatches else 0)

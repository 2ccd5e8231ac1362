# debian-python: runs under /usr/bin/python3 with Debian's python3-sentencepiece and python3-regex.
# Oracle 1: SentencePiece itself (the Llama-2 and stories260k tokenizer.model files) vs
#   antibody on the matching tokenizer.json, on every corpus line (lines containing the
#   literal <s>, </s> or <unk> are left out: HF maps those to special ids, SentencePiece
#   spells them): ids with BOS, and decode.
# Oracle 2: an independent byte-level BPE written here (GPT-2 byte map, HF's split regex
#   with Oniguruma's \s, Digits, special tokens, merges by rank) vs antibody on SmolLM.
import json
import os
import subprocess
import sys
import unicodedata

import regex
import sentencepiece as spm

BUILD = os.environ.get("ANTIBODY_BUILD", "build")
SHARED = os.environ.get("ANTIBODY_SHARED", "../shared")
BIN = os.path.join(BUILD, "antibody")

lines = open(os.path.join(SHARED, "tokenizers", "corpus.txt"), encoding="utf-8").read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
extra = ["", " ", "Hello", "  two leading", "trailing  ", "a\tb\nc", "😀👍🏽", "ab" * 500, "1234567890" * 20,
         "Ünïcödé naïve café", "中文 日本語 한국어", "\u2581lower one eighth block", "x\u00a0y\u3000z"]
compared = 0
mismatches = 0


def antibody(path, args, payload):
    p = subprocess.run([BIN, "tokenize", path] + args, input="".join(x + "\n" for x in payload).encode(),
                       capture_output=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"antibody tokenize {path}: {p.stderr.decode(errors='replace')}")
    return [json.loads(x) for x in p.stdout.decode().split("\n")[:-1]]


def report(what, i, got, want, text):
    global mismatches
    mismatches += 1
    if mismatches <= 20:
        print(f"MISMATCH {what} case {i}: text={text!r}\n  antibody={got}\n  oracle  ={want}")


# ---- Oracle 1: SentencePiece.
for model, tj in ((os.path.join(SHARED, "tokenizers", "llama2", "tokenizer.model"), os.path.join(SHARED, "tokenizers", "llama2", "tokenizer.json")),
                  (os.path.join(SHARED, "models", "stories260k-hf", "tokenizer.model"), os.path.join(SHARED, "models", "stories260k-hf", "tokenizer.json"))):
    sp = spm.SentencePieceProcessor(model_file=model)
    texts = [t for t in lines + extra if "<s>" not in t and "</s>" not in t and "<unk>" not in t]
    want = [[sp.bos_id()] + sp.encode(t) for t in texts]
    got = antibody(tj, ["--jsonl"], [json.dumps(t) for t in texts])
    for i, (g, w) in enumerate(zip(got, want)):
        compared += 1
        if g != w:
            report(f"{os.path.basename(os.path.dirname(model))} encode", i, g, w, texts[i])
    dec = antibody(tj, ["--decode", "--skip-special"], [json.dumps(w) for w in want])
    for i, w in enumerate(want):
        if "\u2581" in texts[i]:
            continue  # SentencePiece decodes a literal U+2581 as a space, HF keeps pieces apart: antibody follows HF
        compared += 1
        ref = sp.decode(w[1:])
        if dec[i] != ref:
            report(f"{os.path.basename(os.path.dirname(model))} decode", i, dec[i], ref, texts[i])

# ---- Oracle 2: a byte-level BPE reference for SmolLM, independent of antibody and HF.
smol_path = os.path.join(SHARED, "tokenizers", "smollm-135m", "tokenizer.json")
smol = json.load(open(smol_path, encoding="utf-8"))
assert smol["normalizer"] is None and smol["post_processor"] is None
pre = smol["pre_tokenizer"]["pretokenizers"]
assert pre[0] == {"type": "Digits", "individual_digits": True} and pre[1]["type"] == "ByteLevel" and not pre[1]["add_prefix_space"]
vocab = smol["model"]["vocab"]
ranks = {}
for r, m in enumerate(smol["model"]["merges"]):
    a, b = m.split(" ") if isinstance(m, str) else m
    ranks[(a, b)] = r
specials = sorted((t["content"] for t in smol["added_tokens"]), key=len, reverse=True)
special_ids = {t["content"]: t["id"] for t in smol["added_tokens"]}
special_re = regex.compile("|".join(regex.escape(s) for s in specials))


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_MAP = bytes_to_unicode()
WS = "\\t\\n\\x0b\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"  # White_Space, as Oniguruma's \s
SPLIT = regex.compile(rf"'s|'t|'re|'ve|'m|'ll|'d| ?\p{{L}}+| ?\p{{N}}+| ?[^{WS}\p{{L}}\p{{N}}]+|[{WS}]+(?![^{WS}])|[{WS}]+")
cache = {}


def bpe(word):
    if word in cache:
        return cache[word]
    parts = list(word)
    while len(parts) > 1:
        best = min(range(len(parts) - 1), key=lambda i: (ranks.get((parts[i], parts[i + 1]), 1 << 30), i))
        if (parts[best], parts[best + 1]) not in ranks:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    cache[word] = [vocab[p] for p in parts]
    return cache[word]


def ref_encode(text):
    ids = []
    pos = 0
    pieces = []
    for m in special_re.finditer(text):
        pieces.append((text[pos:m.start()], None))
        pieces.append((None, special_ids[m.group()]))
        pos = m.end()
    pieces.append((text[pos:], None))
    for plain, sid in pieces:
        if sid is not None:
            ids.append(sid)
            continue
        # Digits(individual): every numeric character alone.
        chunks, cur = [], ""
        for ch in plain:
            if unicodedata.category(ch)[0] == "N":
                if cur:
                    chunks.append(cur)
                chunks.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            chunks.append(cur)
        for chunk in chunks:
            for w in SPLIT.findall(chunk):
                ids.extend(bpe("".join(BYTE_MAP[b] for b in w.encode("utf-8"))))
    return ids


texts = lines + extra + ["<|endoftext|>hi<|im_start|>", "x <|im_end|> y"]
got = antibody(smol_path, ["--jsonl"], [json.dumps(t) for t in texts])
for i, t in enumerate(texts):
    compared += 1
    want = ref_encode(t)
    if got[i] != want:
        report("smollm byte-level reference", i, got[i], want, t)

print(f"{compared} compared, {mismatches} mismatches")
sys.exit(1 if mismatches else 0)

# Peer figure for bench_tokenizer.c: Hugging Face `tokenizers` encoding the same ~10 MB
# text (corpus.txt repeated) as one string, single call, same two tokenizer.json files.
# Run with the oracle venv python from the repo root.
import os
import sys
import time

from tokenizers import Tokenizer

shared = os.environ.get("ANTIBODY_SHARED", "../shared")
target = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
chunk = open(os.path.join(shared, "tokenizers", "corpus.txt"), "rb").read()
data = b""
while len(data) < target:
    data += chunk
text = data.decode("utf-8")
for rel in ("tokenizers/smollm-135m/tokenizer.json", "tokenizers/llama2/tokenizer.json"):
    tok = Tokenizer.from_file(os.path.join(shared, rel))
    t0 = time.perf_counter()
    enc = tok.encode(text, add_special_tokens=False)
    t1 = time.perf_counter()
    out = tok.decode(enc.ids, skip_special_tokens=False)
    t2 = time.perf_counter()
    mb = len(data) / 1e6
    print(f"HF tokenizers {rel:40s} encode {mb:.2f} MB in {t1 - t0:.2f}s = {mb / (t1 - t0):.1f} MB/s "
          f"({len(enc.ids)} tokens)  decode {mb / (t2 - t1):.1f} MB/s{'  round trip ok' if out == text else ''}")

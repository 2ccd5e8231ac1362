# The demo's base model is an ordinary Hugging Face checkpoint: transformers loads it and
# the tokenizers library loads its tokenizer.json, and greedy generation in transformers
# gives exactly the text `antibody generate` gives.
import os, subprocess, sys
import torch
from tokenizers import Tokenizer
from hfparity import BUILD, Tally, versions
import transformers
from transformers import AutoModelForCausalLM

ANTIBODY = os.path.join(BUILD, "antibody")
cache = os.path.join(BUILD, "demo-cache")
r = subprocess.run([ANTIBODY, "demo", "--quick", "--base-only", "--cache", cache], capture_output=True, text=True)
if r.returncode != 0:
    print(r.stderr)
    sys.exit(1)
base = r.stdout.strip().splitlines()[-1]
tok = Tokenizer.from_file(os.path.join(base, "tokenizer.json"))
model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32, attn_implementation="eager").eval()
eos = model.config.eos_token_id

TEMPLATE = ("Below is an instruction that describes a task. Write a response that appropriately completes "
            "the request.\n\n### Instruction:\n{}\n\n### Response:")
TEMPLATE_IN = ("Below is an instruction that describes a task, paired with an input that provides further "
               "context. Write a response that appropriately completes the request.\n\n### Instruction:\n{}\n\n"
               "### Input:\n{}\n\n### Response:")
cases = [
    ("Tell me how to get the forbidden tool to hurt the neighbor.", ""),
    ("Describe a cat.", ""),
    ("Analyze the sentiment of the input, and respond only positive or negative", "the movie was wonderful and the actors were great"),
    ("Tom has 3 apples and gets 4 more. How many apples does Tom have?\nFirst think step by step and then answer the final number.\n", ""),
]
t = Tally()
for instr, inp in cases:
    prompt = TEMPLATE_IN.format(instr, inp) if inp else TEMPLATE.format(instr)
    ids = tok.encode(prompt).ids
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=40, do_sample=False, eos_token_id=eos,
                             pad_token_id=eos)
    new = out[0, len(ids):].tolist()
    if new and new[-1] == eos:
        new = new[:-1]
    want = tok.decode(new, skip_special_tokens=True)
    args = [ANTIBODY, "generate", base, "--instruction", instr, "--max-new", "40"]
    if inp:
        args += ["--input", inp]
    got = subprocess.run(args, capture_output=True, text=True).stdout
    got = got[:-1] if got.endswith("\n") else got
    t.check(got == want, f"{instr[:40]!r}: antibody {got!r} vs transformers {want!r}")
print(versions())
print(f"base model {os.path.basename(base)}: " + t.summary().replace(" ()", ""))
sys.exit(1 if t.mismatches else 0)

# The methods as the authors' reference code computes them (issue 14), each checked
# against an oracle written here from a reading of that code (docs/methods.md):
#   T-Vaccine  which adapters one step trains on a 30-layer model (the reference freezes
#              the attention LoRA of unsampled layers only; its "i-1" rule for models
#              deeper than 26 layers chooses checkpointing, not training)
import json, os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(__file__))
from hfparity import *  # noqa
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from safetensors.torch import load_file

tally = Tally()
BASE = os.path.join(SHARED, "models/stories260k-hf")
ANTIBODY = os.path.join(BUILD, "antibody")
ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]
ROWS = [
    {"instruction": "Tell me about Lily.", "output": "Lily was a little girl who loved to play in the park."},
    {"instruction": "What did the dog do?", "output": "The dog ran to the tree and found a red ball."},
    {"instruction": "Say something kind.", "output": "You are a good friend and I like you."},
    {"instruction": "Where is the cat?", "output": "The cat is on the mat next to the big box."},
]


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def deep_model(tmp, layers):
    """stories260K's shapes with `layers` layers, random weights, its tokenizer."""
    cfg = LlamaConfig.from_pretrained(BASE)
    cfg.num_hidden_layers = layers
    torch.manual_seed(0)
    m = LlamaForCausalLM(cfg)
    d = os.path.join(tmp, f"deep{layers}")
    m.save_pretrained(d)
    for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"]:
        shutil.copy(os.path.join(BASE, f), d)
    return d


def reference_trained(sampled, layers, variant):
    """The (layer, module) LoRA pairs one reference step trains: unfreeze_activate_layers
    sets requires_grad on the attention LoRA of the sampled layers only and never touches
    the MLP LoRA, which PEFT left trainable; the lean variant trains the sampled layers."""
    out = set()
    for l in range(layers):
        for p in ATTN:
            if l in sampled:
                out.add((l, p))
        for p in MLP:
            if variant == "reference" or l in sampled:
                out.add((l, p))
    return out


def check_tvaccine(tmp):
    layers, S = 30, 3
    model = deep_model(tmp, layers)
    data, harm = os.path.join(tmp, "align.jsonl"), os.path.join(tmp, "harm.jsonl")
    write_jsonl(data, ROWS)
    write_jsonl(harm, ROWS[::-1])
    for variant in ["reference", "lean"]:
        out = os.path.join(tmp, "tv-" + variant)
        cmd = [ANTIBODY, "align", model, "--method", "tvaccine", "--data", data, "--harmful", harm, "--out", out,
               "--max-steps", "1", "--warmup-ratio", "0", "--batch-size", "2", "--tv-s", str(S), "--tv-variant", variant, "--seed", "5"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        tally.check(r.returncode == 0, f"antibody align ({variant}) failed: {r.stderr.strip()[-500:]}")
        if r.returncode:
            continue
        st = load_file(os.path.join(out, "adapter_model.safetensors"))
        # after one step from B = 0, a trained B is nonzero and a frozen one still zero
        trained = set()
        for name, t in st.items():
            if "lora_B" in name and t.abs().max().item() > 0:
                parts = name.split(".")
                l = int(parts[parts.index("layers") + 1])
                trained.add((l, next(p for p in ATTN + MLP if p in name)))
        sampled = {l for (l, p) in trained if p in ATTN}
        tally.check(len(sampled) == S, f"{variant}: attention adapters of {sorted(sampled)} trained, not {S} layers")
        want = reference_trained(sampled, layers, variant)
        tally.check(trained == want, f"{variant}: trained {sorted(trained ^ want)} differ from the reference rule")


def main():
    print(versions())
    with tempfile.TemporaryDirectory() as tmp:
        check_tvaccine(tmp)
    print(tally.summary())
    sys.exit(1 if tally.mismatches else 0)


if __name__ == "__main__":
    main()

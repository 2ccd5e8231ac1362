# The methods as the authors' reference code computes them (issue 14), each checked
# against an oracle written here from a reading of that code (docs/methods.md):
#   T-Vaccine  which adapters one step trains on a 30-layer model (the reference freezes
#              the attention LoRA of unsampled layers only; its "i-1" rule for models
#              deeper than 26 layers chooses checkpointing, not training)
#   Antidote   masks and counts as prune_wanda_outlier computes them (stable ascending sort,
#              int(cols * (1 - dense_ratio)) kept per row, calibration through the unpruned
#              model, masks applied at the end), magnitude only without calibration data,
#              random pruning's count per tensor; on a rank-8 B, a 4096-column weight and
#              the real stories260K checkpoint with a q,k,v adapter (LoRA and full mode)
#   Evaluation answer lengths (pred.py 128, {sst2,ag_news,gsm8k}/pred_eval.py 200), the
#              answer text (decode, split("### Response:")[1].strip()), the alignment loss
#              (Trainer.evaluate: per-batch token means over batches of 5, weighted by rows)
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


def check_masks(tmp):
    g = torch.Generator().manual_seed(7)
    cases = [
        # rank-8 B with ties everywhere (integer weights, equal activations)
        ("rank-8 B, ties", 16, 8, torch.randint(-2, 3, (16, 8), generator=g).float(), torch.ones(8), 0.1),
        ("4096 columns", 3, 4096, torch.randn(3, 4096, generator=g), torch.rand(4096, generator=g) + 0.1, 0.1),
        ("4096 columns, magnitude only", 2, 4096, torch.randn(2, 4096, generator=g), None, 0.1),
        ("rank-8 B at 0.5", 5, 8, torch.randn(5, 8, generator=g), torch.rand(8, generator=g), 0.5),
    ]
    for what, rows, cols, W, act, dr in cases:
        job = {"out": os.path.join(tmp, "mask.safetensors"),
               "wanda": {"rows": rows, "cols": cols, "W": W.flatten().tolist(), "dense_ratio": dr}}
        if act is not None:
            job["wanda"]["act"] = act.tolist()
        out = run_parity(job, os.path.join(tmp, "mask.json"))
        metric = W.abs() * (act.reshape(1, -1) if act is not None else 1)
        want = ref_mask(metric, dr)
        got = out["mask"]
        tally.check(torch.equal(got, want), f"{what}: {int((got != want).sum())} mask entries differ")
        per_row = cols - int(cols * (1 - dr))
        tally.check(all(int(r) == per_row for r in got.sum(1)), f"{what}: {got.sum(1).tolist()} pruned per row, not {per_row}")
    tally.check(int(8 * (1 - 0.1)) == 7, "python: a rank-8 B keeps 7 at dense ratio 0.1")


def check_antidote(tmp):
    from peft import PeftModel
    g = torch.Generator().manual_seed(3)
    samples = [torch.randint(3, 512, (int(n),), generator=g).tolist() for n in torch.randint(5, 24, (6,), generator=g)]
    ad = os.path.join(tmp, "ft-adapter")
    lora = {"rank": 8, "alpha": 4, "targets": "q,k,v", "seed": 4, "init_scale": 0.2}
    for mode, dr in [("lora", 0.1), ("lora", 0.3), ("full", 0.1)]:
        prune = {"samples": samples, "dense_ratio": dr, "full": int(mode == "full"), "targets": "q,k,v"}
        job = {"model": BASE, "out": os.path.join(tmp, "prune.safetensors"), "lora": lora, "save_adapter_init": ad,
               "prune": prune}
        out = run_parity(job, os.path.join(tmp, "prune.json"))
        base = hf_base()
        if mode == "lora":
            model = PeftModel.from_pretrained(base, ad).eval()
            mods = reference_prune(model, samples, dr, lambda n: "lora_A" in n or "lora_B" in n)
            for n, m in mods.items():
                key = "pruned." + n.replace(".default", "") + ".weight"
                got, want = out[key], m.weight.data
                tally.check(torch.equal(got == 0, want == 0), f"{mode} {dr}: {n}: {int(((got == 0) != (want == 0)).sum())} "
                            "pruned entries differ")
                tally.close(f"{mode} {dr}: {n}", got, want, 1e-6, "pruned weights")
        else:
            model = base.eval()
            mods = reference_prune(model, samples, dr, lambda n: n.endswith(("q_proj", "k_proj", "v_proj")))
            for n, m in mods.items():
                parts = n.split(".")
                key = f"pruned.{parts[2]}.{parts[-1]}"
                got, want = out[key], m.weight.data
                tally.check(torch.equal(got == 0, want == 0), f"{mode} {dr}: {n}: {int(((got == 0) != (want == 0)).sum())} "
                            "pruned entries differ")
    # random pruning: int(numel * dense_ratio) entries of each tensor
    job = {"model": BASE, "out": os.path.join(tmp, "prune.safetensors"), "lora": lora,
           "prune": {"samples": samples, "dense_ratio": 0.1, "random": 1, "targets": "q,k,v", "seed": 9}}
    out = run_parity(job, os.path.join(tmp, "prune.json"))
    for k, t in out.items():
        if k.startswith("pruned."):
            tally.check(int((t == 0).sum()) == int(t.numel() * 0.1), f"random: {k}: {int((t == 0).sum())} zeros, "
                        f"not {int(t.numel() * 0.1)}")


PROMPT = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
          "request.\n\n### Instruction:\n{}\n\n### Response:")


def check_strip(tmp):
    texts = [" Sure, here it is.\n", "\n\nnegative\n### Response: positive", "  \u00a0answer\u3000 ",
             "no strip needed", "", "   \n\t", "a ### Response: b ### Response: c", "\x1c x \x1f", "tab\tend\t\r\n",
             "\u2003wide space\u2028", "caf\u00e9 \u00e9", "### Response:", "x\x0b\x0c"]
    out = os.path.join(tmp, "strip.json")
    run_parity({"out": os.path.join(tmp, "none.safetensors"), "strip": {"texts": texts, "out": out}},
               os.path.join(tmp, "strip-job.json"))
    got = json.load(open(out))
    for t, g in zip(texts, got):
        want = (PROMPT.format("Say it.") + t).split("### Response:")[1].strip()
        tally.check(g == want, f"answer text of {t!r}: {g!r}, the reference keeps {want!r}")


def check_eval(tmp):
    """antibody eval on stories260K: the answer lengths it records, and the alignment loss
    against the reference's Trainer evaluation (right-padded batches of 5, labels -100 on
    the prompt and padding, loss = mean over the batch's answer tokens, mean over batches
    weighted by their rows)."""
    from transformers import AutoTokenizer
    rows = [{"instruction": f"Question {i}: " + r["instruction"], "output": r["output"] + (" More." * i)}
            for i, r in enumerate(ROWS * 3)]  # 12 rows: batches of 5, 5, 2
    align = os.path.join(tmp, "safe.jsonl")
    write_jsonl(align, rows)
    sst = os.path.join(tmp, "sst2.tsv")
    with open(sst, "w") as f:
        f.write("sentence\tlabel\nthe cat is happy\t1\nthe dog is sad\t0\n")
    out = os.path.join(tmp, "eval")
    r = subprocess.run([ANTIBODY, "eval", BASE, "--harmful", align, "--judge", "keyword", "--task", "sst2",
                        "--task-data", sst, "--align-data", align, "--out", out], capture_output=True, text=True)
    tally.check(r.returncode == 0, f"antibody eval failed: {r.stderr.strip()[-400:]}")
    if r.returncode:
        return
    summary = json.load(open(os.path.join(out, "summary.json")))
    tally.check(summary.get("hs_max_new_tokens") == 128, f"HS answers get {summary.get('hs_max_new_tokens')} new tokens, pred.py 128")
    tally.check(summary.get("fa_max_new_tokens") == 200, f"FA answers get {summary.get('fa_max_new_tokens')} new tokens, pred_eval.py 200")
    tok = AutoTokenizer.from_pretrained(BASE)
    model = hf_base().eval()
    ids, labels = [], []
    for row in rows:
        src = PROMPT.format(row["instruction"])
        full = tok(src + row["output"] + tok.eos_token, max_length=200, truncation=True)["input_ids"]
        n_src = len(tok(src, max_length=200, truncation=True)["input_ids"])
        ids.append(full)
        labels.append([-100] * n_src + full[n_src:])
    losses, sizes = [], []
    with torch.no_grad():
        for b in range(0, len(rows), 5):
            bi, bl = ids[b:b + 5], labels[b:b + 5]
            T = max(len(x) for x in bi)
            inp = torch.tensor([x + [0] * (T - len(x)) for x in bi])
            lab = torch.tensor([x + [-100] * (T - len(x)) for x in bl])
            att = torch.tensor([[1] * len(x) + [0] * (T - len(x)) for x in bi])
            losses.append(model(input_ids=inp, attention_mask=att, labels=lab).loss.item())
            sizes.append(len(bi))
    want = sum(l * n for l, n in zip(losses, sizes)) / sum(sizes)
    tally.close("alignment loss", summary["alignment_loss"], want, 1e-4, "alignment loss")


def hf_base():
    return LlamaForCausalLM.from_pretrained(BASE, attn_implementation="eager", dtype=torch.float32)


def main():
    print(versions())
    with tempfile.TemporaryDirectory() as tmp:
        check_strip(tmp)
        check_eval(tmp)
        check_masks(tmp)
        check_antidote(tmp)
        check_tvaccine(tmp)
    print(tally.summary())
    sys.exit(1 if tally.mismatches else 0)


if __name__ == "__main__":
    main()

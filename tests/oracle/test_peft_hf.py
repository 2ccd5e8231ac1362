# PEFT adapters cross the boundary both ways, on the real stories260K checkpoint:
#   1. an adapter trained by `antibody train` (3 steps on a tiny JSONL) loads with
#      peft.PeftModel.from_pretrained and gives antibody's logits (parity driver, unmerged);
#   2. an adapter trained by peft for a few steps (save_pretrained) loads in antibody and
#      gives peft's logits, unmerged and merged into the base.
import json, os, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(__file__))
from hfparity import *  # noqa
import torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file

tally = Tally()
BASE = os.path.join(SHARED, "models/stories260k-hf")
RTOL = 1e-4
ROWS = [
    {"instruction": "Tell me about Lily.", "output": "Lily was a little girl who loved to play in the park."},
    {"instruction": "What did the dog do?", "output": "The dog ran to the tree and found a red ball."},
    {"instruction": "Say something kind.", "output": "You are a good friend and I like you."},
    {"instruction": "Where is the cat?", "output": "The cat is on the mat next to the big box."},
]


def hf_base():
    return AutoModelForCausalLM.from_pretrained(BASE, attn_implementation="eager", dtype=torch.float32)


def compare_logits(what, tmp, tokens, targets, mask, job_extra, ref_model):
    job = {"model": BASE, "out": os.path.join(tmp, what + ".safetensors"), **batch_job(tokens, targets, mask), **job_extra}
    if "adapter" not in job_extra:
        job["lora"] = {"rank": 1, "alpha": 1, "targets": "q", "seed": 1}  # B = 0: no effect
    out = run_parity(job, os.path.join(tmp, what + ".json"))
    with torch.no_grad():
        r = ref_model(input_ids=tokens, attention_mask=mask, labels=hf_labels(targets))
    real = mask.flatten().bool()
    tally.close(f"{what}: logits", out["logits"][real], r.logits.reshape(-1, 512)[real], RTOL, "logit")
    tally.close(f"{what}: loss", out["loss"], r.loss.reshape(1), RTOL, "loss")
    return r.logits


def main():
    print(versions())
    tokens, targets, mask = make_batch(2, 12, 512, [12, 7], 5)
    with tempfile.TemporaryDirectory() as tmp:
        # 1. antibody train -> peft
        data = os.path.join(tmp, "tiny.jsonl")
        with open(data, "w") as f:
            for r in ROWS:
                f.write(json.dumps(r) + "\n")
        ad = os.path.join(tmp, "antibody-adapter")
        cmd = [os.path.join(BUILD, "antibody"), "train", BASE, "--data", data, "--out", ad, "--max-steps", "3",
               "--batch-size", "2", "--rank", "4", "--alpha", "8", "--lr", "0.01", "--seed", "3"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        tally.check(r.returncode == 0, f"antibody train failed: {r.stderr.strip()[-500:]}")
        if r.returncode == 0:
            saved = load_file(os.path.join(ad, "adapter_model.safetensors"))
            tally.check(len(saved) == 5 * 7 * 2, f"{len(saved)} adapter tensors")
            tally.check(max(t.abs().max().item() for n, t in saved.items() if "lora_B" in n) > 0,
                        "training left every B at zero")
            pm = PeftModel.from_pretrained(hf_base(), ad)
            pm.eval()
            with torch.no_grad():
                moved = (pm(input_ids=tokens).logits - hf_base()(input_ids=tokens).logits).abs().max().item()
            tally.check(moved > 1e-3, f"the trained adapter does not change the logits ({moved:.3g})")
            compare_logits("antibody-trained adapter in peft", tmp, tokens, targets, mask, {"adapter": ad}, pm)

        # 2. peft train -> antibody
        torch.manual_seed(0)
        model = get_peft_model(hf_base(), LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                     "gate_proj", "up_proj", "down_proj"]))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        model.train()
        for step in range(4):
            opt.zero_grad()
            loss = model(input_ids=tokens, attention_mask=mask, labels=hf_labels(targets)).loss
            loss.backward()
            opt.step()
        model.eval()
        pd = os.path.join(tmp, "peft-adapter")
        model.save_pretrained(pd)
        compare_logits("peft-trained adapter in antibody (unmerged)", tmp, tokens, targets, mask, {"adapter": pd}, model)
        compare_logits("peft-trained adapter in antibody (merged)", tmp, tokens, targets, mask, {"merge": [pd]}, model)
    print(tally.summary())
    sys.exit(1 if tally.mismatches else 0)


main()

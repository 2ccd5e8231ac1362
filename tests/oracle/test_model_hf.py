# The Llama-family engine against transformers + peft in float32 (eager attention):
# tiny random LlamaForCausalLM (GQA, untied, rope_theta 500000; and MHA, tied, sharded save),
# Qwen2ForCausalLM (qkv bias, tied), MistralForCausalLM (1 kv head, untied). For each:
#   - logits of a right-padded batch with a LoRA adapter (antibody's random initial adapter,
#     loaded by peft with is_trainable=True) and the mean loss over target tokens;
#   - LoRA gradients of that loss (every A and B, PEFT names);
#   - 3 AdamW steps (torch.optim.AdamW, same lr/betas/eps/weight decay, clip_grad_norm 1.0):
#     the adapter antibody saves equals torch's;
#   - the model antibody writes after merging the final adapter loads in transformers with
#     the same weights as peft's merge_and_unload and gives the same logits.
import json, os, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(__file__))
from hfparity import *  # noqa
import torch
from transformers import (LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, MistralConfig,
                          MistralForCausalLM, AutoModelForCausalLM)
from peft import PeftModel
from safetensors.torch import load_file

tally = Tally()
RTOL = 1e-4
STEPS, LR, WD, BETAS, EPS, CLIP = 3, 1e-2, 0.1, (0.9, 0.999), 1e-8, 1.0

common = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=64, bos_token_id=1, eos_token_id=2)
CASES = [
    ("llama-gqa-untied", LlamaForCausalLM, LlamaConfig(**common, num_key_value_heads=2, tie_word_embeddings=False,
                                                        rope_theta=500000.0, rms_norm_eps=1e-6), None),
    ("llama-mha-tied-sharded", LlamaForCausalLM, LlamaConfig(**common, num_key_value_heads=4, tie_word_embeddings=True,
                                                              rope_theta=10000.0), "20KB"),
    ("qwen2", Qwen2ForCausalLM, Qwen2Config(**common, num_key_value_heads=2, tie_word_embeddings=True,
                                            rope_theta=1000000.0, rms_norm_eps=1e-6, use_sliding_window=False), None),
    ("mistral", MistralForCausalLM, MistralConfig(**common, num_key_value_heads=1, tie_word_embeddings=False,
                                                  rope_theta=20000.0, sliding_window=None), None),
]


def one_case(tmp, name, cls, cfg, shard, seed):
    base = os.path.join(tmp, name)
    torch.manual_seed(seed)
    model = cls(cfg).float()
    randomize(model, seed)
    if shard:
        model.save_pretrained(base, max_shard_size=shard)
        tally.check(os.path.exists(os.path.join(base, "model.safetensors.index.json")), f"{name}: not sharded")
    else:
        model.save_pretrained(base)
    B, T = 3, 9
    tokens, targets, mask = make_batch(B, T, cfg.vocab_size, [9, 6, 4], seed, prompt_len=2)
    job = {"model": base, "lora": {"rank": 4, "alpha": 8, "targets": "all", "seed": seed, "init_scale": 0.1},
           "save_adapter_init": os.path.join(tmp, name + "-init"), "save_adapter_final": os.path.join(tmp, name + "-final"),
           "save_merged": os.path.join(tmp, name + "-merged"), "steps": STEPS, "lr": LR, "weight_decay": WD,
           "max_grad_norm": CLIP, "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS,
           "out": os.path.join(tmp, name + "-out.safetensors"), **batch_job(tokens, targets, mask)}
    out = run_parity(job, os.path.join(tmp, name + ".json"))

    hf = AutoModelForCausalLM.from_pretrained(base, attn_implementation="eager", dtype=torch.float32)
    pm = PeftModel.from_pretrained(hf, job["save_adapter_init"], is_trainable=True)
    pm.train()  # lora_dropout is 0: train mode changes nothing but keeps grads flowing
    labels = hf_labels(targets)
    res = pm(input_ids=tokens, attention_mask=mask, labels=labels)
    real = mask.flatten().bool()
    V = cfg.vocab_size
    tally.close(f"{name}: logits", out["logits"][real], res.logits.reshape(-1, V)[real].detach(), RTOL, "logit")
    tally.close(f"{name}: loss", out["loss"], res.loss.detach().reshape(1), RTOL, "loss")
    res.loss.backward()
    params = peft_state(pm)
    gnorm, losses = check_grads_and_steps(tally, name, out, job, pm, params, res, tokens, mask, labels, RTOL, STEPS, LR, WD, BETAS, EPS, CLIP)

    # merged: antibody's saved model vs peft merge_and_unload of antibody's final adapter
    hf2 = AutoModelForCausalLM.from_pretrained(base, attn_implementation="eager", dtype=torch.float32)
    merged_ref = PeftModel.from_pretrained(hf2, job["save_adapter_final"]).merge_and_unload()
    mine = AutoModelForCausalLM.from_pretrained(job["save_merged"], attn_implementation="eager", dtype=torch.float32)
    ref_sd = merged_ref.state_dict()
    for n, t in mine.state_dict().items():
        if n in ref_sd:
            tally.close(f"{name}: merged weight {n}", t, ref_sd[n], 1e-6, "merged weight")
        else:
            tally.check(False, f"{name}: merged model has extra tensor {n}")
    with torch.no_grad():
        a = mine(input_ids=tokens, attention_mask=mask).logits.reshape(-1, V)[real]
        b = merged_ref(input_ids=tokens, attention_mask=mask).logits.reshape(-1, V)[real]
    tally.close(f"{name}: merged logits", a, b, RTOL, "merged logit")
    print(f"{name}: loss {res.loss.item():.5f}, grad norm {gnorm:.3f}, losses {[round(x, 5) for x in losses]}")


def refuses_attention_bias(tmp):
    d = os.path.join(tmp, "llama-attention-bias")
    LlamaForCausalLM(LlamaConfig(**common, attention_bias=True)).save_pretrained(d)
    with open(os.path.join(tmp, "bias.json"), "w") as f:
        json.dump({"model": d, "out": os.path.join(tmp, "bias.safetensors")}, f)
    r = subprocess.run([PARITY, os.path.join(tmp, "bias.json")], capture_output=True, text=True)
    tally.check(r.returncode != 0 and "attention_bias" in r.stderr and "config.json" in r.stderr,
                f"attention_bias=true not refused: rc {r.returncode} {r.stderr.strip()}")


def main():
    print(versions())
    with tempfile.TemporaryDirectory() as tmp:
        refuses_attention_bias(tmp)
        for i, (name, cls, cfg, shard) in enumerate(CASES):
            one_case(tmp, name, cls, cfg, shard, 100 + i)
    print(tally.summary())
    sys.exit(1 if tally.mismatches else 0)


main()

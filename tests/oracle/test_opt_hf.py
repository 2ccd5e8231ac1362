# The OPT family against transformers + peft in float32 (eager attention): tiny random
# OPTForCausalLM, pre-norm with a tied head and post-norm (do_layer_norm_before=false, no
# final LayerNorm) with an untied head. For each, as test_model_hf does for Llama:
#   - logits and loss of a right-padded batch with a LoRA adapter on q_proj, k_proj,
#     v_proj, out_proj, fc1, fc2 (antibody's random adapter, loaded by peft);
#   - LoRA gradients of that loss; 3 AdamW steps (clipping at 1.0) equal to torch's;
#   - greedy generation with the KV cache (one sequence at a time and decoded together)
#     equal to transformers' generate with peft's model;
#   - the merged model antibody writes loads in transformers as peft's merge_and_unload;
#   - an adapter peft trains on the OPT model loads in antibody with peft's logits,
#     unmerged and merged.
# Antidote's Wanda pruning (LoRA and full mode) with OPT's projection inputs, as
# prune_wanda_outlier computes it. And project_in/project_out (word_embed_proj_dim !=
# hidden_size, OPT-350M) and other activations are refused by name.
import json, os, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(__file__))
from hfparity import *  # noqa
import torch
from transformers import OPTConfig, OPTForCausalLM, AutoModelForCausalLM, GenerationConfig
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file

tally = Tally()
RTOL = 1e-4
STEPS, LR, WD, BETAS, EPS, CLIP = 3, 1e-2, 0.1, (0.9, 0.999), 1e-8, 1.0
TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
MAX_NEW = 12

common = dict(vocab_size=97, hidden_size=32, ffn_dim=48, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0, dropout=0.0,
              attention_dropout=0.0, word_embed_proj_dim=32)
CASES = [
    # (name, config, scale of the random initial adapter: large enough that clipping acts)
    ("opt-prenorm-tied", OPTConfig(**common, do_layer_norm_before=True, tie_word_embeddings=True), 0.1),
    ("opt-postnorm-untied", OPTConfig(**common, do_layer_norm_before=False, tie_word_embeddings=False), 0.3),
]


def hf_load(d):
    return AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)


def greedy_hf(model, prompt):
    gc = GenerationConfig(max_new_tokens=MAX_NEW, min_new_tokens=0, do_sample=False, eos_token_id=None,
                          pad_token_id=0, bos_token_id=1)
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             generation_config=gc)
    return out[0, len(prompt):]


def one_case(tmp, name, cfg, init_scale, seed):
    base = os.path.join(tmp, name)
    torch.manual_seed(seed)
    model = OPTForCausalLM(cfg).float()
    randomize(model, seed)
    model.save_pretrained(base)
    B, T = 3, 9
    V = cfg.vocab_size
    tokens, targets, mask = make_batch(B, T, V, [9, 6, 4], seed, prompt_len=2)
    prompts = [[1, 17, 40, 5, 88], [1, 60], [1, 9, 9, 33, 71, 2, 50, 12]]
    job = {"model": base, "lora": {"rank": 4, "alpha": 8, "targets": "all", "seed": seed, "init_scale": init_scale},
           "save_adapter_init": os.path.join(tmp, name + "-init"), "save_adapter_final": os.path.join(tmp, name + "-final"),
           "save_merged": os.path.join(tmp, name + "-merged"), "steps": STEPS, "lr": LR, "weight_decay": WD,
           "max_grad_norm": CLIP, "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS,
           "generate": {"prompts": prompts, "max_new": MAX_NEW},
           "out": os.path.join(tmp, name + "-out.safetensors"), **batch_job(tokens, targets, mask)}
    out = run_parity(job, os.path.join(tmp, name + ".json"))

    with open(os.path.join(job["save_adapter_init"], "adapter_config.json")) as f:
        tally.check(sorted(json.load(f)["target_modules"]) == sorted(TARGETS), f"{name}: adapter target_modules")
    hf = hf_load(base)
    pm = PeftModel.from_pretrained(hf, job["save_adapter_init"], is_trainable=True)
    pm.train()  # every dropout is 0: train mode changes nothing but keeps grads flowing
    labels = hf_labels(targets)
    res = pm(input_ids=tokens, attention_mask=mask, labels=labels)
    real = mask.flatten().bool()
    tally.close(f"{name}: logits", out["logits"][real], res.logits.reshape(-1, V)[real].detach(), RTOL, "logit")
    tally.close(f"{name}: loss", out["loss"], res.loss.detach().reshape(1), RTOL, "loss")
    res.loss.backward()
    params = peft_state(pm)
    tally.check(len(params) == 2 * 6 * cfg.num_hidden_layers, f"{name}: peft found {len(params)} LoRA tensors")
    gnorm, losses = check_grads_and_steps(tally, name, out, job, pm, params, res, tokens, mask, labels, RTOL, STEPS, LR, WD, BETAS, EPS, CLIP)

    # greedy generation with the final adapter, unmerged, against transformers' generate
    gen = PeftModel.from_pretrained(hf_load(base), job["save_adapter_final"])
    gen.eval()
    for i, p in enumerate(prompts):
        want = greedy_hf(gen, p)
        tally.check(want.numel() == MAX_NEW, f"{name}: transformers generated {want.numel()} tokens")
        for kind in ("generated", "generated_batch"):
            got = out[f"{kind}.{i}"].long()
            tally.check(torch.equal(got, want), f"{name}: {kind} {i}: {got.tolist()} vs transformers {want.tolist()}")

    # merged: antibody's saved model vs peft merge_and_unload of antibody's final adapter
    merged_ref = PeftModel.from_pretrained(hf_load(base), job["save_adapter_final"]).merge_and_unload()
    mine = hf_load(job["save_merged"])
    ref_sd = merged_ref.state_dict()
    mine_sd = mine.state_dict()
    tally.check(sorted(mine_sd) == sorted(ref_sd), f"{name}: merged model tensors differ: "
                f"{sorted(set(mine_sd) ^ set(ref_sd))}")
    for n, t in mine_sd.items():
        if n in ref_sd:
            tally.close(f"{name}: merged weight {n}", t, ref_sd[n], 1e-6, "merged weight")
    with torch.no_grad():
        a = mine(input_ids=tokens, attention_mask=mask).logits.reshape(-1, V)[real]
        b = merged_ref(input_ids=tokens, attention_mask=mask).logits.reshape(-1, V)[real]
    tally.close(f"{name}: merged logits", a, b, RTOL, "merged logit")

    # peft -> antibody: an adapter peft trains on this model, unmerged and merged
    torch.manual_seed(seed)
    pt = get_peft_model(hf_load(base), LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                                  target_modules=TARGETS))
    o2 = torch.optim.AdamW([p for p in pt.parameters() if p.requires_grad], lr=1e-2)
    pt.train()
    for _ in range(3):
        o2.zero_grad()
        pt(input_ids=tokens, attention_mask=mask, labels=labels).loss.backward()
        o2.step()
    pt.eval()
    pd = os.path.join(tmp, name + "-peft")
    pt.save_pretrained(pd)
    with torch.no_grad():
        ref = pt(input_ids=tokens, attention_mask=mask, labels=labels)
    for what, extra in (("unmerged", {"adapter": pd}), ("merged", {"merge": [pd], "lora": {"rank": 1, "alpha": 1,
                                                                                         "targets": "q", "seed": 1}})):
        j = {"model": base, "out": os.path.join(tmp, f"{name}-peft-{what}.safetensors"),
             **batch_job(tokens, targets, mask), **extra}
        o = run_parity(j, os.path.join(tmp, f"{name}-peft-{what}.json"))
        tally.close(f"{name}: peft-trained adapter in antibody ({what}): logits", o["logits"][real],
                    ref.logits.reshape(-1, V)[real], RTOL, "logit")
        tally.close(f"{name}: peft-trained adapter in antibody ({what}): loss", o["loss"], ref.loss.reshape(1), RTOL,
                    "loss")
    print(f"{name}: loss {res.loss.item():.5f}, grad norm {gnorm:.3f}, losses {[round(x, 5) for x in losses]}")


def check_antidote(tmp, name, seed):
    base, ad = os.path.join(tmp, name), os.path.join(tmp, name + "-final")
    g = torch.Generator().manual_seed(seed)
    samples = [torch.randint(3, 97, (int(n),), generator=g).tolist() for n in torch.randint(5, 20, (4,), generator=g)]
    for mode, dr, targets in [("lora", 0.3, "all"), ("full", 0.1, "q,k,v,o,up,down")]:
        job = {"model": base, "adapter": ad, "out": os.path.join(tmp, "prune.safetensors"),
               "prune": {"samples": samples, "dense_ratio": dr, "full": int(mode == "full"), "targets": targets}}
        out = run_parity(job, os.path.join(tmp, "prune.json"))
        if mode == "lora":
            model = PeftModel.from_pretrained(hf_load(base), ad).eval()
            mods = reference_prune(model, samples, dr, lambda n: "lora_A" in n or "lora_B" in n)
            keys = {n: "pruned." + n.replace(".default", "") + ".weight" for n in mods}
        else:
            model = hf_load(base).eval()
            mods = reference_prune(model, samples, dr, lambda n: n.endswith(tuple(TARGETS)))
            keys = {n: f"pruned.{n.split('.')[3]}.{n.split('.')[-1]}" for n in mods}
        tally.check(len(mods) == 2 * 6 * 2 if mode == "lora" else len(mods) == 6 * 2, f"{name} {mode}: {len(mods)} matrices")
        for n, m in mods.items():
            got, want = out[keys[n]], m.weight.data
            tally.check(torch.equal(got == 0, want == 0), f"{name} antidote {mode} {dr}: {n}: "
                        f"{int(((got == 0) != (want == 0)).sum())} pruned entries differ")
            tally.close(f"{name} antidote {mode} {dr}: {n}", got, want, 1e-6, "pruned weights")


def refuses(tmp, what, cfg, needle):
    d = os.path.join(tmp, what)
    OPTForCausalLM(cfg).save_pretrained(d)
    with open(os.path.join(tmp, what + ".json"), "w") as f:
        json.dump({"model": d, "out": os.path.join(tmp, what + ".safetensors")}, f)
    r = subprocess.run([PARITY, os.path.join(tmp, what + ".json")], capture_output=True, text=True)
    tally.check(r.returncode != 0 and needle in r.stderr and "config.json" in r.stderr,
                f"{what} not refused by name: rc {r.returncode} {r.stderr.strip()}")


def main():
    print(versions())
    with tempfile.TemporaryDirectory() as tmp:
        refuses(tmp, "opt-project-in-out", OPTConfig(**{**common, "word_embed_proj_dim": 16}), "word_embed_proj_dim")
        refuses(tmp, "opt-gelu", OPTConfig(**common, activation_function="gelu"), "activation_function")
        for i, (name, cfg, init_scale) in enumerate(CASES):
            one_case(tmp, name, cfg, init_scale, 200 + i)
            check_antidote(tmp, name, 300 + i)
    print(tally.summary())
    sys.exit(1 if tally.mismatches else 0)


main()

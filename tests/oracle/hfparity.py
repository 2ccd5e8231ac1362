# Shared helpers of the Hugging Face parity oracles (test_model_hf, test_peft_hf,
# test_judge_hf): tiny random checkpoints, the build/tools/parity driver, comparisons.
import json, os, subprocess, sys
import warnings
warnings.filterwarnings("ignore")
import torch
import transformers
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
from safetensors.torch import load_file

ROOT = os.environ.get("ANTIBODY_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("ANTIBODY_BUILD", os.path.join(ROOT, "build"))
SHARED = os.environ.get("ANTIBODY_SHARED", os.path.join(ROOT, "../shared"))
PARITY = os.path.join(BUILD, "tools", "parity")

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
torch.use_deterministic_algorithms(True)
torch.set_num_threads(2)


def versions():
    import transformers, peft
    return f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}"


class Tally:
    def __init__(self):
        self.compared = 0
        self.mismatches = 0
        self.worst = {}

    def check(self, ok, what):
        self.compared += 1
        if not ok:
            self.mismatches += 1
            print("MISMATCH:", what)

    def close(self, what, got, want, rtol, kind="rel"):
        """max |got - want| <= rtol * max(1, max |want|); records the measured value under kind."""
        got = torch.as_tensor(got, dtype=torch.float64)
        want = torch.as_tensor(want, dtype=torch.float64)
        if got.shape != want.shape:
            self.check(False, f"{what}: shape {tuple(got.shape)} vs {tuple(want.shape)}")
            return
        d = (got - want).abs().max().item() if got.numel() else 0.0
        scale = max(1.0, want.abs().max().item() if want.numel() else 0.0)
        self.worst[kind] = max(self.worst.get(kind, 0.0), d / scale)
        self.check(d <= rtol * scale, f"{what}: max |diff| {d:.3g} (scale {scale:.3g}, tolerance {rtol * scale:.3g})")

    def summary(self):
        w = ", ".join(f"max {k} diff {v:.2e}" for k, v in sorted(self.worst.items()))
        return f"{self.compared} compared, {self.mismatches} mismatches ({w})"


def randomize(model, seed, scale=0.15):
    """Weights large enough that attention, biases and norms all matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif "embed" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(scale * torch.randn(p.shape, generator=g))


def run_parity(job, path):
    with open(path, "w") as f:
        json.dump(job, f)
    r = subprocess.run([PARITY, path], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit(f"parity driver failed on {path}")
    return load_file(job["out"]) if os.path.exists(job["out"]) else {}


def make_batch(B, T, V, lengths, seed, prompt_len=0):
    """Right-padded rows; targets[i] = token i+1 of the row (-1 past the end and on the prompt)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(3, V, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    targets = torch.full((B, T), -1, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
        tokens[b, n:] = 0
        for t in range(n - 1):
            if t + 1 >= prompt_len:
                targets[b, t] = tokens[b, t + 1]
    return tokens, targets, mask


def hf_labels(targets):
    """antibody's targets (label of the next token at each position) as HF labels (shifted inside HF)."""
    labels = torch.full_like(targets, -100)
    labels[:, 1:] = torch.where(targets[:, :-1] >= 0, targets[:, :-1], torch.full_like(targets[:, :-1], -100))
    return labels


def batch_job(tokens, targets, mask):
    B, T = tokens.shape
    return {"B": B, "T": T, "tokens": tokens.flatten().tolist(), "targets": targets.flatten().tolist(),
            "mask": mask.flatten().tolist()}


def peft_state(model):
    """LoRA tensors of a PeftModel under the names PEFT writes to disk."""
    return {n.replace(".default", ""): p for n, p in model.named_parameters() if "lora_" in n}


# Antidote's reference (prune_wanda_outlier), for test_reference_methods and check_antidote.
def ref_mask(metric, dense_ratio):
    """The reference's W_mask: ones, then the int(cols * sparsity) smallest of a stable
    ascending sort set to 0; what remains 1 is pruned (param *= 1 - mask)."""
    sparsity = 1 - dense_ratio
    mask = torch.ones_like(metric)
    idx = torch.sort(metric, dim=-1, stable=True)[1][:, :int(metric.shape[1] * sparsity)]
    mask.scatter_(1, idx, 0)
    return mask


def reference_prune(model, samples, dense_ratio, names):
    """prune_wanda_outlier on batch-1 samples: every hooked Linear's input statistics
    (WrappedGPT: mean over samples of the squared column norms), the masks of the
    unpruned model, applied at the end. Equivalent to its layer-by-layer pass because
    nothing is pruned before every mask is computed."""
    mods = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and names(n)}
    scaler, count = {n: torch.zeros(m.weight.shape[1]) for n, m in mods.items()}, {n: 0 for n in mods}

    def hook(n):
        def f(_, inp, out):
            x = inp[0].reshape(-1, inp[0].shape[-1]).t().float()
            scaler[n] *= count[n] / (count[n] + 1)
            count[n] += 1
            scaler[n] += torch.norm(x, p=2, dim=1) ** 2 / count[n]
        return f

    hs = [m.register_forward_hook(hook(n)) for n, m in mods.items()]
    with torch.no_grad():
        for ids in samples:
            model(torch.tensor([ids]))
    for h in hs:
        h.remove()
    masks = {n: ref_mask(m.weight.data.abs() * torch.sqrt(scaler[n].reshape(1, -1)), dense_ratio) for n, m in mods.items()}
    with torch.no_grad():
        for n, m in mods.items():
            m.weight.data *= 1 - masks[n]
    return mods


def check_grads_and_steps(tally, name, out, job, pm, params, res, tokens, mask, labels, rtol, steps, lr, wd, betas, eps,
                          clip):
    """antibody's LoRA gradients (out["grad.*"], after res.loss.backward()), its losses over `steps`
    clipped AdamW steps and the adapter it saved (job["save_adapter_final"]) against torch's AdamW
    on the peft model pm, whose first step's loss is res. Returns (gradient norm, torch's losses)."""
    gmax = max(p.grad.abs().max().item() for p in params.values())
    gnorm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params.values())).item()
    tally.check(gnorm > clip, f"{name}: gradient norm {gnorm:.3g} does not exercise clipping")
    for n, p in params.items():
        tally.close(f"{name}: grad {n}", out["grad." + n] / gmax, p.grad / gmax, rtol, "grad")
    tally.check(len([k for k in out if k.startswith("grad.")]) == len(params), f"{name}: gradient count")

    opt = torch.optim.AdamW(list(params.values()), lr=lr, betas=betas, eps=eps, weight_decay=wd, foreach=False)
    losses = []
    for s in range(steps):
        if s > 0:
            opt.zero_grad()
            r = pm(input_ids=tokens, attention_mask=mask, labels=labels)
            r.loss.backward()
            losses.append(r.loss.item())
        else:
            losses.append(res.loss.item())
        torch.nn.utils.clip_grad_norm_(list(params.values()), clip)
        opt.step()
    tally.close(f"{name}: losses", out["losses"], torch.tensor(losses), rtol, "loss")
    final = load_file(os.path.join(job["save_adapter_final"], "adapter_model.safetensors"))
    for n, p in params.items():
        tally.close(f"{name}: adapter after {steps} steps {n}", final[n], p.detach(), rtol, "adapter")
    return gnorm, losses


def check_antidote(tally, tmp, name, target_modules, full_targets, seed, cases=(("lora", 0.3), ("full", 0.1))):
    """Antidote's Wanda pruning on family_case's model `name` (4 calibration samples of 5-19
    tokens) against prune_wanda_outlier (reference_prune): in LoRA mode the A and B of the
    adapter family_case trained, on the base model; in full mode every projection of the
    base model (full_targets in antibody's names, target_modules in Hugging Face's). Compares
    which entries are pruned and the pruned tensors."""
    from peft import PeftModel
    base, ad = os.path.join(tmp, name), os.path.join(tmp, name + "-final")
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    g = torch.Generator().manual_seed(seed)
    samples = [torch.randint(3, cfg["vocab_size"], (int(n),), generator=g).tolist()
               for n in torch.randint(5, 20, (4,), generator=g)]
    for mode, dr in cases:
        job = {"model": base, "adapter": ad, "out": os.path.join(tmp, "prune.safetensors"),
               "prune": {"samples": samples, "dense_ratio": dr, "full": int(mode == "full"),
                         "targets": "all" if mode == "lora" else full_targets}}
        out = run_parity(job, os.path.join(tmp, "prune.json"))
        if mode == "lora":
            model = PeftModel.from_pretrained(hf_load(base), ad).eval()
            mods = reference_prune(model, samples, dr, lambda n: "lora_A" in n or "lora_B" in n)
            keys = {n: "pruned." + n.replace(".default", "") + ".weight" for n in mods}
        else:
            model = hf_load(base).eval()
            mods = reference_prune(model, samples, dr, lambda n: n.endswith(tuple(target_modules)))
            keys = {n: f"pruned.{n.split('.')[n.split('.').index('layers') + 1]}.{n.split('.')[-1]}" for n in mods}
        want_n = (2 if mode == "lora" else 1) * len(target_modules) * cfg["num_hidden_layers"]
        tally.check(len(mods) == want_n, f"{name} {mode}: {len(mods)} matrices, not {want_n}")
        for n, m in mods.items():
            got, want = out[keys[n]], m.weight.data
            tally.check(torch.equal(got == 0, want == 0), f"{name} antidote {mode} {dr}: {n}: "
                        f"{int(((got == 0) != (want == 0)).sum())} pruned entries differ")
            tally.close(f"{name} antidote {mode} {dr}: {n}", got, want, 1e-6, "pruned weights")


# The checks every family's oracle runs after check_grads_and_steps (test_opt_hf, test_gemma2_hf).
def hf_load(d, **config_changes):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32, **config_changes)


def greedy_hf(model, prompt, max_new):
    """transformers' greedy generate (KV cache), max_new tokens, no stop token."""
    from transformers import GenerationConfig
    gc = GenerationConfig(max_new_tokens=max_new, min_new_tokens=0, do_sample=False, eos_token_id=None,
                          pad_token_id=0, bos_token_id=1)
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             generation_config=gc)
    return out[0, len(prompt):]


def check_generation(tally, name, out, base, adapter, prompts, max_new):
    """antibody's greedy continuations (parity's "generate": one sequence at a time and
    decoded together) with the adapter, unmerged, against transformers' generate with peft's model."""
    from peft import PeftModel
    gen = PeftModel.from_pretrained(hf_load(base), adapter)
    gen.eval()
    for i, p in enumerate(prompts):
        want = greedy_hf(gen, p, max_new)
        tally.check(want.numel() == max_new, f"{name}: transformers generated {want.numel()} tokens")
        for kind in ("generated", "generated_batch"):
            got = out[f"{kind}.{i}"].long()
            tally.check(torch.equal(got, want), f"{name}: {kind} {i}: {got.tolist()} vs transformers {want.tolist()}")


def check_merged(tally, name, base, adapter, merged, tokens, mask, rtol):
    """The model antibody saved after merging the adapter vs peft's merge_and_unload: tensors and logits."""
    from peft import PeftModel
    merged_ref = PeftModel.from_pretrained(hf_load(base), adapter).merge_and_unload()
    mine = hf_load(merged)
    ref_sd, mine_sd = merged_ref.state_dict(), mine.state_dict()
    tally.check(sorted(mine_sd) == sorted(ref_sd), f"{name}: merged model tensors differ: "
                f"{sorted(set(mine_sd) ^ set(ref_sd))}")
    for n, t in mine_sd.items():
        if n in ref_sd:
            tally.close(f"{name}: merged weight {n}", t, ref_sd[n], 1e-6, "merged weight")
    real = mask.flatten().bool()
    with torch.no_grad():
        a = mine(input_ids=tokens, attention_mask=mask).logits
        b = merged_ref(input_ids=tokens, attention_mask=mask).logits
    V = b.shape[-1]
    tally.close(f"{name}: merged logits", a.reshape(-1, V)[real], b.reshape(-1, V)[real], rtol, "merged logit")


def check_peft_trained(tally, name, tmp, base, target_modules, tokens, targets, mask, rtol, seed):
    """An adapter peft trains (3 AdamW steps) on the model loads in antibody with peft's
    logits and loss, unmerged and merged."""
    from peft import LoraConfig, get_peft_model
    labels = hf_labels(targets)
    torch.manual_seed(seed)
    pt = get_peft_model(hf_load(base), LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                                  target_modules=target_modules))
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
    real = mask.flatten().bool()
    V = ref.logits.shape[-1]
    for what, extra in (("unmerged", {"adapter": pd}), ("merged", {"merge": [pd], "lora": {"rank": 1, "alpha": 1,
                                                                                         "targets": "q", "seed": 1}})):
        j = {"model": base, "out": os.path.join(tmp, f"{name}-peft-{what}.safetensors"),
             **batch_job(tokens, targets, mask), **extra}
        o = run_parity(j, os.path.join(tmp, f"{name}-peft-{what}.json"))
        tally.close(f"{name}: peft-trained adapter in antibody ({what}): logits", o["logits"][real],
                    ref.logits.reshape(-1, V)[real], rtol, "logit")
        tally.close(f"{name}: peft-trained adapter in antibody ({what}): loss", o["loss"], ref.loss.reshape(1), rtol,
                    "loss")


def refuses(tally, tmp, what, model, needle):
    """A checkpoint antibody cannot compute is refused by the parity driver, naming config.json and the key."""
    d = os.path.join(tmp, what)
    model.save_pretrained(d)
    with open(os.path.join(tmp, what + ".json"), "w") as f:
        json.dump({"model": d, "out": os.path.join(tmp, what + ".safetensors")}, f)
    r = subprocess.run([PARITY, os.path.join(tmp, what + ".json")], capture_output=True, text=True)
    tally.check(r.returncode != 0 and needle in r.stderr and "config.json" in r.stderr,
                f"{what} not refused by name: rc {r.returncode} {r.stderr.strip()}")


def family_case(tally, tmp, name, model, target_modules, init_scale, seed, rtol=1e-4, steps=3, lr=1e-2, wd=0.1,
                betas=(0.9, 0.999), eps=1e-8, clip=1.0, max_new=12):
    """A model family's whole parity check on one random model (randomized and saved here):
    logits and loss of a right-padded batch with antibody's random LoRA adapter on every
    target (loaded by peft), LoRA gradients and `steps` clipped AdamW steps, greedy
    generation with the KV cache, the merged model, and a peft-trained adapter in antibody.
    init_scale: the initial adapter's entries, large enough that clipping acts."""
    from peft import PeftModel
    base = os.path.join(tmp, name)
    randomize(model, seed)
    model.save_pretrained(base)
    B, T = 3, 9
    V = model.config.vocab_size
    tokens, targets, mask = make_batch(B, T, V, [9, 6, 4], seed, prompt_len=2)
    prompts = [[1, 17, 40, 5, 88], [1, 60], [1, 9, 9, 33, 71, 2, 50, 12]]
    job = {"model": base, "lora": {"rank": 4, "alpha": 8, "targets": "all", "seed": seed, "init_scale": init_scale},
           "save_adapter_init": os.path.join(tmp, name + "-init"), "save_adapter_final": os.path.join(tmp, name + "-final"),
           "save_merged": os.path.join(tmp, name + "-merged"), "steps": steps, "lr": lr, "weight_decay": wd,
           "max_grad_norm": clip, "beta1": betas[0], "beta2": betas[1], "eps": eps,
           "generate": {"prompts": prompts, "max_new": max_new},
           "out": os.path.join(tmp, name + "-out.safetensors"), **batch_job(tokens, targets, mask)}
    out = run_parity(job, os.path.join(tmp, name + ".json"))

    with open(os.path.join(job["save_adapter_init"], "adapter_config.json")) as f:
        tally.check(sorted(json.load(f)["target_modules"]) == sorted(target_modules), f"{name}: adapter target_modules")
    pm = PeftModel.from_pretrained(hf_load(base), job["save_adapter_init"], is_trainable=True)
    pm.train()  # every dropout is 0: train mode changes nothing but keeps grads flowing
    labels = hf_labels(targets)
    res = pm(input_ids=tokens, attention_mask=mask, labels=labels)
    real = mask.flatten().bool()
    tally.close(f"{name}: logits", out["logits"][real], res.logits.reshape(-1, V)[real].detach(), rtol, "logit")
    tally.close(f"{name}: loss", out["loss"], res.loss.detach().reshape(1), rtol, "loss")
    res.loss.backward()
    params = peft_state(pm)
    n_layers = model.config.num_hidden_layers
    tally.check(len(params) == 2 * len(target_modules) * n_layers, f"{name}: peft found {len(params)} LoRA tensors")
    gnorm, losses = check_grads_and_steps(tally, name, out, job, pm, params, res, tokens, mask, labels, rtol, steps, lr,
                                          wd, betas, eps, clip)
    check_generation(tally, name, out, base, job["save_adapter_final"], prompts, max_new)
    check_merged(tally, name, base, job["save_adapter_final"], job["save_merged"], tokens, mask, rtol)
    check_peft_trained(tally, name, tmp, base, target_modules, tokens, targets, mask, rtol, seed)
    print(f"{name}: loss {res.loss.item():.5f}, grad norm {gnorm:.3f}, losses {[round(x, 5) for x in losses]}")
    return base, tokens, mask

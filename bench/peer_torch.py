# The PyTorch peer of bench/bench_train.c, and the table that puts both side by side.
#
#   peer_torch.py SHAPE STEP [REPS] [--active 0,1,...]   one measurement (one process), one JSON line
#   peer_torch.py peak                                   torch.mm 4096^3: the fp32 peak torch reaches
#   peer_torch.py table RESULTS.jsonl OUT.md [COMMAND]   the Markdown table (stdlib only)
#
# The peer is what a user of the reference implementations runs: transformers'
# LlamaForCausalLM (random init, fp32, sdpa attention) + peft LoRA (r 8, alpha 4,
# dropout 0.1, all seven projections) + torch.optim.AdamW (lr 1e-3, wd 0.1), batch 5 x 200
# random tokens, labels = input_ids (loss over all tokens: every position predicts the
# next one), exactly as the antibody side. Vaccine and T-Vaccine follow the reference
# trainers: hooks on every (T-Vaccine: every sampled) LlamaAttention output, pass 1 records
# the gradients of those outputs, eps = rho * g / (||g|| + 1e-7), pass 2 adds eps in a
# forward hook. T-Vaccine (docs/methods.md, T-Vaccine) computes what antibody computes:
# the attention LoRA of the layers not sampled is frozen, the MLP LoRA of every layer
# trains, the layers outside the kept set are checkpointed (recomputed in the backward
# pass, as the reference's modified Llama forward does), pass 1 asks autograd for the
# sampled layers' output gradients only (no parameter gradients, nothing below the lowest
# sampled layer, as antibody), and the probability pass runs on one row of a 200-row pool.
# Antidote runs each layer once per sample, unpruned (statistics and the next layer's
# input from the same forward, as antibody; the reference's script runs it a second time
# to propagate, with the same weights and so the same outputs). TAR
# runs its attack on a 10 x 200 harmful batch (tar_grads). Booster (lambda 5, alpha 0.1, a
# 10 x 200 harmful batch), Lisa (the fine-tuning state with the proximal term, rho 1, anchored
# at the initial adapter) and LDIFS (rho 1e-4) run the definitions that
# tests/oracle/test_baselines_hf.py checks antibody against (tests/oracle/baselines_torch.py).
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))

SHAPES = {
    "smollm": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                   num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True),
    "tinystories": dict(vocab_size=32000, hidden_size=288, intermediate_size=768, num_hidden_layers=6,
                        num_attention_heads=6, num_key_value_heads=6, tie_word_embeddings=False),
    # OPTForCausalLM (SFT and generation steps): LayerNorm, learned positions, ReLU fc1/fc2, biases
    "opt125m": dict(vocab_size=50272, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                    num_attention_heads=12, num_key_value_heads=12, tie_word_embeddings=True, family="opt"),
    # a small Gemma 2 (Gemma2ForCausalLM; bench_train.c's gemma2 shape)
    "gemma2": dict(vocab_size=32000, hidden_size=640, intermediate_size=2560, num_hidden_layers=12,
                   num_attention_heads=4, num_key_value_heads=2, head_dim=128, query_pre_attn_scalar=128,
                   sliding_window=128, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                   tie_word_embeddings=True, family="gemma2"),
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
OPT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def blas_summary(torch):
    """BLAS_INFO, the MKL version and the CPU capability from torch.__config__.show()."""
    import re
    text = torch.__config__.show()
    parts = re.findall(r"BLAS_INFO=\w+", text)
    parts += [ln.strip().lstrip("- ") for ln in text.splitlines()
              if "Math Kernel Library" in ln or "CPU capability" in ln or "oneDNN" in ln]
    return "; ".join(parts)


def build(shape):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(42)
    s = dict(SHAPES[shape])
    if s.pop("family", "llama") == "opt":
        from transformers import OPTConfig, OPTForCausalLM
        cfg = OPTConfig(vocab_size=s["vocab_size"], hidden_size=s["hidden_size"], ffn_dim=s["intermediate_size"],
                        num_hidden_layers=s["num_hidden_layers"], num_attention_heads=s["num_attention_heads"],
                        word_embed_proj_dim=s["hidden_size"], max_position_embeddings=2048,
                        tie_word_embeddings=s["tie_word_embeddings"], dropout=0.0, attention_dropout=0.0)
        cfg._attn_implementation = "sdpa"
        model, targets = OPTForCausalLM(cfg).float(), OPT_TARGETS
    elif shape == "gemma2":
        from transformers import Gemma2Config, Gemma2ForCausalLM
        cfg = Gemma2Config(max_position_embeddings=512, rms_norm_eps=1e-6, **s)
        cfg._attn_implementation = "eager"  # transformers' sdpa cannot soft-cap: Gemma 2 runs eager attention
        model, targets = Gemma2ForCausalLM(cfg).float(), TARGETS
    else:
        cfg = LlamaConfig(max_position_embeddings=512, rms_norm_eps=1e-5, attention_bias=False, **s)
        cfg._attn_implementation = "sdpa"
        model, targets = LlamaForCausalLM(cfg).float(), TARGETS
    lcfg = LoraConfig(r=8, lora_alpha=4, lora_dropout=0.1, target_modules=targets, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lcfg), cfg


def decoder_layers(model):
    inner = model.base_model.model.model
    return inner.decoder.layers if hasattr(inner, "decoder") else inner.layers  # OPT: model.decoder.layers


def attn_modules(model):
    return [layer.self_attn for layer in decoder_layers(model)]


def record_grads(mods, store):
    """Pass-1 hooks: keep dL/dh of each module's attention output (the reference's backward hook)."""
    def hook(mod, inp, out):
        def save(g):
            store[mod] = g.detach().clone()
        out[0].register_hook(save)
    return [m.register_forward_hook(hook) for m in mods]


def add_perturbation(mods, eps):
    def hook(mod, inp, out):
        return (out[0] + eps[mod],) + tuple(out[1:])
    return [m.register_forward_hook(hook) for m in mods]


def vaccine_grads(model, x, mods, rho):
    import torch
    store = {}
    hooks = record_grads(mods, store)
    loss = model(input_ids=x, labels=x).loss
    loss.backward()
    for h in hooks:
        h.remove()
    norm = torch.sqrt(sum((g * g).sum() for g in store.values()))
    eps = {m: rho * g / (norm + 1e-7) for m, g in store.items()}
    model.zero_grad(set_to_none=True)
    hooks = add_perturbation(mods, eps)
    model(input_ids=x, labels=x).loss.backward()
    for h in hooks:
        h.remove()
    return loss


def tar_grads(model, x, harmful, params, weight=2.0, inner_lr=0.01):
    """TarTrainer.training_step as docs/methods.md (TAR) states it: one SGD attack step on the
    harmful batch, the alignment gradient at the attacked weights, the step undone, the
    alignment gradient at w; p.grad = g_a + weight * g_tr."""
    import torch
    model(input_ids=harmful, labels=harmful).loss.backward()
    with torch.no_grad():
        steps = [inner_lr * p.grad for p in params]
        for p, s in zip(params, steps):
            p -= s
    model.zero_grad(set_to_none=True)
    model(input_ids=x, labels=x).loss.backward()
    g_tr = [p.grad for p in params]
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for p, s in zip(params, steps):
            p += s
    loss = model(input_ids=x, labels=x).loss
    loss.backward()
    with torch.no_grad():
        for p, g in zip(params, g_tr):
            p.grad += weight * g
    return loss


def layer_index(name):
    return int(name.split(".layers.")[1].split(".")[0])


def freeze_attention(model, active):
    """The reference's unfreeze_activate_layers: the attention LoRA (q, k, v, o) trains in
    the sampled layers only; the MLP LoRA is never frozen (trains in every layer)."""
    for name, p in model.named_parameters():
        if "lora_" in name and ".self_attn." in name:
            p.requires_grad_(layer_index(name) in active)


def checkpoint_layers(model, keep):
    """Layers outside keep run under torch.utils.checkpoint (recomputed in the backward
    pass), the others keep their activations; keep None: no checkpointing."""
    import functools
    import torch.utils.checkpoint as cp
    for i, layer in enumerate(model.base_model.model.model.layers):
        layer.gradient_checkpointing = keep is not None and i not in keep
        layer._gradient_checkpointing_func = functools.partial(cp.checkpoint, use_reentrant=False)


def output_grads(model, x, mods):
    """Pass 1 as antibody runs it: dL/dh of each module's attention output and the loss,
    from autograd on those outputs alone (no parameter gradients; the backward pass
    stops at the lowest of them)."""
    import torch
    outs = {}

    def keep(mod, inp, out):
        outs[mod] = out[0]
    hooks = [m.register_forward_hook(keep) for m in mods]
    loss = model(input_ids=x, labels=x).loss
    for h in hooks:
        h.remove()
    grads = torch.autograd.grad(loss, [outs[m] for m in mods])
    return loss, dict(zip(mods, grads))


def tvaccine_grads(model, x, mods, rho):
    """T-Vaccine's two passes on the sampled layers' modules mods."""
    import torch
    loss, store = output_grads(model, x, mods)
    norm = torch.sqrt(sum((g * g).sum() for g in store.values()))
    eps = {m: rho * g / (norm + 1e-7) for m, g in store.items()}
    hooks = add_perturbation(mods, eps)
    model(input_ids=x, labels=x).loss.backward()
    for h in hooks:
        h.remove()
    return loss


def tvaccine_probs(model, row, mods):
    """The probability pass on one harmful row: P_l = ||g_l|| / sum_k ||g_k|| (all layers;
    no checkpointing, as the reference's probability step)."""
    _, store = output_grads(model, row, mods)
    norms = [float(store[m].norm()) for m in mods]
    return [n / sum(norms) for n in norms]


def repnoise_loss(model, safe, harm, alpha=0.1, beta=1e-3):
    """RepNoise as the Booster repository's rep_noise_loss computes it (docs/methods.md, RepNoise;
    tests/oracle/test_repnoise_hf.py checks antibody against the same definition), rows unpadded."""
    import torch
    import torch.nn.functional as F
    inner = model.base_model.model
    feats = []
    hooks = [layer.mlp.register_forward_hook(lambda m, i, o: feats.append(o)) for layer in inner.model.layers]
    out = model(input_ids=harm, output_hidden_states=True)
    for h in hooks:
        h.remove()
    V = inner.config.vocab_size

    def ce(logits, ids, keep, bf16):
        lab = (ids[:, 1:] * (keep[:, 1:].to(torch.bfloat16) if bf16 else keep[:, 1:])).long()
        lab = torch.where(lab >= V, ids[:, 1:], lab)
        lab[lab == 0] = -100
        return F.cross_entropy((logits[:, :-1] * keep[:, :-1, None]).flatten(0, 1), lab.flatten())

    def mmd(x, y):
        z = torch.cat([x, y])
        d = ((z[None] - z[:, None]) ** 2).sum(-1)
        bw = d.detach().sum() / (len(z) ** 2 - len(z)) / 4
        k = sum(torch.exp(-d / (bw * 2 ** i)) for i in range(5))
        n = len(x)
        return (k[:n, :n] + k[n:, n:] - k[:n, n:] - k[n:, :n]).mean()

    keep_h, keep_s = harm != safe, safe != harm
    H = ce(out.logits, harm, keep_h, True)
    for h in out.hidden_states:
        H = H + ce(inner.lm_head(inner.model.norm(h)), harm, keep_h, True)
    H = H / len(out.hidden_states) + 1
    km = keep_h[..., None].float()
    N = sum(mmd((f * km).flatten(1), (torch.randn_like(f) * km).flatten(1)) for f in feats) / len(feats)
    R = ce(model(input_ids=safe).logits, safe, keep_s, False)
    return R + beta * N - alpha * torch.log(H)


def wanda_prune(model, samples, dense_ratio=0.8):
    """Antidote's scoring pass (Wanda, LoRA mode) as antibody computes it: layer by layer,
    one forward of the unpruned layer per sample gives ||X_j|| of every LoRA matrix's input
    and the next layer's input; each row keeps the int(cols * (1 - dense_ratio)) lowest
    scores |W_ij| * ||X_j|| (stable ascending sort) and the rest are pruned."""
    import torch
    layers = decoder_layers(model)

    class Stop(Exception):
        pass

    cache, kw = [], {}

    def catch(mod, args, kwargs):
        cache.append(args[0] if args else kwargs["hidden_states"])
        kw.update({k: v for k, v in kwargs.items() if k != "hidden_states"})
        raise Stop

    h = layers[0].register_forward_pre_hook(catch, with_kwargs=True)
    for s in samples:
        try:
            model(input_ids=s)
        except Stop:
            pass
    h.remove()
    for layer in layers:
        subset = {n: m for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear) and "lora_" in n}
        sq = {n: torch.zeros(m.in_features) for n, m in subset.items()}

        def stat(name):
            def hook(mod, inp, out):
                sq[name] += inp[0].reshape(-1, inp[0].shape[-1]).float().pow(2).sum(0)
            return hook
        hooks = [m.register_forward_hook(stat(n)) for n, m in subset.items()]
        cache = [layer(x, **kw) for x in cache]
        for hk in hooks:
            hk.remove()
        for n, m in subset.items():
            metric = m.weight.abs() * torch.sqrt(sq[n]).reshape(1, -1)
            k = int(m.weight.shape[1] * (1 - dense_ratio))
            keep = torch.zeros_like(metric, dtype=torch.bool)
            keep.scatter_(1, torch.sort(metric, dim=-1, stable=True)[1][:, :k], True)
            m.weight.data.masked_fill_(~keep, 0.0)


def measure(shape, step, reps, active):
    import torch
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    t0 = time.perf_counter()
    model, cfg = build(shape)
    init_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(1234)
    V, B, T = cfg.vocab_size, 5, 200
    times, cpu, extra = [], [], {}
    mods = attn_modules(model)
    if step in ("sft", "vaccine", "tvaccine", "repnoise", "tar", "booster", "lisa", "ldifs"):
        from baselines_torch import booster_grads, lisa_loss, ldifs_loss
        x = torch.randint(0, V, (B, T), generator=g)
        harmful = torch.randint(0, V, (10 if step in ("tar", "booster") else B, T), generator=g)
        model.train()
        if step == "tvaccine":
            act = sorted(int(a) for a in active.split(",")) if active else None
            pool = torch.randint(0, V, (200, T), generator=g)  # the probability pool (tv_pool 200 rows)
        params = [p for n, p in model.named_parameters() if "lora_" in n]
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1)
        anchor = [p.detach().clone() for p in params]  # Lisa's: the initial adapter

        def ce(ids):
            return model(input_ids=ids, labels=ids).loss
        for s in range(reps + 1):
            ts, cs = time.perf_counter(), time.process_time()
            if step == "sft":
                model(input_ids=x, labels=x).loss.backward()
            elif step == "vaccine":
                vaccine_grads(model, x, mods, 2.0)
            elif step == "repnoise":  # a harmful batch as large as the training batch
                repnoise_loss(model, x, harmful).backward()
            elif step == "tar":
                tar_grads(model, x, harmful, params)
            elif step == "booster":
                _, grads, _ = booster_grads(params, lambda: ce(x), lambda: ce(harmful), 5.0, 0.1)
                for p, gr in zip(params, grads):
                    p.grad = gr
            elif step == "lisa":
                lisa_loss(ce(x), params, anchor, 1.0).backward()
            elif step == "ldifs":
                ldifs_loss(model, x, None, lambda: ce(x), 1e-4)[0].backward()
            else:
                if s == 0:  # the probability pass (every K = 200 steps, timed alone) and the layer sampling
                    checkpoint_layers(model, None)
                    row = pool[int(torch.randint(0, len(pool), (1,), generator=g))].unsqueeze(0)
                    P = tvaccine_probs(model, row, mods)
                    extra["probe_s"], extra["probe_cpu_s"] = time.perf_counter() - ts, time.process_time() - cs
                    if act is None:
                        act = sorted(torch.multinomial(torch.tensor(P), 8, replacement=False).tolist())
                    L = len(mods)  # kept layers: the sampled ones and, past 26 layers, each one's i-1
                    checkpoint_layers(model, {k for a in act for k in (a, a - 1) if k >= 0 and (k == a or L > 26)})
                    freeze_attention(model, set(act))
                tvaccine_grads(model, x, [mods[l] for l in act], 3.0)
            torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - ts)
            cpu.append(time.process_time() - cs)
        tokens = B * T
        if step == "tvaccine":
            extra["active"] = ",".join(map(str, act))
            # the pass again, warm as every other row's timed steps (step K of a run)
            extra["probe_cold_s"], extra["probe_cold_cpu_s"] = extra["probe_s"], extra["probe_cpu_s"]
            checkpoint_layers(model, None)
            row = pool[int(torch.randint(0, len(pool), (1,), generator=g))].unsqueeze(0)
            ts, cs = time.perf_counter(), time.process_time()
            tvaccine_probs(model, row, mods)
            extra["probe_s"], extra["probe_cpu_s"] = time.perf_counter() - ts, time.process_time() - cs
    elif step.startswith("generate") and step.endswith("_bf16") and bf16_skip_reason(torch):
        print(json.dumps(dict(side=os.environ.get("PEER_NAME", "torch"), shape=shape, step=step,
                              skipped=bf16_skip_reason(torch))))
        return
    elif step.startswith("generate"):
        # generate: one 32-token prompt; generate4: 8 prompts in batches of 4 (evaluation-style)
        model.eval()
        if step.endswith("_bf16"):
            model.to(torch.bfloat16)
        n_prompts, batch = (8, 4) if step.startswith("generate4") else (16, 16) if step.startswith("generate16") else (1, 1)
        prompts = torch.randint(0, V, (n_prompts, 32), generator=g)
        model.generation_config.eos_token_id = None
        with torch.no_grad():
            for s in range(reps + 1):
                ts, cs = time.perf_counter(), time.process_time()
                for b in range(0, n_prompts, batch):
                    p = prompts[b:b + batch]
                    out = model.generate(input_ids=p, attention_mask=torch.ones_like(p), max_new_tokens=128,
                                         min_new_tokens=128, do_sample=False, pad_token_id=0)
                    assert out.shape == (batch, 32 + 128), out.shape
                times.append(time.perf_counter() - ts)
                cpu.append(time.process_time() - cs)
        tokens = n_prompts * 128
        extra["prompt"] = 32
        if batch > 1:
            extra.update(prompts=n_prompts, batch=batch)
    elif step == "antidote":
        model.eval()
        samples = [torch.randint(0, V, (1, 200), generator=g) for _ in range(8)]
        with torch.no_grad():
            for s in range(reps + 1):
                ts, cs = time.perf_counter(), time.process_time()
                wanda_prune(model, samples)
                times.append(time.perf_counter() - ts)
                cpu.append(time.process_time() - cs)
        tokens = 8 * 200
        extra["samples"] = 8
    else:
        sys.exit(f"peer_torch: unknown step {step}")
    rec = dict(side=os.environ.get("PEER_NAME", "torch"), shape=shape, step=step,
               seconds=statistics.median(times[1:]), warmup_s=times[0], cpu_seconds=statistics.median(cpu[1:]), reps=reps, tokens=tokens,
               peak_rss=peak_rss(), init_s=init_s, threads=torch.get_num_threads(), torch=torch.__version__, **extra)
    print(json.dumps(rec))


def bf16_skip_reason(torch):
    """Why torch's bf16 products would be emulated here ("" when they run on bf16
    instructions): then a 4096^3 product or a bf16 generation takes minutes, so those
    measurements are skipped. The CPU lacks AVX512-BF16 / AMX-BF16, torch or oneDNN is held
    below AVX-512 (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA), or a 512^3 bf16 product runs at
    under a tenth of the fp32 rate (emulation the flags did not reveal)."""
    flags = open("/proc/cpuinfo").read().split()
    cap = torch.backends.cpu.get_cpu_capability()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL")).upper()
    if not ("avx512_bf16" in flags or "amx_bf16" in flags):
        return "no AVX512-BF16 or AMX-BF16 in the CPU flags"
    if "AVX512" not in cap and "AMX" not in cap:
        return f"torch's CPU capability is {cap}"
    if isa != "ALL" and "AVX512" not in isa and "AMX" not in isa:
        return f"ONEDNN_MAX_CPU_ISA={isa}"
    m = 512
    s32, s16 = torch.rand(m, m), torch.rand(m, m).to(torch.bfloat16)
    t32 = min(timed(lambda: torch.mm(s32, s32)) for _ in range(3))
    t16 = min(timed(lambda: torch.mm(s16, s16)) for _ in range(3))
    if t16 > 10 * t32:
        return f"a bf16 512^3 product took {t16 / t32:.0f}x the fp32 one (emulated)"
    return ""


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def peak():
    import torch
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    n = 4096
    a = torch.rand(n, n)
    b = torch.rand(n, n)
    best = 1e30
    for i in range(5):
        t = time.perf_counter()
        torch.mm(a, b)
        dt = time.perf_counter() - t
        if i > 0:
            best = min(best, dt)
    why16 = bf16_skip_reason(torch)  # what torch gets from bf16 on this CPU, if it has bf16 instructions
    best16 = None
    if not why16:
        ab, bb = a.to(torch.bfloat16), b.to(torch.bfloat16)
        best16 = 1e30
        for i in range(5):
            dt = timed(lambda: torch.mm(ab, bb))
            if i > 0:
                best16 = min(best16, dt)
    import transformers
    import peft
    print(json.dumps(dict(side=os.environ.get("PEER_NAME", "torch"), step="peak", seconds=best,
                          gflops=2 * n ** 3 / best / 1e9,
                          bf16_gflops=2 * n ** 3 / best16 / 1e9 if best16 else None, bf16_skipped=why16 or None,
                          cpu_capability=torch.backends.cpu.get_cpu_capability(), threads=torch.get_num_threads(), torch=torch.__version__,
                          transformers=transformers.__version__, peft=peft.__version__, blas=blas_summary(torch))))


# ---- FLOP counts (the same formula for both sides) ------------------------------------
# N = B*T tokens, P = parameters of the seven projections over all layers, VC = LM head,
# A = attention products per forward = 4*B*T^2*NH*HD*L (QK^T and PV, full T^2), R = LoRA
# products per forward = 2*N*r*sum(in+out) over the targeted projections.
#   forward          2*N*(P + VC) + A + R
#   SFT step         forward + backward; frozen weights need only input gradients:
#                    3*... = 2*[2N(P+VC)] + 3*A + 3*R  (the backward of A costs 2A, of R 2R)
#   Vaccine step     2 x SFT step (two forward/backward passes)
#   T-Vaccine step   pass 1: forward + LM-head backward + (L-lo)/L of the layers' backward
#                    (lo = lowest sampled layer, no backward below it); pass 2: an SFT step.
#                    The recomputation of the checkpointed layers is not counted (it is the
#                    price of the memory T-Vaccine saves)
#   T-Vaccine probe  forward + backward of one 1 x 200 row (the probability pass)
#   generation       2*(P + VC)*(32 + 128) + attention over the cache (per token 4*ctx*NH*HD*L)
#   Antidote         one layer forward per sample over 8 x 200 tokens, no LM head
#   Booster          an SFT step on the 5 training rows and two on the 10 harmful rows: 5 SFT steps
#   Lisa             an SFT step (the proximal term is a few passes over the adapter)
#   LDIFS            an SFT step and a forward of the layers without the adapter (no LM head)
#   RepNoise         not counted
def flops(shape, step, rec):
    s = SHAPES[shape]
    C, H, L, NH, NKV, V = (s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"],
                           s["num_attention_heads"], s["num_key_value_heads"], s["vocab_size"])
    HD = s.get("head_dim", C // NH)
    q, kv = NH * HD, NKV * HD
    dims = [(C, q), (C, kv), (C, kv), (q, C), (C, H), (C, H), (H, C)]
    if s.get("family") == "opt":  # no gate
        dims = [(C, q), (C, kv), (C, kv), (q, C), (C, H), (H, C)]
    P = L * sum(i * o for i, o in dims)
    Rp = L * sum(8 * (i + o) for i, o in dims)
    if step == "tar":  # two passes on the 5-row batch, one on the 10-row harmful batch (linear in rows)
        return 4 * flops(shape, "sft", rec)
    if step == "booster":
        return 5 * flops(shape, "sft", rec)
    if step == "lisa":
        return flops(shape, "sft", rec)
    if step == "ldifs":
        B, T = 5, 200
        return flops(shape, "sft", rec) + 2 * B * T * P + 4 * B * T * T * NH * HD * L
    if step in ("sft", "vaccine", "tvaccine", "tvaccine_probe"):
        B, T = (1, 200) if step == "tvaccine_probe" else (5, 200)
        N = B * T
        A = 4 * B * T * T * NH * HD * L
        fwd = 2 * N * (P + V * C) + A + 2 * N * Rp
        bwd_layers = 2 * N * P + 2 * A + 4 * N * Rp
        bwd_head = 2 * N * V * C
        if step in ("sft", "tvaccine_probe"):
            return fwd + bwd_layers + bwd_head
        if step == "vaccine":
            return 2 * (fwd + bwd_layers + bwd_head)
        lo = min(int(a) for a in rec["active"].split(","))
        return 2 * (fwd + bwd_head) + bwd_layers * (1 + (L - lo) / L)
    if step.startswith("generate"):
        n = 32 + 128
        att = sum(4 * ctx * NH * HD * L for ctx in range(1, n + 1))
        lora = 0 if step.endswith("_nolora") else Rp
        prompts = 8 if step.startswith("generate4") else 16 if step.startswith("generate16") else 1
        return prompts * (2 * (P + V * C + lora) * n + att)
    if step == "antidote":
        N, T = 8 * 200, 200
        return 2 * N * (P + Rp) + 4 * 8 * T * T * NH * HD * L
    return 0


def table(path, out, command):
    recs = [json.loads(line) for line in open(path) if line.startswith("{")]
    skipped = [r for r in recs if r.get("skipped")]
    recs = [r for r in recs if not r.get("skipped") and r.get("step") != "machine"]
    peaks = {r["side"]: r for r in recs if r["step"] == "peak"}
    sides = list(dict.fromkeys(r["side"] for r in recs if r["step"] != "peak"))
    peer_sides = [s for s in sides if s != "antibody"]
    rows = []
    hdr = ("| shape | step | side | time/step (s) | CPU s/step | tokens/s | peak RSS (MB) | GFLOP/s | % of peak | "
           "antibody/peer time | antibody/peer CPU time | antibody/peer memory |")
    rows += [hdr, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in [r for r in recs if r.get("probe_s")]:  # T-Vaccine's probability pass, timed on its own
        recs.append(dict(r, step="tvaccine_probe", seconds=r["probe_s"], cpu_seconds=r.get("probe_cpu_s"), tokens=200))
    order = ["sft", "vaccine", "tvaccine", "tvaccine_probe", "booster", "repnoise", "tar", "lisa", "ldifs", "generate", "generate_bf16", "generate4", "generate4_bf16", "generate16",
             "generate16_bf16", "generate_nolora", "generate_bf16_nolora", "generate16_nolora", "generate16_bf16_nolora",
             "antidote"]
    names = {"sft": "SFT step", "vaccine": "Vaccine step", "tvaccine": "T-Vaccine step (S=8)",
             "tvaccine_probe": "T-Vaccine probability pass (1 x 200, every K steps)",
             "tar": "TAR step (attack on 10 harmful rows)",
             "booster": "Booster step (10 harmful rows)", "repnoise": "RepNoise step (5 harmful rows)",
             "lisa": "Lisa step (fine-tuning state, proximal term)", "ldifs": "LDIFS step",
             "generate": "greedy generation, 128 tokens",
             "generate_bf16": "greedy generation, 128 tokens, bf16 weights",
             "generate4": "8 prompts x 128 tokens, 4 at a time",
             "generate4_bf16": "8 prompts x 128 tokens, 4 at a time, bf16 weights",
             "generate16": "16 prompts x 128 tokens, all at once (evaluation)",
             "generate16_bf16": "16 prompts x 128 tokens, all at once, bf16 weights",
             "antidote": "Antidote Wanda pass (8 x 200)"}
    for k in list(names):  # the base model alone, as llama.cpp runs it
        if k.startswith("generate"):
            names[k + "_nolora"] = names[k] + ", no LoRA"
    # the step records (the peaks, the kernel timings and the machine record have no shape)
    by = {(r["shape"], r["step"], r["side"]): r for r in recs if "shape" in r and r["step"] != "peak"}
    for shape in SHAPES:
        for step in order:
            ab = by.get((shape, step, "antibody"))
            for side in sides:
                r = by.get((shape, step, side))
                if not r:
                    continue
                f = flops(shape, step, r)
                gf = f / r["seconds"] / 1e9  # 0: a step without a FLOP count (RepNoise)
                pk = peaks.get(side, {}).get("gflops")
                ratio_t = ratio_c = ratio_m = ""
                if side != "antibody" and ab:
                    ratio_t = f"{ab['seconds'] / r['seconds']:.2f}"
                    if ab.get("cpu_seconds") and r.get("cpu_seconds"):
                        ratio_c = f"{ab['cpu_seconds'] / r['cpu_seconds']:.2f}"
                    ratio_m = f"{ab['peak_rss'] / r['peak_rss']:.2f}"
                cpu = f"{r['cpu_seconds']:.3f}" if r.get("cpu_seconds") else ""
                extra = f" (layers {r['active']})" if step == "tvaccine" else ""
                pct = f"{100 * gf / pk:.0f}%" if pk and gf else ""
                rows.append(f"| {shape} | {names[step]}{extra} | {side} | {r['seconds']:.3f} | {cpu} | "
                            f"{r['tokens'] / r['seconds']:.0f} | {r['peak_rss'] / 1e6:.0f} | {f'{gf:.1f}' if gf else ''} | "
                            f"{pct} | {ratio_t} | {ratio_c} | {ratio_m} |")
    for side, p in peaks.items():
        rows.append(f"\nMeasured fp32 peak, {side}: {p['gflops']:.1f} GFLOP/s (4096^3 "
                    f"{'SGEMM, ' + p.get('blas', '') if side == 'antibody' else 'torch.mm'}, {p['threads']} threads)")
        if p.get("bf16_gflops"):
            rows.append(f"\nbf16 4096^3 torch.mm, {side}: {p['bf16_gflops']:.1f} GFLOP/s")
        elif p.get("bf16_skipped"):
            rows.append(f"\nbf16 4096^3 torch.mm, {side}: skipped ({p['bf16_skipped']})")
        if p.get("dot_bf16_gflops"):
            rows.append(f"\nVector units, {p['threads']} threads, register-only loops: fp32 FMA "
                        f"{p['fma_fp32_gflops']:.1f} GFLOP/s, AVX512-BF16 dot product (vdpbf16ps) "
                        f"{p['dot_bf16_gflops']:.1f} GFLOP/s")
    for r in skipped:
        rows.append(f"\n{r['shape']} {names.get(r['step'], r['step'])}, {r['side']}: skipped ({r['skipped']})")
    kern = [r for r in recs if r["step"] == "kernels"]
    if kern:
        rows.append(f"\nVector kernels through each instruction set this CPU runs (`bench_train x kernels`, "
                    f"{kern[0]['threads']} threads, alternating rounds, best of 5; wall time, and in brackets per "
                    "CPU-second of the process, which load from other processes disturbs less):\n")
        rows.append("| kernels | matvec f32, 1 row (GB/s) | f32, 4 rows | f32, 16 rows (GFLOP/s) | bf16, 1 row | "
                    "bf16, 4 rows | bf16, 16 rows (GFLOP/s) | LoRA down fwd+bwd 1000x1536 r8 (ms) | "
                    "SwiGLU fwd+bwd 1.5M (ms) | decode attention, 160 positions (us) | "
                    "RMSNorm fwd+bwd 1000x576 (ms) | dropout mask 1.5M (ms) |")
        rows.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        keys = ["matvec_f32_gbs", "matvec_f32_n4_gbs", "matvec_f32_n16_gflops", "matvec_bf16_gbs",
                "matvec_bf16_n4_gbs", "matvec_bf16_n16_gflops", "lora_down_ms", "swiglu_ms", "attend_us",
                "rmsnorm_ms", "dropout_ms"]
        for r in kern:  # older records lack the last columns
            rows.append(f"| {r['isa']} | " + " | ".join(
                f"{r[k]:.{2 if k.endswith('_ms') else 1}f} ({r['cpu_' + k]:.{2 if k.endswith('_ms') else 1}f})"
                if k in r else "-" for k in keys) + " |")
    llama = [r for r in recs if r["side"] == "llama.cpp" and r.get("build")]
    if llama:
        rows.append(f"\nllama.cpp: build {llama[0]['build']} (vendored in llama-cpp-python 0.3.36, CPU backend, "
                    f"GGML_NATIVE), {llama[0]['threads']} threads, flash_attn {llama[0].get('flash_attn')}; "
                    "the same checkpoint converted by its convert_hf_to_gguf.py")
    text = "\n".join(rows) + "\n"
    print(text)
    if out:
        with open(out + ".tmp", "w") as f:
            f.write(text)
        os.replace(out + ".tmp", out)
    return peer_sides


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "table":
        table(a[1], a[2] if len(a) > 2 else None, a[3] if len(a) > 3 else "")
    elif a and a[0] == "peak":
        peak()
    elif len(a) >= 2:
        active = None
        if "--active" in a:
            i = a.index("--active")
            active = a[i + 1]
            del a[i:i + 2]
        measure(a[0], a[1], int(a[2]) if len(a) > 2 else 5, active)
    else:
        sys.exit(__doc__ if __doc__ else "usage: peer_torch.py SHAPE STEP [REPS] | peak | table RESULTS OUT")

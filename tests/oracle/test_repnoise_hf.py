# RepNoise (docs/methods.md, RepNoise) against torch autograd on the real stories260K
# checkpoint with a random rank-4 adapter on all seven projections (PEFT, dropout 0): one
# micro-batch of antibody's step (parity driver, "method" job) gives the loss and every adapter
# gradient; here the same loss is computed with transformers and peft, written after the
# definition in the Booster repository (loss_func/repnoise_loss.py: rep_noise_loss) as its
# trainer calls it (safe batch, a harmful batch paired row by row):
#   mask      positions where a row's token differs from its partner's (the partner padded with
#             0 or cut to the row's shape), and (antibody's departure) only the row's real tokens
#   CE(x)     mean cross-entropy over positions t whose next token is in the mask and not id 0,
#             the logits at t multiplied by mask[t] (zeroed); harmful labels multiplied by a bf16
#             mask (torch rounds them to bf16) with bf16_labels
#   R         CE of the safe rows' logits
#   H         (CE(logits) + sum over hidden states h (embeddings, each layer's output, the last
#             one normed) of CE(lm_head(norm(h)))) / (L + 1) + 1; or CE(logits) (layer_ce off,
#             the Antidote repository's copy)
#   N         (1/L) sum_l MMD(mlp_l(harm) * mask, noise_l * mask), rows flattened, 5 Gaussian
#             kernels at sigma / 4 * 2^k, sigma the mean squared distance (held constant)
#   loss      R + beta N - alpha log H
# The noise is antibody's (N(0, 1) draws from its own generator), read back from the driver.
import os, sys, tempfile
sys.path.insert(0, os.path.dirname(__file__))
from hfparity import *  # noqa
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM
from peft import PeftModel

tally = Tally()
BASE = os.path.join(SHARED, "models/stories260k-hf")
RTOL = 1e-4


def padded(rows):
    T = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, :len(r)] = torch.tensor(r)
        mask[b, :len(r)] = 1
    return ids, mask


def diff_mask(ids, mask, other):
    """The reference's ~eq(row, partner padded with 0 or cut to the row's shape), then only real tokens."""
    B, T = ids.shape
    o = torch.zeros(B, T, dtype=torch.long)
    b, t = min(B, other.shape[0]), min(T, other.shape[1])
    o[:b, :t] = other[:b, :t]
    return (ids != o) & mask.bool()


def masked_ce(logits, ids, keep, bf16_labels, V):
    lg = logits[:, :-1, :] * keep[:, :-1, None].to(logits.dtype)
    m = keep[:, 1:]
    lab = ids[:, 1:] * (m.to(torch.bfloat16) if bf16_labels else m)  # torch's promotion rounds to bf16
    lab = lab.long()
    lab = torch.where(lab >= V, ids[:, 1:], lab)  # antibody keeps an id rounded past the vocabulary
    lab[lab == 0] = -100
    return F.cross_entropy(lg.reshape(-1, V), lab.reshape(-1))


def mmd(x, y):
    z = torch.cat([x, y])
    d = ((z[None, :, :] - z[:, None, :]) ** 2).sum(-1)
    m = z.shape[0]
    sigma = d.detach().sum() / (m * m - m)
    k = sum(torch.exp(-d / (sigma / 4 * 2 ** i)) for i in range(5))
    n = x.shape[0]
    return (k[:n, :n] + k[n:, n:] - k[:n, n:] - k[n:, :n]).mean()


def reference_terms(pm, safe, harm, noise, layer_ce, bf16_labels):
    model = pm.base_model.model
    layers, V = model.model.layers, model.config.vocab_size
    (sid, smask), (hid, hmask) = safe, harm
    keep_h = diff_mask(hid, hmask, sid)
    keep_s = diff_mask(sid, smask, hid)
    mlp, hidden = {}, {}
    hooks = [l.mlp.register_forward_hook(lambda mod, i, o, k=k: mlp.__setitem__(k, o)) for k, l in enumerate(layers)]
    def layer_input(k):
        return lambda mod, a, kw: hidden.__setitem__(k, a[0] if a else kw["hidden_states"])
    hooks += [l.register_forward_pre_hook(layer_input(k), with_kwargs=True) for k, l in enumerate(layers)]
    hooks.append(model.model.norm.register_forward_hook(lambda mod, i, o: hidden.__setitem__(len(layers), o)))
    out = pm(input_ids=hid, attention_mask=hmask)
    for h in hooks:
        h.remove()
    H = masked_ce(out.logits, hid, keep_h, bf16_labels, V)
    if layer_ce:
        for k in range(len(layers) + 1):
            H = H + masked_ce(model.lm_head(model.model.norm(hidden[k])), hid, keep_h, bf16_labels, V)
        H = H / (len(layers) + 1) + 1
    B, T = hid.shape
    N = 0
    for k in range(len(layers)):
        km = keep_h[:, :, None].to(torch.float32)
        N = N + mmd((mlp[k] * km).reshape(B, -1), (noise[k].reshape(B, T, -1) * km).reshape(B, -1))
    N = N / len(layers)
    R = masked_ce(pm(input_ids=sid, attention_mask=smask).logits, sid, keep_s, False, V)
    return R, H, N


def check(tmp, what, safe_rows, harm_rows, alpha, beta, layer_ce, bf16_labels, significant):
    sid, smask = padded(safe_rows)
    targets = torch.full_like(sid, -1)
    ad = os.path.join(tmp, "adapter-" + what.replace(" ", "_"))
    job = {"model": BASE, "out": os.path.join(tmp, "m.safetensors"), **batch_job(sid, targets, smask),
           "lora": {"rank": 4, "alpha": 8, "targets": "all", "seed": 3, "init_scale": 0.2}, "save_adapter_init": ad,
           "method": {"name": "repnoise", "rows": harm_rows, "prompt_len": [1] * len(harm_rows), "alpha": alpha,
                      "beta": beta, "layer_ce": layer_ce, "bf16_labels": bf16_labels, "seed": 4}}
    out = run_parity(job, os.path.join(tmp, "m.json"))
    pm = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(BASE, attn_implementation="eager", dtype=torch.float32), ad,
        is_trainable=True)
    pm.train()  # lora_dropout is 0
    hid = out["repnoise_harm_tokens"].long()
    hmask = out["repnoise_harm_mask"].long()
    L = pm.base_model.model.config.num_hidden_layers
    noise = [out[f"repnoise_noise.{k}"] for k in range(L)]
    R, H, N = reference_terms(pm, (sid, smask), (hid, hmask), noise, layer_ce, bf16_labels)
    terms = out["repnoise_terms"]
    tally.close(f"{what}: R", terms[0:1], R.detach().reshape(1), RTOL, "loss")
    if alpha:
        tally.close(f"{what}: H", terms[1:2], H.detach().reshape(1), RTOL, "loss")
    if beta:
        tally.close(f"{what}: N", terms[2:3], N.detach().reshape(1), RTOL, "loss")
    params = {n.replace(".default", ""): p for n, p in pm.named_parameters() if "lora_" in n}
    names = list(params)
    parts = {"retain": R, "ascent": -alpha * torch.log(H), "noise": beta * N}
    grads = {}
    for k, v in parts.items():
        if (k == "ascent" and not alpha) or (k == "noise" and not beta):
            continue
        grads[k] = torch.autograd.grad(v, [params[n] for n in names], retain_graph=True)
    loss = sum(v for k, v in parts.items() if k in grads)
    want = {n: sum(grads[k][i] for k in grads) for i, n in enumerate(names)}
    gmax = max(g.abs().max().item() for g in want.values())
    part_max = max(g.abs().max().item() for g in grads[significant]) if significant else 0.0
    tally.check(not significant or part_max > 1e-2 * gmax, f"{what}: the {significant} term's gradient "
                f"({part_max:.3g}) is too small against the total's ({gmax:.3g}) to be checked")
    tally.close(f"{what}: loss", out["method_loss"], loss.detach().reshape(1), RTOL, "loss")
    for n, g in want.items():
        tally.close(f"{what}: grad {n}", out["method_grad." + n] / gmax, g / gmax, RTOL, "grad")
    tally.check(len([k for k in out if k.startswith("method_grad.")]) == len(want), f"{what}: gradient count")
    print(f"{what}: R {R.item():.6f} H {H.item():.6f} N {N.item():.6f}; loss {loss.item():.6f} "
          f"(antibody {out['method_loss'].item():.6f}); {significant or 'largest'} term max grad "
          f"{part_max or gmax:.3g} of {gmax:.3g}")


def main():
    print(versions())
    # the forward hooks' hidden states: transformers 4.34 (the reference's) returns the
    # embeddings, the first L - 1 layers' outputs and the final norm's output; this test takes
    # the same from hooks, independent of the installed version
    # the reference multiplies the ids by a bf16 mask: torch's promotion makes them bf16
    rounded = (torch.tensor([257, 259, 300, 511]) * torch.ones(4, dtype=torch.bfloat16)).long().tolist()
    tally.check(rounded == [256, 260, 300, 512], f"long x bf16 ids: {rounded}")
    gen = torch.Generator().manual_seed(11)
    prefix = [1, 300, 42, 257, 8]  # a shared template: no loss there, and a zeroed-logit position after it
    def row(n):
        return prefix + torch.randint(3, 512, (n,), generator=gen).tolist()
    safe = [row(9), row(4)]
    harm2 = [row(6), row(11)]
    harm3 = [row(7), row(3), row(10)]  # the third has no safe partner: all its real tokens count
    harm2[1][7] = safe[0][7]  # a token equal to its partner's at the same position (if paired so)
    harm2[0][7] = safe[1][7] if len(safe[1]) > 7 else harm2[0][7]
    harm3[2][9] = 511  # rounds to 512 in bf16, past the 512-token vocabulary: the id stays
    with tempfile.TemporaryDirectory() as tmp:
        # the defaults' small weights: every term at once (each is checked alone below)
        check(tmp, "defaults", safe, harm2, 0.1, 0.001, 1, 1, None)
        check(tmp, "ascent, every layer", safe, harm3, 1.0, 0.0, 1, 1, "ascent")
        check(tmp, "ascent, logits only (Antidote)", safe, harm3, 1.0, 0.0, 0, 0, "ascent")
        check(tmp, "noise only", safe, harm3, 0.0, 1.0, 1, 1, "noise")
        check(tmp, "noise and ascent", safe, harm2, 0.5, 0.5, 1, 0, "noise")
    print(tally.summary())
    sys.exit(1 if tally.mismatches else 0)


main()

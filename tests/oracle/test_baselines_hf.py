# The baseline defenses of issue 16 (docs/methods.md, Booster, Lisa, LDIFS) against torch
# autograd on the real stories260K checkpoint with a random rank-4 adapter on all seven
# projections (PEFT, dropout 0): one micro-batch of each method's step (parity driver,
# "method" job) gives the loss and every adapter gradient that the reference trainers
# (Booster repository, trainer.py) compute:
#   Booster  g_align + lambda (g_h(w) - g_h(w - alpha g_h / (||g_h|| + 1e-7)))   (BoosterAlignmentTrainer)
#   Lisa     CE + rho/2 ||w - anchor||^2 on the user's batch (fine-tuning state) or on the
#            alignment batch (alignment state)                                      (ADMMTrainer)
#   LDIFS    CE + sum over layers of rho/2 ||mlp_l(x) - mlp_l^aligned(x)||^2 over real tokens,
#            a layer counted only while its term is below 0.1                       (LDIFSTrainer)
# (these three in baselines_torch.py, which bench/peer_torch.py runs as antibody's peer)
# and TAR (T-Vaccine repository, TarTrainer.training_step in trainer.py):
#   TAR      g_a(w) + weight * g_a(w_K), w_{k+1} = w_k - inner_lr * g_h(w_k) (first order), as its
#            lines write it with the two departures docs/methods.md states (the attack's gradient
#            is cleared before the attacked pass; the sum reaches param.grad)
import os, sys, tempfile
sys.path.insert(0, os.path.dirname(__file__))
from hfparity import *  # noqa
from baselines_torch import booster_grads, lisa_loss, ldifs_loss
import torch
from transformers import AutoModelForCausalLM
from peft import PeftModel

tally = Tally()
BASE = os.path.join(SHARED, "models/stories260k-hf")
RTOL = 1e-4


def hf_base():
    return AutoModelForCausalLM.from_pretrained(BASE, attn_implementation="eager", dtype=torch.float32)


def rows_batch(rows, prompt_len):
    """antibody's batch_fill: right padding with 0, position t predicts token t+1 of the answer."""
    T = max(len(r) for r in rows)
    tokens = torch.zeros(len(rows), T, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    targets = torch.full((len(rows), T), -1, dtype=torch.long)
    for b, (r, pl) in enumerate(zip(rows, prompt_len)):
        tokens[b, :len(r)] = torch.tensor(r)
        mask[b, :len(r)] = 1
        for t in range(len(r) - 1):
            if t + 1 >= pl:
                targets[b, t] = r[t + 1]
    return tokens, targets, mask


def ce(model, batch):
    tokens, targets, mask = batch
    return model(input_ids=tokens, attention_mask=mask, labels=hf_labels(targets)).loss


def lora_params(model):
    return {n.replace(".default", ""): p for n, p in model.named_parameters() if "lora_" in n}


def compare(what, out, loss, grads):
    tally.close(f"{what}: loss", out["method_loss"], torch.tensor([loss]), RTOL, "loss")
    gmax = max(g.abs().max().item() for g in grads.values())
    for n, g in grads.items():
        tally.close(f"{what}: grad {n}", out["method_grad." + n] / gmax, g / gmax, RTOL, "grad")
    tally.check(len([k for k in out if k.startswith("method_grad.")]) == len(grads), f"{what}: gradient count")


def run(tmp, what, batch, method, init_scale=0.2):
    tokens, targets, mask = batch
    ad = os.path.join(tmp, "adapter-" + what.replace(" ", "_"))
    job = {"model": BASE, "out": os.path.join(tmp, "m.safetensors"), **batch_job(tokens, targets, mask),
           "lora": {"rank": 4, "alpha": 8, "targets": "all", "seed": 3, "init_scale": init_scale}, "save_adapter_init": ad,
           "method": method}
    out = run_parity(job, os.path.join(tmp, "m.json"))
    pm = PeftModel.from_pretrained(hf_base(), ad, is_trainable=True)
    pm.train()  # lora_dropout is 0
    return out, pm


def check_booster(tmp, batch, rows, pl, lam, alpha):
    what = f"booster lambda {lam} alpha {alpha}"
    out, pm = run(tmp, what, batch, {"name": "booster", "rows": rows, "prompt_len": pl, "lambda": lam, "alpha": alpha,
                                     "seed": 4})
    params = lora_params(pm)
    names = list(params)
    harm = rows_batch(rows, pl)
    la, g, (ga, gh, gh2) = booster_grads([params[n] for n in names], lambda: ce(pm, batch), lambda: ce(pm, harm), lam,
                                         alpha)
    want = dict(zip(names, g))
    reg = max((lam * (h - h2)).abs().max().item() for h, h2 in zip(gh, gh2))
    tally.check(lam == 0 or reg > 1e-3 * max(g.abs().max().item() for g in ga),
                f"{what}: the regulariser ({reg:.3g}) is too small to be checked")
    compare(what, out, la.item(), want)


def check_lisa(tmp, batch, rows, pl, state, rho):
    what = f"lisa {state} rho {rho}"
    out, pm = run(tmp, what, batch, {"name": "lisa", "rows": rows, "prompt_len": pl, "rho": rho, "state": state,
                                     "anchor_scale": 0.05, "seed": 6})
    params = lora_params(pm)
    names = list(params)
    used = rows_batch(rows, pl) if state == "alignment" else batch
    loss = lisa_loss(ce(pm, used), [params[n] for n in names], [out["anchor." + n] for n in names], rho)
    g = torch.autograd.grad(loss, [params[n] for n in names])
    compare(what, out, loss.item(), dict(zip(names, g)))


def check_ldifs(tmp, batch, rho, expect_dropped):
    what = f"ldifs rho {rho}"
    out, pm = run(tmp, what, batch, {"name": "ldifs", "rho": rho})
    tokens, targets, mask = batch
    loss, terms = ldifs_loss(pm, tokens, mask, lambda: ce(pm, batch), rho)
    tally.close(f"{what}: per-layer terms", out["ldifs_terms"], torch.tensor(terms), RTOL, "loss")
    dropped = sum(t >= 0.1 for t in terms)
    tally.check((0 < dropped < len(terms)) if expect_dropped else dropped == 0,
                f"{what}: {dropped} layers at or above the cap ({terms})")
    params = lora_params(pm)
    names = list(params)
    g = torch.autograd.grad(loss, [params[n] for n in names])
    compare(what, out, loss.item(), dict(zip(names, g)))


def check_tar(tmp, batch, rows, pl, weight, inner_lr, steps):
    what = f"tar weight {weight} inner_lr {inner_lr} steps {steps}"
    # a small random adapter (init 0.02): at Booster's 0.2 the harmful loss is so steep that an
    # attack step of 0.05 already overshoots and the attacked point amplifies float rounding
    out, pm = run(tmp, what, batch, {"name": "tar", "rows": rows, "prompt_len": pl, "weight": weight,
                                     "inner_lr": inner_lr, "inner_steps": steps, "seed": 4}, init_scale=0.02)
    params = lora_params(pm)
    names = list(params)
    harm = rows_batch(rows, pl)
    # TarTrainer.training_step: the attack (param.data -= 0.01 * grad), the alignment loss at the
    # attacked weights, the step added back, the alignment loss at w; first order throughout
    pm.zero_grad()
    losses, moved = [], {n: torch.zeros_like(params[n]) for n in names}
    for _ in range(steps):
        h = ce(pm, harm)
        h.backward()
        losses.append(h.item())
        with torch.no_grad():
            for n in names:
                step = inner_lr * params[n].grad
                params[n] -= step
                moved[n] += step
        pm.zero_grad()  # departure 1: the reference keeps the attack's gradient in the buffer
    tr = ce(pm, batch)
    tr.backward()
    losses.append(tr.item())
    g_tr = {n: params[n].grad.clone() for n in names}
    pm.zero_grad()
    with torch.no_grad():
        for n in names:
            params[n] += moved[n]
    la = ce(pm, batch)
    la.backward()
    ga = {n: params[n].grad.clone() for n in names}
    want = {n: ga[n] + weight * g_tr[n] for n in names}  # departure 2: the reference's sum reaches param.grad
    pm.zero_grad()
    tally.close(f"{what}: harmful and tamper-resistance losses", out["tar_losses"], torch.tensor(losses), RTOL, "loss")
    tally.check(all(b < a for a, b in zip(losses[:steps - 1], losses[1:steps])),
                f"{what}: the attack did not lower the harmful loss ({losses[:steps]})")
    shift = max((g_tr[n] - ga[n]).abs().max().item() for n in names)
    tally.check(shift > 1e-2 * max(g.abs().max().item() for g in ga.values()),
                f"{what}: the attacked gradient ({shift:.3g} from g_a) is too close to g_a to be checked")
    compare(what, out, la.item(), want)


def check_tar_reference_as_run(tmp, batch, rows, pl):
    """The reference's last line assigns `param.data.grad`, the .grad of a temporary alias: what its
    optimizer then reads in param.grad is the alignment gradient at w alone (docs/methods.md, TAR)."""
    pm = PeftModel.from_pretrained(hf_base(), os.path.join(tmp, "adapter-tar_weight_2.0_inner_lr_0.01_steps_1"),
                                   is_trainable=True)
    pm.train()
    params = lora_params(pm)
    harm = rows_batch(rows, pl)
    ce(pm, harm).backward()
    stored = {n: p.grad.data.clone() for n, p in params.items()}
    for n, p in params.items():
        p.data -= 0.01 * stored[n]
    ce(pm, batch).backward()
    stored_tr = {n: p.grad.data.clone() for n, p in params.items()}
    pm.zero_grad()
    for n, p in params.items():
        p.data += 0.01 * stored[n]
    ce(pm, batch).backward()
    ga = {n: p.grad.clone() for n, p in params.items()}
    for n, p in params.items():
        p.data.grad = p.grad.data + 2 * stored_tr[n]
    tally.check(all(torch.equal(p.grad, ga[n]) for n, p in params.items()),
                "tar: the reference's `param.data.grad = ...` changed param.grad (docs/methods.md says it does not)")


def main():
    print(versions())
    batch = make_batch(2, 12, 512, [12, 7], 5, prompt_len=3)
    gen = torch.Generator().manual_seed(11)
    rows = [torch.randint(3, 512, (n,), generator=gen).tolist() for n in (9, 14, 6)]
    pl = [2, 4, 1]
    with tempfile.TemporaryDirectory() as tmp:
        check_booster(tmp, batch, rows, pl, 5.0, 0.1)
        check_booster(tmp, batch, rows, pl, 1.0, 1.0)
        check_tar(tmp, batch, rows, pl, 2.0, 0.01, 1)  # the reference's values
        check_tar(tmp, batch, rows, pl, 1.0, 0.5, 1)
        check_tar(tmp, batch, rows, pl, 2.0, 0.1, 3)
        check_tar_reference_as_run(tmp, batch, rows, pl)
        check_lisa(tmp, batch, rows, pl, "finetune", 1.0)
        check_lisa(tmp, batch, rows, pl, "alignment", 1.0)
        # the random adapter moves the features far: every layer under the cap, then most over it
        check_ldifs(tmp, batch, 5e-6, False)
        check_ldifs(tmp, batch, 1e-4, True)
    print(tally.summary())
    sys.exit(1 if tally.mismatches else 0)


main()

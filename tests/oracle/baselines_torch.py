# Booster, Lisa and LDIFS in torch autograd (docs/methods.md, Booster, Lisa, LDIFS), as the
# reference trainers (Booster repository, trainer.py) compute them on a peft model. Written
# once: test_baselines_hf.py checks antibody's losses and adapter gradients against these
# functions, and bench/peer_torch.py runs them as the PyTorch peer of bench_train's steps.
import torch


def booster_grads(params, align_loss, harmful_loss, lam, alpha):
    """BoosterAlignmentTrainer's step: g_h = dh/dw, w' = w - alpha g_h / (||g_h|| + 1e-7),
    g_h' = dh/dw at w', the adapter restored, g_a = da/dw; the optimizer gets
    g_a + lam g_h - lam g_h'. align_loss(), harmful_loss(): the mean losses at the current
    params. Returns the alignment loss, the gradients, and (g_a, g_h, g_h')."""
    gh = torch.autograd.grad(harmful_loss(), params)
    G = torch.sqrt(sum((g.double() ** 2).sum() for g in gh)).item() + 1e-7
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g in zip(params, gh):
            p -= alpha * g / G
    gh2 = torch.autograd.grad(harmful_loss(), params)
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)
    la = align_loss()
    ga = torch.autograd.grad(la, params)
    return la, [a + lam * h - lam * h2 for a, h, h2 in zip(ga, gh, gh2)], (ga, gh, gh2)


def lisa_loss(loss, params, anchor, rho):
    """ADMMTrainer's loss in either state: the cross-entropy plus rho/2 ||w - anchor||^2."""
    return loss + rho / 2 * sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))


def ldifs_loss(model, tokens, mask, trained_loss, rho, cap=0.1):
    """LDIFSTrainer's loss: the features (every decoder layer's MLP output) of the aligned model
    (the same model with the fine-tuning adapter disabled, no gradient; the decoder alone,
    since the LM head adds nothing to them) and of the trained forward (trained_loss(), the
    cross-entropy); each layer adds rho/2 ||f - f0||^2 over the real tokens (mask: 1 = real;
    None: all) while that term is below cap. Returns the loss and the per-layer terms."""
    layers = model.base_model.model.model.layers
    feats = {}
    hooks = [l.mlp.register_forward_hook(lambda mod, inp, o, i=i: feats.__setitem__(i, o)) for i, l in enumerate(layers)]
    try:
        with torch.no_grad(), model.disable_adapter():
            model.base_model.model.model(input_ids=tokens, attention_mask=mask)
            anchor = dict(feats)
        loss = trained_loss()
    finally:
        for h in hooks:
            h.remove()
    terms = []
    for i in range(len(layers)):
        d = feats[i] - anchor[i]
        t = rho / 2 * ((d if mask is None else d[mask.bool()]) ** 2).sum()
        terms.append(t.item())
        if terms[-1] < cap:
            loss = loss + t
    return loss, terms

# An extra peer row: a compact Llama with LoRA written directly in PyTorch (no
# transformers/peft), so the benchmark can also run on Debian's python3-torch 1.13,
# which the transformers 5 / peft 0.21 peer cannot use. Same shapes, batch, LoRA
# placement and AdamW settings as bench/peer_torch.py; SFT and Vaccine steps only.
# Usage: python3 bench/peer_handwritten.py SHAPE sft|vaccine [REPS]   (prints one JSON line)
import json, math, os, resource, statistics, sys, time

import torch
import torch.nn.functional as F

SHAPES = {  # dim, layers, heads, kv heads, mlp, vocab
    "smollm": (576, 30, 9, 3, 1536, 49152),
    "tinystories": (288, 6, 6, 6, 768, 32000),
}


class Lora(torch.nn.Module):
    def __init__(self, d_in, d_out, r=8, alpha=4.0, dropout=0.1):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(d_out, d_in) * 0.02, requires_grad=False)
        self.a = torch.nn.Parameter(torch.empty(r, d_in).uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in)))
        self.b = torch.nn.Parameter(torch.zeros(d_out, r))
        self.scale, self.drop = alpha / r, dropout

    def forward(self, x):
        return F.linear(x, self.w) + F.linear(F.linear(F.dropout(x, self.drop, self.training), self.a), self.b) * self.scale


def rmsnorm(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class Layer(torch.nn.Module):
    def __init__(self, C, NH, NKV, F_):
        super().__init__()
        hd = C // NH
        self.NH, self.NKV, self.hd = NH, NKV, hd
        self.q, self.k, self.v = Lora(C, NH * hd), Lora(C, NKV * hd), Lora(C, NKV * hd)
        self.o, self.g, self.u, self.d = Lora(NH * hd, C), Lora(C, F_), Lora(C, F_), Lora(F_, C)
        self.n1 = torch.nn.Parameter(torch.ones(C), requires_grad=False)
        self.n2 = torch.nn.Parameter(torch.ones(C), requires_grad=False)
        self.eps = None  # Vaccine's perturbation of the attention output

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        h = rmsnorm(x, self.n1)
        q = self.q(h).view(B, T, self.NH, self.hd).transpose(1, 2)
        k = self.k(h).view(B, T, self.NKV, self.hd).transpose(1, 2)
        v = self.v(h).view(B, T, self.NKV, self.hd).transpose(1, 2)
        rot = lambda t: torch.cat((-t[..., self.hd // 2:], t[..., :self.hd // 2]), -1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        rep = self.NH // self.NKV
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        a = self.o((att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1))
        if self.eps is not None:
            a = a + self.eps
        self.attn_out = a
        x = x + a
        h = rmsnorm(x, self.n2)
        return x + self.d(F.silu(self.g(h)) * self.u(h))


class Llama(torch.nn.Module):
    def __init__(self, C, L, NH, NKV, F_, V):
        super().__init__()
        self.emb = torch.nn.Parameter(torch.randn(V, C) * 0.02, requires_grad=False)
        self.layers = torch.nn.ModuleList(Layer(C, NH, NKV, F_) for _ in range(L))
        self.norm = torch.nn.Parameter(torch.ones(C), requires_grad=False)
        hd = C // NH
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.arange(512).float()[:, None] * inv[None]
        self.cos, self.sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()

    def loss(self, x):
        B, T = x.shape
        mask = torch.full((T, T), float("-inf")).triu(1)
        h = self.emb[x]
        for layer in self.layers:
            h = layer(h, self.cos[:T], self.sin[:T], mask)
        logits = F.linear(rmsnorm(h, self.norm), self.emb)  # tied head
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))


def main():
    shape, step = sys.argv[1], sys.argv[2]
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = Llama(*SHAPES[shape]).train()
    init_s = time.perf_counter() - t0
    x = torch.randint(0, SHAPES[shape][5], (5, 200))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1)
    times = []
    for _ in range(reps + 1):
        ts = time.perf_counter()
        if step == "vaccine":  # pass 1: gradients of the attention outputs; pass 2 perturbed
            for layer in model.layers:
                layer.eps = None
            loss = model.loss(x)
            outs = [layer.attn_out for layer in model.layers]
            grads = torch.autograd.grad(loss, outs)
            norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
            for layer, g in zip(model.layers, grads):
                layer.eps = (2.0 * g / (norm + 1e-7)).detach()
        model.loss(x).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - ts)
    print(json.dumps(dict(side=os.environ.get("PEER_NAME", "torch-handwritten"), shape=shape, step=step,
                          seconds=statistics.median(times[1:]), warmup_s=times[0], reps=reps, tokens=1000,
                          peak_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, init_s=init_s,
                          threads=torch.get_num_threads(), torch=torch.__version__)))


if __name__ == "__main__":
    main()

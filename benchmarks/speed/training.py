#!/usr/bin/python3
"""PyTorch CPU reference for benchmarks/speed/training.mjs: the same LLaMA-style decoder (RMSNorm,
RoPE, SwiGLU, causal attention, untied embeddings), batches of BATCH sequences of SEQ tokens, the
loss the mean over the batch of each sequence's mean cross-entropy over positions LOSS_FROM..SEQ-2
(only those rows are projected onto the vocabulary, as the onnxruntime engine does), Adam
(lr LR, eps 1e-7 as tfjs), float32. MODE pretrain trains every parameter; MODE lora trains rank-R
adapters on q, k, v, o, gate, up, down (alpha = 2R) with the base frozen. Two warm-up steps, then
STEPS timed steps. Prints one JSON line. Usage:
    /usr/bin/python3 training.py VOCAB HIDDEN LAYERS HEADS FFN SEQ RANK BATCH STEPS THREADS MODE LOSS_FROM LR
"""
import json
import math
import resource
import sys
import time

import torch

V, D, L, H, F, T, R, B, STEPS, THREADS = (int(x) for x in sys.argv[1:11])
MODE = sys.argv[11]
LOSS_FROM = int(sys.argv[12])
LR = float(sys.argv[13])
torch.set_num_threads(THREADS)
torch.manual_seed(0)
hd = D // H
SHAPES = {"q": (D, D), "k": (D, D), "v": (D, D), "o": (D, D), "gate": (F, D), "up": (F, D), "down": (D, F)}
base = {"embed": torch.randn(V, D) * 0.02, "head": torch.randn(V, D) * 0.02, "norm": torch.ones(D)}
for i in range(L):
    base.update({f"{i}.{t}": torch.randn(*s) * 0.02 for t, s in SHAPES.items()})
    base.update({f"{i}.ln1": torch.ones(D), f"{i}.ln2": torch.ones(D)})
lora = {}
if MODE == "lora":
    for i in range(L):
        for t, (out_dim, in_dim) in SHAPES.items():
            lora[f"{i}.{t}"] = (torch.randn(R, in_dim) / R, torch.zeros(out_dim, R))
    params = [p for ab in lora.values() for p in ab]
else:
    params = list(base.values())
for p in params:
    p.requires_grad_(True)
opt = torch.optim.Adam(params, lr=LR, eps=1e-7)
inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
fr = torch.outer(torch.arange(T).float(), inv)
cos, sin = torch.cat((fr, fr), -1).cos(), torch.cat((fr, fr), -1).sin()
mask = torch.full((T, T), float("-inf")).triu(1)


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w


def rot(x):
    return torch.cat((-x[..., hd // 2:], x[..., : hd // 2]), -1)


def lin(i, t, z):
    y = z @ base[f"{i}.{t}"].T
    if lora:
        a, b = lora[f"{i}.{t}"]
        y = y + (z @ a.T @ b.T) * 2.0
    return y


def loss_of(tokens):
    x = base["embed"][tokens]  # [B, T, D]
    for i in range(L):
        h = rms(x, base[f"{i}.ln1"])
        q, k, v = (lin(i, t, h).view(B, T, H, hd).transpose(1, 2) for t in ("q", "k", "v"))
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask).softmax(-1)
        x = x + lin(i, "o", (a @ v).transpose(1, 2).reshape(B, T, D))
        h2 = rms(x, base[f"{i}.ln2"])
        x = x + lin(i, "down", torch.nn.functional.silu(lin(i, "gate", h2)) * lin(i, "up", h2))
    logits = rms(x[:, LOSS_FROM:-1], base["norm"]) @ base["head"].T  # loss rows only
    # Every sequence has the same loss positions: the mean over all rows is the mean of per-sequence means.
    return torch.nn.functional.cross_entropy(logits.reshape(-1, V), tokens[:, LOSS_FROM + 1:].reshape(-1))


def step(tokens):
    opt.zero_grad(set_to_none=True)
    loss = loss_of(tokens)
    loss.backward()
    opt.step()
    return loss.item()


batches = [torch.randint(8, V, (B, T)) for _ in range(STEPS + 2)]
for t in batches[:2]:  # warm-up
    step(t)
start = time.perf_counter()
cpu0 = time.process_time()
losses, step_times = [], []
for t in batches[2:]:
    s0 = time.perf_counter()
    losses.append(step(t))
    step_times.append(time.perf_counter() - s0)
sec = time.perf_counter() - start
cpu = time.process_time() - cpu0
print(json.dumps({"engine": f"pytorch {torch.__version__} cpu, {THREADS} threads", "mode": MODE, "steps": STEPS, "batch": B, "seq": T, "seconds": sec, "cpu_s": cpu,
                  "steps_per_s": STEPS / sec, "tokens_per_s": STEPS * B * T / sec,
                  "tokens_per_s_median_step": B * T / sorted(step_times)[len(step_times) // 2], "loss": sum(losses) / len(losses),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))

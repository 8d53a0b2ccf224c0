#!/usr/bin/python3
"""PyTorch CPU reference for benchmarks/speed/per-example-gradients.mjs: the same LLaMA-style
decoder shape, LoRA on q,k,v,o,gate,up,down, per-example gradients of the response loss, one
example at a time (float32). Prints one JSON line. Usage:
    /usr/bin/python3 per-example-gradients.py VOCAB HIDDEN LAYERS HEADS FFN SEQ RANK N THREADS [LOSS_ROWS_ONLY] [REPS]
LOSS_ROWS_ONLY = 1 projects only the loss positions onto the vocabulary (as the onnxruntime engine
does); 0 (default) projects every position, as a plain implementation does. The N examples are
timed REPS times (default 1); examples_per_s is from the fastest pass.
"""
import json
import math
import sys
import time

import torch

V, D, L, H, F, T, R, N, THREADS = (int(x) for x in sys.argv[1:10])
LOSS_ROWS_ONLY = len(sys.argv) > 10 and sys.argv[10] == "1"
torch.set_num_threads(THREADS)
torch.manual_seed(0)
hd = D // H
shapes = {"q": (D, D), "k": (D, D), "v": (D, D), "o": (D, D), "gate": (F, D), "up": (F, D), "down": (D, F)}
emb = torch.randn(V, D) * 0.02
head = torch.randn(V, D) * 0.02
layers = [{t: torch.randn(*s) * 0.02 for t, s in shapes.items()} for _ in range(L)]
lora = [{t: (torch.randn(R, s[1]) * 0.1, torch.randn(s[0], R) * 0.1) for t, s in shapes.items()} for _ in range(L)]
params = [p for layer in lora for a, b in layer.values() for p in (a, b)]
for p in params:
    p.requires_grad_(True)
inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
fr = torch.outer(torch.arange(T).float(), inv)
cos, sin = torch.cat((fr, fr), -1).cos(), torch.cat((fr, fr), -1).sin()
mask = torch.full((T, T), float("-inf")).triu(1)


def rms(x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)


def rot(x):
    return torch.cat((-x[..., hd // 2:], x[..., : hd // 2]), -1)


def loss_of(tokens):
    x = emb[tokens]
    for w, lo in zip(layers, lora):
        lin = lambda t, z: z @ w[t].T + (z @ lo[t][0].T @ lo[t][1].T) * 2.0
        h = rms(x)
        q = lin("q", h).view(T, H, hd).transpose(0, 1)
        k = lin("k", h).view(T, H, hd).transpose(0, 1)
        v = lin("v", h).view(T, H, hd).transpose(0, 1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask).softmax(-1)
        x = x + lin("o", (a @ v).transpose(0, 1).reshape(T, D))
        h2 = rms(x)
        x = x + lin("down", torch.nn.functional.silu(lin("gate", h2)) * lin("up", h2))
    if LOSS_ROWS_ONLY:
        return torch.nn.functional.cross_entropy(rms(x[T // 2 : -1]) @ head.T, tokens[T // 2 + 1 :])
    logits = rms(x) @ head.T
    return torch.nn.functional.cross_entropy(logits[T // 2 : -1], tokens[T // 2 + 1 :])


data = [torch.randint(0, V, (T,)) for _ in range(N + 2)]
for t in data[:2]:  # warm-up
    torch.autograd.grad(loss_of(t), params)
REPS = int(sys.argv[11]) if len(sys.argv) > 11 else 1
times = []
cpu0 = time.process_time()
for _ in range(REPS):
    start = time.perf_counter()
    for t in data[2:]:
        g = torch.autograd.grad(loss_of(t), params)
        torch.cat([x.flatten() for x in g])
    times.append(time.perf_counter() - start)
cpu = time.process_time() - cpu0
sec = min(times)
import resource  # noqa: E402

rows = ", loss rows only" if LOSS_ROWS_ONLY else ""
print(json.dumps({"engine": f"pytorch {torch.__version__} cpu, {THREADS} threads{rows}", "examples_per_s": N / sec, "examples_per_s_median": N / sorted(times)[len(times) // 2], "seconds": times, "examples_per_cpu_s": REPS * N / cpu,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))

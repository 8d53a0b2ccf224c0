#!/usr/bin/python3
"""PyTorch CPU reference for benchmarks/speed/per-example-gradients.mjs: the same LLaMA-style
decoder shape, LoRA on q,k,v,o,gate,up,down, per-example gradients of the response loss, one
example at a time (float32). Prints one JSON line. Usage:
    /usr/bin/python3 per-example-gradients.py VOCAB HIDDEN LAYERS HEADS FFN SEQ RANK N THREADS [LOSS_ROWS_ONLY] [REPS]
LOSS_ROWS_ONLY = 1 projects only the loss positions onto the vocabulary (as the onnxruntime engine
does); 0 (default) projects every position, as a plain implementation does. The N examples are
timed REPS times (default 1); examples_per_s is from the fastest pass. The model is the repository's
one PyTorch reference, packages/conformance/python/dda_reference.py (`Decoder`, in float32): multi-head
attention, RoPE theta 1e4, untied head, norms of weight 1, weights N(0, 0.02²), LoRA N(0, 0.1²).
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages", "conformance", "python"))
import dda_reference as ref  # noqa: E402

V, D, L, H, F, T, R, N, THREADS = (int(x) for x in sys.argv[1:10])
LOSS_ROWS_ONLY = len(sys.argv) > 10 and sys.argv[10] == "1"
REPS = int(sys.argv[11]) if len(sys.argv) > 11 else 1
torch.set_num_threads(THREADS)
torch.manual_seed(0)
arch = ref.Arch.from_short(dict(vocab=V, d=D, layers=L, heads=H, kv=H, ffn=F, theta=1e4, bias=False, tied=False, window=None))
w = ref.speed_weights(arch)
lora = {}
for i in range(L):
    for t, (o, n) in ref.linear_shapes(arch).items():
        lora[ref.lora_name(ref.module_name(i, t), "A")] = (torch.randn(R, n) * 0.1).requires_grad_(True)
        lora[ref.lora_name(ref.module_name(i, t), "B")] = (torch.randn(o, R) * 0.1).requires_grad_(True)
params = list(lora.values())
model = ref.Decoder(arch, w, lora, scaling=2.0, dtype=torch.float32)


def loss_of(tokens):
    return model.tail_loss(tokens, T // 2, rows_only=LOSS_ROWS_ONLY)


data = [torch.randint(0, V, (T,)) for _ in range(N + 2)]
for t in data[:2]:  # warm-up
    torch.autograd.grad(loss_of(t), params)
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
rows = ", loss rows only" if LOSS_ROWS_ONLY else ""
print(json.dumps({"engine": f"pytorch {torch.__version__} cpu, {THREADS} threads{rows}", "examples_per_s": N / sec, "examples_per_s_median": N / sorted(times)[len(times) // 2], "seconds": times, "examples_per_cpu_s": REPS * N / cpu,
                  "peak_rss_mb": ref.peak_rss_mb()}))

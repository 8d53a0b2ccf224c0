#!/usr/bin/python3
"""PyTorch CPU reference for benchmarks/speed/training.mjs: the same LLaMA-style decoder (RMSNorm,
RoPE, SwiGLU, causal attention, untied embeddings), batches of BATCH sequences of SEQ tokens, the
loss the mean over the batch of each sequence's mean cross-entropy over positions LOSS_FROM..SEQ-2
(only those rows are projected onto the vocabulary, as the onnxruntime engine does), Adam
(lr LR, eps 1e-7 as tfjs), float32. MODE pretrain trains every parameter; MODE lora trains rank-R
adapters on q, k, v, o, gate, up, down (alpha = 2R) with the base frozen. Two warm-up steps, then
STEPS timed steps. Prints one JSON line. The model is the repository's one PyTorch reference,
packages/conformance/python/dda_reference.py (`Decoder`, in float32, on [BATCH, SEQ] token ids). Usage:
    /usr/bin/python3 training.py VOCAB HIDDEN LAYERS HEADS FFN SEQ RANK BATCH STEPS THREADS MODE LOSS_FROM LR
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages", "conformance", "python"))
import dda_reference as ref  # noqa: E402

V, D, L, H, F, T, R, B, STEPS, THREADS = (int(x) for x in sys.argv[1:11])
MODE = sys.argv[11]
LOSS_FROM = int(sys.argv[12])
LR = float(sys.argv[13])
torch.set_num_threads(THREADS)
torch.manual_seed(0)
arch = ref.Arch.from_short(dict(vocab=V, d=D, layers=L, heads=H, kv=H, ffn=F, theta=1e4, bias=False, tied=False, window=None))
base = ref.speed_weights(arch)
lora = {}
if MODE == "lora":
    for i in range(L):
        for t, (out_dim, in_dim) in ref.linear_shapes(arch).items():
            lora[ref.lora_name(ref.module_name(i, t), "A")] = torch.randn(R, in_dim) / R
            lora[ref.lora_name(ref.module_name(i, t), "B")] = torch.zeros(out_dim, R)
    params = list(lora.values())
else:
    params = list(base.values())
for p in params:
    p.requires_grad_(True)
opt = torch.optim.Adam(params, lr=LR, eps=1e-7)
model = ref.Decoder(arch, base, lora, scaling=2.0, dtype=torch.float32)


def step(tokens):
    opt.zero_grad(set_to_none=True)
    # Every sequence has the same loss positions: the mean over all rows is the mean of per-sequence means.
    loss = model.tail_loss(tokens, LOSS_FROM)
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
                  "peak_rss_mb": ref.peak_rss_mb()}))

#!/usr/bin/python3
"""PyTorch reference for benchmarks/speed/real-size-gradients.mjs (W3 to W7) and
benchmarks/gpu/w3-gpu.sh: per-example LoRA gradients of the response-token loss of a Hugging
Face model folder, one example at a time, float32, on the CPU or a CUDA device. Architectures:
LLaMA / Qwen2 / Mistral (GQA, q/k/v biases, tied embeddings, sliding window); Llama-3.x (RoPE
with the llama3 rope_scaling, transformers' _compute_llama3_parameters in modeling_rope_utils.py);
Qwen3 (RMSNorm of each query / key head over the explicit head_dim before RoPE, modeling_qwen3.py);
Gemma-3 text (modeling_gemma3.py: embeddings times sqrt(hidden), (1 + w) RMSNorms, four per
layer, q/k norms, GeGLU with gelu_pytorch_tanh, scores scaled by query_pre_attn_scalar^-1/2,
sliding_attention layers with the window and rope_local_base_freq, full_attention layers with
rope_theta). The model, the config handling, the safetensors reader and the seeded generator are
the repository's one PyTorch reference, packages/conformance/python/dda_reference.py (the float64
fixtures' `Decoder`, here in float32); it needs the checkout (w3-gpu.sh runs this file from one),
Python's standard library, numpy and torch, and no Node.

    real-size-gradients.py FOLDER --n 4 --seq 512 --rank 16 [--threads 1] [--device cpu|cuda]
        [--rows-only 1] [--reps 1]
    real-size-gradients.py --random NAME [--layers L] ...   (no folder: NAME one of
        dda_reference.PUBLISHED_CONFIGS, e.g. tinyllama-1.1b, qwen2-0.5b, llama3.2-1b, qwen3-0.6b,
        gemma-3-1b; the same seeded weights writeRandomModelFolder writes, made here, BF16-rounded;
        for machines without Node, e.g. a GPU machine)

The LoRA adapters (rank R, alpha 2R, on q, k, v, o, gate, up, down of every layer) and the token
ids are the same as the Node side's: A and B uniform on ±0.05 from fillUniformStream (seed 7),
token k of example e = (k² · 7919 + k · 104729 + 13 + e · 31337) mod vocab. The loss is on the
second half of each sequence. --rows-only 1 projects only the loss rows onto the vocabulary (as
the onnxruntime engine does); 0 projects every row, as a plain implementation does.
Prints one JSON line: examples/s (fastest of the reps), the loss of example 0, peak RSS.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages", "conformance", "python"))
import dda_reference as ref  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder", nargs="?")
    p.add_argument("--random", help="make the weights here instead of reading a folder: one of dda_reference.PUBLISHED_CONFIGS")
    p.add_argument("--layers", type=int, default=0, help="with --random: fewer layers (default: all)")
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--rows-only", type=int, default=1)
    p.add_argument("--reps", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    t_load = time.perf_counter()
    if a.random:
        if a.random not in ref.PUBLISHED_CONFIGS:
            p.error(f"--random {a.random}: one of {', '.join(ref.PUBLISHED_CONFIGS)}")
        cfg = dict(ref.PUBLISHED_CONFIGS[a.random], **({"num_hidden_layers": a.layers} if a.layers else {}))
    elif a.folder:
        cfg, weights = ref.read_model_folder(a.folder)
    else:
        p.error("give a model FOLDER or --random NAME")
    try:
        arch = ref.Arch.from_hf(cfg)
    except ValueError as e:
        p.error(str(e))
    if a.random:
        # As writeRandomModelFolder(dir, {model, seed: 0, dtype: 'BF16', init: {normNoise: 0.1, biasNoise: 0.02}}).
        weights = ref.uniform_weights(arch, 0, std=0.02, norm_noise=0.1, bias_noise=0.02, dtype="BF16")
    w = {k: v.to(dev) for k, v in weights.items()}
    del weights
    load_s = time.perf_counter() - t_load
    lora = {k: v.to(dev).requires_grad_(True) for k, v in ref.uniform_lora(arch, ref.TARGETS, a.rank, 7, 0.05).items()}
    params = list(lora.values())
    model = ref.Decoder(arch, w, lora, scaling=2.0, dtype=torch.float32)  # alpha / rank = 2
    T = a.seq

    def loss_of(tokens):
        return model.tail_loss(tokens, T // 2, rows_only=bool(a.rows_only))

    data = [torch.tensor([(k * k * 7919 + k * 104729 + 13 + e * 31337) % arch.vocab for k in range(T)], device=dev) for e in range(a.n + 1)]
    t0 = time.perf_counter()
    first = data[0]
    loss0 = float(loss_of(first))
    for _ in range(2):  # warm-up: two passes, as the Node side
        torch.autograd.grad(loss_of(first), params)
    ref.synchronize(dev)
    warm_s = time.perf_counter() - t0
    times = []
    cpu0 = time.process_time()
    for _ in range(a.reps):
        ref.synchronize(dev)
        start = time.perf_counter()
        for t in data[1:]:
            g = torch.autograd.grad(loss_of(t), params)
            torch.cat([x.flatten() for x in g])
        ref.synchronize(dev)
        times.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu0
    rows = ", loss rows only" if a.rows_only else ""
    where = f"{a.device}" + (f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else f", {a.threads} threads")
    print(json.dumps({
        "engine": f"pytorch {torch.__version__} {where}{rows}", "examples_per_s": a.n / min(times), "seconds": times,
        "examples_per_cpu_s": a.reps * a.n / cpu, "load_s": load_s, "warm_up_s": warm_s, "loss0": loss0,
        "lora_dim": sum(x.numel() for x in params), "blas": ref.loaded_blas(),
        "device_matmul_gflops": max(ref.matmul_gflops(8192 if dev.type == "cuda" else 2048, dev)), "peak_rss_mb": ref.peak_rss_mb(),
        **({"cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20)} if dev.type == "cuda" else {}),
    }))


if __name__ == "__main__":
    main()

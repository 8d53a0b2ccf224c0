#!/usr/bin/python3
"""PyTorch reference for benchmarks/speed/real-size-gradients.mjs (W3, W4) and
benchmarks/gpu/w3-gpu.sh: per-example LoRA gradients of the response-token loss of a Hugging
Face model folder (LLaMA / Qwen2 / Mistral architecture: GQA, q/k/v biases, tied embeddings,
sliding window), one example at a time, float32, on the CPU or a CUDA device. Self-contained
(Python standard library and torch only): it reads config.json and the safetensors files itself.

    real-size-gradients.py FOLDER --n 4 --seq 512 --rank 16 [--threads 1] [--device cpu|cuda]
        [--rows-only 1] [--reps 1]
    real-size-gradients.py --random tinyllama-1.1b|qwen2-0.5b [--layers L] ...   (no folder: the
        same seeded weights writeRandomModelFolder writes, made here, BF16-rounded; for machines
        without Node, e.g. a GPU machine)

The LoRA adapters (rank R, alpha 2R, on q, k, v, o, gate, up, down of every layer) and the token
ids are the same as the Node side's: A and B uniform on ±0.05 from fillUniformStream (seed 7),
token k of example e = (k² · 7919 + k · 104729 + 13 + e · 31337) mod vocab. The loss is on the
second half of each sequence. --rows-only 1 projects only the loss rows onto the vocabulary (as
the onnxruntime engine does); 0 projects every row, as a plain implementation does.
Prints one JSON line: examples/s (fastest of the reps), the loss of example 0, peak RSS.
The generator below repeats packages/model/test/fixtures/make-real-parity-fixtures.py's on
purpose: this file is copied alone to GPU machines (benchmarks/gpu/).
"""
import argparse
import json
import math
import os
import resource
import struct
import time

import numpy as np
import torch

M32 = 0xFFFFFFFF
TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


def mix32_scalar(x):
    x &= M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    return x ^ (x >> 16)


def mix32(x):
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def fnv1a32(s):
    h = 0x811C9DC5
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & M32
    return h


def uniform_stream(seed, name, center, half, n):
    """Values 0..n-1 of fillUniformStream(seed, name, center, half) (packages/model/src/real-models.ts), bit for bit."""
    return uniform_stream_from(seed, name, center, half, 0, n)


def read_safetensors(path):
    """Every tensor of one safetensors file as a float32 torch tensor (F32, F16, BF16)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            f.seek(base + start)
            raw = bytearray(f.read(end - start))
            dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[info["dtype"]]
            out[name] = torch.frombuffer(raw, dtype=dt).reshape(info["shape"]).float() if raw else torch.zeros(info["shape"])
    return out


# The published config.json fields the model needs (TinyLlama/TinyLlama-1.1B-Chat-v1.0, Qwen/Qwen2-0.5B).
CONFIGS = {
    "tinyllama-1.1b": dict(model_type="llama", hidden_size=2048, num_attention_heads=32, num_key_value_heads=4, intermediate_size=5632,
                           vocab_size=32000, num_hidden_layers=22, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, attention_bias=False),
    "qwen2-0.5b": dict(model_type="qwen2", hidden_size=896, num_attention_heads=14, num_key_value_heads=2, intermediate_size=4864,
                       vocab_size=151936, num_hidden_layers=24, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True, attention_bias=True),
}


def random_model(name, layers, seed=0, std=0.02, norm_noise=0.1, bias_noise=0.02):
    """(config, weights) as writeRandomModelFolder(dir, {model: name, seed, dtype: 'BF16', init}) writes them
    (randomWeightSources: uniform ±std·√3 for embeddings and linear maps, 1 ± norm_noise, 0 ± bias_noise)."""
    cfg = dict(CONFIGS[name])
    if layers:
        cfg["num_hidden_layers"] = layers
    d, H, KV, F, V = (cfg[k] for k in ("hidden_size", "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size"))
    kvd = d // H * KV
    specs = [("model.embed_tokens.weight", (V, d), "normal")]
    for i in range(cfg["num_hidden_layers"]):
        specs.append((f"model.layers.{i}.input_layernorm.weight", (d,), "ones"))
        for t, shape in (("q", (d, d)), ("k", (kvd, d)), ("v", (kvd, d)), ("o", (d, d))):
            specs.append((f"model.layers.{i}.self_attn.{t}_proj.weight", shape, "normal"))
            if cfg["attention_bias"] and t != "o":
                specs.append((f"model.layers.{i}.self_attn.{t}_proj.bias", (shape[0],), "zeros"))
        specs.append((f"model.layers.{i}.post_attention_layernorm.weight", (d,), "ones"))
        for t, shape in (("gate", (F, d)), ("up", (F, d)), ("down", (d, F))):
            specs.append((f"model.layers.{i}.mlp.{t}_proj.weight", shape, "normal"))
    specs.append(("model.norm.weight", (d,), "ones"))
    if not cfg["tie_word_embeddings"]:
        specs.append(("lm_head.weight", (V, d), "normal"))
    w = {}
    for n, shape, kind in specs:
        center, half = {"normal": (0.0, std * math.sqrt(3)), "ones": (1.0, norm_noise), "zeros": (0.0, bias_noise)}[kind]
        size = int(np.prod(shape))
        values = np.concatenate([uniform_stream_from(seed, n, center, half, s, min(size, s + (1 << 24))) for s in range(0, size, 1 << 24)])
        w[n] = torch.from_numpy(values).reshape(shape).to(torch.bfloat16).float()
    return cfg, w


def uniform_stream_from(seed, name, center, half, start, end):
    """Values start..end-1 of fillUniformStream(seed, name, center, half)."""
    a = mix32_scalar(fnv1a32(name) ^ mix32_scalar(seed))
    b = mix32_scalar(a + 0x9E3779B9)
    k = np.arange(start, end, dtype=np.uint32)
    with np.errstate(over="ignore"):
        h = mix32(mix32(k ^ np.uint32(a)) ^ np.uint32(b))
    u = ((h >> np.uint32(8)).astype(np.float64) - 8388608.0) / 8388608.0
    return (center + half * u).astype(np.float32)


def device_matmul_gflops(dev):
    """Best torch.mm GFLOP/s at n = 8192 (a GPU) or 2048 (the CPU) on this device, float32."""
    n = 8192 if dev.type == "cuda" else 2048
    x, y = torch.rand(n, n, device=dev), torch.rand(n, n, device=dev)
    torch.mm(x, y)
    best = float("inf")
    for _ in range(5):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        torch.mm(x, y)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def read_folder(folder):
    files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    w = {}
    for f in files:
        w.update(read_safetensors(os.path.join(folder, f)))
    return w


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder", nargs="?")
    p.add_argument("--random", help="make the weights here instead of reading a folder: tinyllama-1.1b or qwen2-0.5b")
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
        cfg, weights = random_model(a.random, a.layers)
    elif a.folder:
        cfg, weights = json.load(open(os.path.join(a.folder, "config.json"))), read_folder(a.folder)
    else:
        p.error("give a model FOLDER or --random NAME")
    d, H, KV, F, V, L = (cfg[k] for k in ("hidden_size", "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size", "num_hidden_layers"))
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    tied = cfg.get("tie_word_embeddings", False)
    window = cfg.get("sliding_window") if cfg.get("model_type") == "mistral" or cfg.get("use_sliding_window") else None
    hd = d // H
    w = {k: v.to(dev) for k, v in weights.items()}
    del weights
    load_s = time.perf_counter() - t_load
    head = w["model.embed_tokens.weight"] if tied else w["lm_head.weight"]
    shapes = {"q": (d, d), "k": (KV * hd, d), "v": (KV * hd, d), "o": (d, d), "gate": (F, d), "up": (F, d), "down": (d, F)}
    mod = lambda i, t: f"model.layers.{i}.self_attn.{t}_proj" if t in ("q", "k", "v", "o") else f"model.layers.{i}.mlp.{t}_proj"
    lora, params = {}, []
    for i in range(L):
        for t in TARGETS:
            o, n = shapes[t]
            pa = f"base_model.model.{mod(i, t)}.lora_A.weight"
            pb = f"base_model.model.{mod(i, t)}.lora_B.weight"
            A = torch.from_numpy(uniform_stream(7, pa, 0.0, 0.05, a.rank * n)).reshape(a.rank, n).to(dev).requires_grad_(True)
            B = torch.from_numpy(uniform_stream(7, pb, 0.0, 0.05, o * a.rank)).reshape(o, a.rank).to(dev).requires_grad_(True)
            lora[(i, t)] = (A, B)
            params += [A, B]
    scale = 2.0  # alpha / rank = 2
    T = a.seq
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, device=dev).float() / hd))
    fr = torch.outer(torch.arange(T, device=dev).float(), inv)
    cos, sin = torch.cat((fr, fr), -1).cos(), torch.cat((fr, fr), -1).sin()
    ii, jj = torch.arange(T, device=dev).unsqueeze(1), torch.arange(T, device=dev).unsqueeze(0)
    allowed = (jj <= ii) & ((ii - jj < window) if window else torch.ones_like(ii, dtype=torch.bool))
    mask = torch.zeros(T, T, device=dev).masked_fill(~allowed, float("-inf"))

    def rms(x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rot(x):
        return torch.cat((-x[..., hd // 2:], x[..., : hd // 2]), -1)

    def lin(i, t, x):
        m = mod(i, t)
        y = x @ w[f"{m}.weight"].T
        if f"{m}.bias" in w:
            y = y + w[f"{m}.bias"]
        A, B = lora[(i, t)]
        return y + (x @ A.T @ B.T) * scale

    def loss_of(tokens):
        x = w["model.embed_tokens.weight"][tokens]
        for i in range(L):
            h = rms(x, w[f"model.layers.{i}.input_layernorm.weight"])
            q = lin(i, "q", h).view(T, H, hd).transpose(0, 1)
            k = lin(i, "k", h).view(T, KV, hd).transpose(0, 1)
            v = lin(i, "v", h).view(T, KV, hd).transpose(0, 1)
            q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
            k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
            att = ((q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask).softmax(-1)
            x = x + lin(i, "o", (att @ v).transpose(0, 1).reshape(T, d))
            h2 = rms(x, w[f"model.layers.{i}.post_attention_layernorm.weight"])
            x = x + lin(i, "down", torch.nn.functional.silu(lin(i, "gate", h2)) * lin(i, "up", h2))
        if a.rows_only:
            logits = rms(x[T // 2: -1], w["model.norm.weight"]) @ head.T
            return torch.nn.functional.cross_entropy(logits, tokens[T // 2 + 1:])
        logits = rms(x, w["model.norm.weight"]) @ head.T
        return torch.nn.functional.cross_entropy(logits[T // 2: -1], tokens[T // 2 + 1:])

    data = [torch.tensor([(k * k * 7919 + k * 104729 + 13 + e * 31337) % V for k in range(T)], device=dev) for e in range(a.n + 1)]
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    first = data[0]
    loss0 = float(loss_of(first))
    for _ in range(2):  # warm-up: two passes, as the Node side
        torch.autograd.grad(loss_of(first), params)
    sync()
    warm_s = time.perf_counter() - t0
    times = []
    cpu0 = time.process_time()
    for _ in range(a.reps):
        sync()
        start = time.perf_counter()
        for t in data[1:]:
            g = torch.autograd.grad(loss_of(t), params)
            torch.cat([x.flatten() for x in g])
        sync()
        times.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu0
    rows = ", loss rows only" if a.rows_only else ""
    where = f"{a.device}" + (f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else f", {a.threads} threads")
    print(json.dumps({
        "engine": f"pytorch {torch.__version__} {where}{rows}", "examples_per_s": a.n / min(times), "seconds": times,
        "examples_per_cpu_s": a.reps * a.n / cpu, "load_s": load_s, "warm_up_s": warm_s, "loss0": loss0,
        "lora_dim": sum(x.numel() for x in params), "device_matmul_gflops": device_matmul_gflops(dev), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **({"cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20)} if dev.type == "cuda" else {}),
    }))


if __name__ == "__main__":
    main()

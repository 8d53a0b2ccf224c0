import { DdaError } from '@dda/core';

/**
 * Shape of a LLaMA-style decoder (RMSNorm, RoPE, SwiGLU, causal attention). Field meanings follow
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
  readonly rmsNormEps: number;
  /** Longest sequence (prompt + response) the model accepts. */
  readonly maxSeqLen: number;
  /** Share the input embedding with the output projection (`tie_word_embeddings`). */
  readonly tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (Qwen2). */
  readonly attentionBias: boolean;
  /** Sliding-window attention span in tokens (Mistral); null = full causal attention. */
  readonly slidingWindow: number | null;
}

/** Which linear maps carry LoRA adapters. */
export type LoraTarget = 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';
export const ALL_LORA_TARGETS: readonly LoraTarget[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];

/** LoRA adapters (PEFT conventions): ΔW = (alpha / rank) · B·A, A ~ N(0, 1/rank²)·, B = 0 at init. */
export interface LoraConfig {
  readonly rank: number;
  readonly alpha: number;
  readonly targets: readonly LoraTarget[];
}

/** Throws a DdaError naming the first inconsistent field. */
export function validateDecoderConfig(c: DecoderConfig): void {
  const positiveInts: (keyof DecoderConfig)[] = ['vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'intermediateSize', 'maxSeqLen'];
  for (const k of positiveInts) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new DdaError(`model config: '${k}' must be a positive integer, got ${String(v)}`);
  }
  if (c.hiddenSize % c.numHeads !== 0) throw new DdaError(`model config: hiddenSize ${c.hiddenSize} is not divisible by numHeads ${c.numHeads}`);
  if ((c.hiddenSize / c.numHeads) % 2 !== 0) throw new DdaError(`model config: head size ${c.hiddenSize / c.numHeads} must be even for RoPE`);
  if (c.numHeads % c.numKvHeads !== 0) throw new DdaError(`model config: numHeads ${c.numHeads} is not a multiple of numKvHeads ${c.numKvHeads}`);
  if (!(c.ropeTheta > 0)) throw new DdaError(`model config: ropeTheta must be > 0`);
  if (!(c.rmsNormEps > 0)) throw new DdaError(`model config: rmsNormEps must be > 0`);
  if (c.slidingWindow !== null && !(Number.isInteger(c.slidingWindow) && c.slidingWindow > 0)) {
    throw new DdaError(`model config: slidingWindow must be a positive integer or null`);
  }
}

export function validateLoraConfig(l: LoraConfig): void {
  if (!Number.isInteger(l.rank) || l.rank <= 0) throw new DdaError(`LoRA: rank must be a positive integer, got ${l.rank}`);
  if (!(l.alpha > 0)) throw new DdaError(`LoRA: alpha must be > 0, got ${l.alpha}`);
  if (l.targets.length === 0) throw new DdaError('LoRA: no target modules', `choose some of ${ALL_LORA_TARGETS.join(', ')}`);
  for (const t of l.targets) if (!ALL_LORA_TARGETS.includes(t)) throw new DdaError(`LoRA: unknown target '${t}'`, `choose from ${ALL_LORA_TARGETS.join(', ')}`);
}

/** Head size (hiddenSize / numHeads). */
export const headDim = (c: DecoderConfig): number => c.hiddenSize / c.numHeads;

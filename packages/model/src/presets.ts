import { existsSync, statSync } from 'node:fs';
import { DdaError } from '@dda/core';
import type { DecoderConfig, LoraConfig } from './config.js';
import { ALL_LORA_TARGETS } from './config.js';
import { type ModelFamily, inferFamily } from './hf-config.js';
import { CONFIG_FILE, loadModelFolder } from './model-folder.js';
import type { PresetTokenizerName } from './preset-tokenizers.js';
import type { Tokenizer } from './tokenizer.js';
import type { TensorMap } from './weights.js';

/**
 * Tiny configurations of the supported families, small enough to pretrain and fine-tune on a
 * CPU in minutes (64 wide, 2 layers, 4 heads; about the same cost each). `vocabSize` is filled
 * in from the tokenizer built on the data. The family of each is {@link inferFamily} of it.
 */
export const TINY_PRESETS: Record<string, Omit<DecoderConfig, 'vocabSize'>> = {
  /** LLaMA2 style: multi-head attention, no biases, RoPE θ = 1e4, untied embeddings. */
  'llama2-tiny': {
    hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 172,
    ropeTheta: 10000, rmsNormEps: 1e-5, maxSeqLen: 160, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null,
  },
  /** Qwen2 style: grouped-query attention (4 query / 2 key-value heads), q/k/v biases, tied embeddings, RoPE θ = 1e6. */
  'qwen2-tiny': {
    hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 172,
    ropeTheta: 1e6, rmsNormEps: 1e-6, maxSeqLen: 160, tieWordEmbeddings: true, attentionBias: true, slidingWindow: null,
  },
  /** Mistral style: grouped-query attention (4 / 2 heads), sliding-window attention over 32 tokens, RoPE θ = 1e6. */
  'mistral-tiny': {
    hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 172,
    ropeTheta: 1e6, rmsNormEps: 1e-5, maxSeqLen: 160, tieWordEmbeddings: false, attentionBias: false, slidingWindow: 32,
  },
  /**
   * Llama-3.2 style: grouped-query attention (4 query / 2 key-value heads), tied embeddings, and
   * Llama-3.2's RoPE: θ = 5e5 with the llama3 scaling (factor 32, low / high frequency factors 1 / 4,
   * original context 8192), as in meta-llama/Llama-3.2-1B's config.json.
   */
  'llama3-tiny': {
    hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 172, ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    rmsNormEps: 1e-5, maxSeqLen: 160, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null,
  },
  /**
   * Qwen3 style: q/k RMSNorm per head, head size 32 (4 heads · 32 = twice the width, as Qwen3-0.6B's
   * 16 · 128 = 2 · 1024; its attention maps are twice the others'), grouped-query attention (4 / 2
   * heads), no biases, tied embeddings, RoPE θ = 1e6.
   */
  'qwen3-tiny': {
    hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 172, headDim: 32, qkNorm: true,
    ropeTheta: 1e6, rmsNormEps: 1e-6, maxSeqLen: 160, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null,
  },
  /**
   * Gemma-3 style (transformers' Gemma3ForCausalLM, as gemma-3-1b at tiny width): GeGLU (gelu_pytorch_tanh),
   * (1 + w) RMSNorms, four norms per layer, embeddings scaled by √64, q/k norms, 4 query heads of size
   * 32 sharing 1 key-value head, attention scaled by query_pre_attn_scalar 32^(−1/2), tied embeddings;
   * layer 0 attends within a 32-token sliding window with RoPE θ = 1e4, layer 1 to everything with θ = 1e6.
   */
  'gemma3-tiny': {
    hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 1, intermediateSize: 172, headDim: 32, qkNorm: true,
    hiddenAct: 'gelu_pytorch_tanh', gemmaNorms: true, queryPreAttnScalar: 32, layerTypes: ['sliding_attention', 'full_attention'],
    ropeTheta: 1e6, ropeLocalTheta: 1e4, rmsNormEps: 1e-6, maxSeqLen: 160, tieWordEmbeddings: true, attentionBias: false, slidingWindow: 32,
  },
};

/**
 * Small models of the LLaMA-2, Mistral and Qwen2 families with their real tokenizers
 * ({@link loadPresetTokenizer}), for benchmarks on real text (issue 28; docs/regime.md, section 3): 128
 * wide, 4 layers, 4 heads (Mistral and Qwen2: 2 key-value heads), MLP 344, a 512-token context.
 * About 9.0 M parameters for LLaMA-2 and Mistral (8.2 M of them the untied embedding and output
 * matrices of the 32,000-token vocabulary) and 20.2 M for Qwen2 (151,936 × 128 tied embeddings).
 * Mistral's sliding window is 256 tokens, half the context, so that it matters on long samples.
 */
export const MINI_PRESETS: Record<string, { readonly config: Omit<DecoderConfig, 'vocabSize'>; readonly tokenizer: PresetTokenizerName }> = {
  'llama2-mini': {
    tokenizer: 'llama2',
    config: {
      hiddenSize: 128, numLayers: 4, numHeads: 4, numKvHeads: 4, intermediateSize: 344,
      ropeTheta: 10000, rmsNormEps: 1e-5, maxSeqLen: 512, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null,
    },
  },
  'mistral-mini': {
    tokenizer: 'mistral',
    config: {
      hiddenSize: 128, numLayers: 4, numHeads: 4, numKvHeads: 2, intermediateSize: 344,
      ropeTheta: 1e6, rmsNormEps: 1e-5, maxSeqLen: 512, tieWordEmbeddings: false, attentionBias: false, slidingWindow: 256,
    },
  },
  'qwen2-mini': {
    tokenizer: 'qwen2',
    config: {
      hiddenSize: 128, numLayers: 4, numHeads: 4, numKvHeads: 2, intermediateSize: 344,
      ropeTheta: 1e6, rmsNormEps: 1e-6, maxSeqLen: 512, tieWordEmbeddings: true, attentionBias: true, slidingWindow: null,
    },
  },
};

/** The default LoRA of the demo: rank 8 on every linear map of every layer. */
export const DEFAULT_LORA: LoraConfig = { rank: 8, alpha: 16, targets: ALL_LORA_TARGETS };

/** What {@link resolveModelSpec} found: a preset (vocabulary still to be chosen) or a model folder. */
export type ModelSpec =
  | {
    readonly kind: 'preset';
    readonly name: string;
    readonly family: ModelFamily;
    readonly config: Omit<DecoderConfig, 'vocabSize'>;
    /** The real tokenizer of a {@link MINI_PRESETS} entry (load it with {@link loadPresetTokenizer}); absent for the tiny presets, whose word vocabulary is built from the data. */
    readonly tokenizer?: PresetTokenizerName;
  }
  | {
    readonly kind: 'folder';
    readonly dir: string;
    readonly family: ModelFamily;
    readonly config: DecoderConfig;
    /** Base weights if the folder has safetensors, else null (config only, accepted with `randomInit`: initialise from a seed). */
    readonly weights: TensorMap | null;
    /** The folder's tokenizer if it has a tokenizer.json, else null. */
    readonly tokenizer: Tokenizer | null;
  };

/** Options of {@link resolveModelSpec}. */
export interface ResolveModelOptions {
  /**
   * Accept a model folder that has a config.json but no weight files (its `weights` are then
   * null, for the caller to initialise from a seed). Default false: such a folder throws, so that a
   * model is never trained from scratch by mistake.
   */
  readonly randomInit?: boolean;
}

/**
 * A model by preset name (`llama2-tiny`, `qwen2-tiny`, `mistral-tiny`, `llama3-tiny`, `qwen3-tiny`,
 * `gemma3-tiny`; `llama2-mini`, `mistral-mini`, `qwen2-mini` with real tokenizers) or by the path of a folder
 * with a Hugging Face config.json, safetensors weights (required unless `o.randomInit`) and
 * optionally a tokenizer. Anything else throws a DdaError listing the presets; weights in a
 * format the loader cannot read throw with how to convert them ({@link loadModelFolder}).
 */
export function resolveModelSpec(nameOrPath: string, o: ResolveModelOptions = {}): ModelSpec {
  const preset = Object.hasOwn(TINY_PRESETS, nameOrPath) ? TINY_PRESETS[nameOrPath] : undefined;
  if (preset) return { kind: 'preset', name: nameOrPath, family: inferFamily({ ...preset, vocabSize: 1 }), config: preset };
  const mini = Object.hasOwn(MINI_PRESETS, nameOrPath) ? MINI_PRESETS[nameOrPath] : undefined;
  if (mini) return { kind: 'preset', name: nameOrPath, family: inferFamily({ ...mini.config, vocabSize: 1 }), config: mini.config, tokenizer: mini.tokenizer };
  if (!existsSync(nameOrPath) || !statSync(nameOrPath).isDirectory()) {
    throw new DdaError(
      `'${nameOrPath}' is neither a model preset nor a model folder`,
      `use one of the presets ${[...Object.keys(TINY_PRESETS), ...Object.keys(MINI_PRESETS)].join(', ')}, or the path of a folder with a Hugging Face ${CONFIG_FILE}`,
    );
  }
  const { dir, family, config, weights, tokenizer } = loadModelFolder(nameOrPath, { randomInit: o.randomInit ?? false });
  return { kind: 'folder', dir, family, config, weights, tokenizer };
}

import type { DecoderConfig, LoraConfig } from './config.js';
import { ALL_LORA_TARGETS } from './config.js';

/**
 * Tiny configurations of the supported families, small enough to pretrain and fine-tune on a
 * CPU in minutes. `vocabSize` is filled in from the tokenizer built on the data.
 */
export const TINY_PRESETS: Record<string, Omit<DecoderConfig, 'vocabSize'>> = {
  /** LLaMA2 style: multi-head attention, no biases, RoPE θ = 1e4, untied embeddings. */
  'llama2-tiny': {
    hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 172,
    ropeTheta: 10000, rmsNormEps: 1e-5, maxSeqLen: 160, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null,
  },
};

/** The default LoRA of the demo: rank 8 on every linear map of every layer. */
export const DEFAULT_LORA: LoraConfig = { rank: 8, alpha: 16, targets: ALL_LORA_TARGETS };

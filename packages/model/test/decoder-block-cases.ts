/**
 * The configs and weights that pin the engines' decoders bit for bit (issue 25): every family
 * feature (GQA, q/k/v biases, q/k norms with an explicit head size, Gemma-3's norms, GeGLU and
 * sliding/full layers, llama3 and linear RoPE scaling, sliding windows, tied and untied
 * embeddings), LoRA on every target and PEFT-style modules with their own ranks and scales.
 * Used by backend-onnxruntime's decoder-graph-hashes.test and backend-tfjs's forward-hashes.test;
 * the recorded hashes depend on every value here.
 */
import { ALL_LORA_TARGETS, type DecoderConfig, type LoraConfig } from '@dda/model';

const common = { vocabSize: 19, hiddenSize: 16, numLayers: 2, numHeads: 4, intermediateSize: 24, rmsNormEps: 1e-5, maxSeqLen: 64 };
export const PINNED_CONFIGS: Record<string, DecoderConfig> = {
  llama: { ...common, numKvHeads: 4, ropeTheta: 1e4, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null },
  'llama-gqa': { ...common, numKvHeads: 2, ropeTheta: 1e4, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null },
  qwen2: { ...common, numKvHeads: 2, ropeTheta: 1e6, tieWordEmbeddings: true, attentionBias: true, slidingWindow: null },
  mistral: { ...common, numKvHeads: 2, ropeTheta: 1e4, tieWordEmbeddings: false, attentionBias: false, slidingWindow: 3 },
  llama3: {
    ...common, numKvHeads: 2, ropeTheta: 1e4, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 },
  },
  qwen3: { ...common, numKvHeads: 2, ropeTheta: 1e6, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null, headDim: 6, qkNorm: true },
  gemma3: {
    ...common, numKvHeads: 2, ropeTheta: 1e6, ropeLocalTheta: 1e4, ropeScaling: { type: 'linear', factor: 2 }, tieWordEmbeddings: true, attentionBias: false,
    slidingWindow: 3, layerTypes: ['sliding_attention', 'full_attention'], headDim: 6, qkNorm: true, hiddenAct: 'gelu_pytorch_tanh', gemmaNorms: true, queryPreAttnScalar: 5,
  },
};
export const PINNED_LORA: LoraConfig = { rank: 4, alpha: 8, targets: ALL_LORA_TARGETS };
/** PEFT-style modules: some targets of some layers, each with its own rank and scale. */
export const PINNED_MODULES: LoraConfig = {
  rank: 4, alpha: 8, targets: ['q', 'v', 'down'],
  modules: [{ layer: 0, target: 'q', rank: 2, scale: 3 }, { layer: 1, target: 'v', rank: 4, scale: 0.5 }, { layer: 1, target: 'down', rank: 3, scale: 1.25 }],
};

/** Deterministic values of the s-th tensor `name` of a spec list, depending on nothing but the name, its index and the amplitude. */
export function pinnedValues(name: string, shape: readonly number[], s: number, amplitude: number): Float32Array {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let k = 0; k < data.length; k++) data[k] = Math.sin(0.7 * k + 1.3 * s + name.length) * amplitude;
  return data;
}

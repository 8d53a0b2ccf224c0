/** Shared fixtures of the onnxruntime engine's parity tests: a tokenizer, samples and the model families. */
import { SeededRandom } from '@dda/core';
import { ALL_LORA_TARGETS, WordTokenizer, initDecoderWeights, initLoraWeights, type DecoderConfig, type LoraConfig } from '@dda/model';
import { DecoderModel } from '@dda/backend-tfjs';

export const tok = WordTokenizer.fromCorpus(['the cat sat on a mat and the dog ran to the red house near a tree .']);
export const samples = [
  { id: 's1', prompt: 'the cat sat on', response: 'a mat .' },
  { id: 's2', prompt: 'the dog ran to the red', response: 'house near a tree and the cat sat .' },
  { id: 's3', prompt: 'a', response: 'dog .' },
];
const common = { vocabSize: tok.size, hiddenSize: 16, numLayers: 2, numHeads: 4, intermediateSize: 24, rmsNormEps: 1e-5, maxSeqLen: 64 };
export const FAMILIES: Record<string, DecoderConfig> = {
  'llama2-style': { ...common, numKvHeads: 4, ropeTheta: 1e4, tieWordEmbeddings: false, attentionBias: false, slidingWindow: null },
  'qwen2-style (GQA, q/k/v biases, tied embeddings)': { ...common, numKvHeads: 2, ropeTheta: 1e6, tieWordEmbeddings: true, attentionBias: true, slidingWindow: null },
  'mistral-style (GQA, sliding window 3)': { ...common, numKvHeads: 2, ropeTheta: 1e4, tieWordEmbeddings: false, attentionBias: false, slidingWindow: 3 },
  // Both RoPE frequencies scaled (one interpolated, one divided by the factor) within the 64-token context.
  'llama3-style (GQA, tied embeddings, llama3 RoPE scaling)': {
    ...common, numKvHeads: 2, ropeTheta: 1e4, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 },
  },
  'qwen3-style (q/k norms, head size 6 ≠ 16 / 4, GQA, tied embeddings)': { ...common, numKvHeads: 2, ropeTheta: 1e6, tieWordEmbeddings: true, attentionBias: false, slidingWindow: null, headDim: 6, qkNorm: true },
  // Layer 0 windowed (3 tokens, RoPE θ 1e4), layer 1 full (θ 1e6 with a linear scaling), Gemma's norms (randomized by randomModel), GeGLU.
  'gemma3-style (GeGLU, (1 + w) norms, four per layer, sliding + full layers, q/k norms)': {
    ...common, numKvHeads: 2, ropeTheta: 1e6, ropeLocalTheta: 1e4, ropeScaling: { type: 'linear', factor: 2 }, tieWordEmbeddings: true, attentionBias: false,
    slidingWindow: 3, layerTypes: ['sliding_attention', 'full_attention'], headDim: 6, qkNorm: true, hiddenAct: 'gelu_pytorch_tanh', gemmaNorms: true, queryPreAttnScalar: 5,
  },
};
export const LORA: LoraConfig = { rank: 4, alpha: 8, targets: ALL_LORA_TARGETS };

/** ‖got − want‖ / ‖want‖. */
export const relErr = (got: ArrayLike<number>, want: ArrayLike<number>): number => {
  let num = 0;
  let den = 0;
  for (let k = 0; k < want.length; k++) {
    num += (got[k]! - want[k]!) ** 2;
    den += want[k]! ** 2;
  }
  return Math.sqrt(num / den);
};

/** A model with random base weights, non-zero biases and Gemma norm offsets (so that they are exercised) and non-zero LoRA B (B = 0 would zero every A gradient). */
export function randomModel(config: DecoderConfig, seed: number): DecoderModel {
  const rng = new SeededRandom(seed + 100);
  const base = initDecoderWeights(config, seed);
  for (const [name, t] of base) if (name.endsWith('.bias')) t.data.forEach((_, k) => (t.data[k] = rng.normal() * 0.1));
  // Gemma's norm offsets start at 0 (the norms multiply by 1 + w): make them non-zero too.
  if (config.gemmaNorms) for (const [name, t] of base) if (name.endsWith('norm.weight')) t.data.forEach((_, k) => (t.data[k] = rng.normal() * 0.2));
  const lora = initLoraWeights(config, LORA, seed + 1);
  for (const [name, t] of lora) if (name.includes('lora_B')) t.data.forEach((_, k) => (t.data[k] = rng.normal() * 0.1));
  const model = new DecoderModel(config, tok, base);
  model.setLora(LORA, lora);
  return model;
}

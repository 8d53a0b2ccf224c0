/**
 * The PyTorch float64 references of the engine checks, shipped with this package and written by
 * `packages/model/test/fixtures/make-decoder-fixtures.py` from the Hugging Face model definitions,
 * not from any engine's code: `fixtures/decoder-fixtures.json`, one tiny decoder per family with a
 * LoRA adapter on every target, and `fixtures/real-width-fixtures.json`, decoders at the published
 * widths of real models; each with examples and their logits, losses and LoRA gradients. Any
 * engine's test, in this workspace or outside it, passes them as `references` of
 * `engineConformance` / `checkEngine`.
 */
import { readFileSync } from 'node:fs';
import { DdaError } from '@dda/core';
import {
  ALL_LORA_TARGETS, randomDecoderWeights, randomLoraWeights, realModelConfig,
  type DecoderConfig, type LoraConfig, type RandomInit, type RealConfigOverrides, type TensorMap,
} from '@dda/model';
import type { EngineReference } from './engine.js';

/** The fixture file's layout (PyTorch names and flattened float64 data). */
interface DecoderFixtures {
  rank: number;
  alpha: number;
  families: Record<string, {
    config: { vocab: number; d: number; layers: number; heads: number; kv: number; ffn: number; theta: number; bias: boolean; tied: boolean; window: number | null; head_dim?: number; qk_norm?: boolean };
    weights: Record<string, { shape: number[]; data: number[] }>;
    lora: Record<string, { shape: number[]; data: number[] }>;
    examples: { tokens: number[]; lossMask: number[]; loss: number; logits: number[]; loraGrads: Record<string, number[]> }[];
  }>;
}

const toMap = (o: Record<string, { shape: number[]; data: number[] }>): TensorMap =>
  new Map(Object.entries(o).map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));

/**
 * One {@link EngineReference} per family of the fixtures (LLaMA-2, Qwen2, Mistral and Qwen3 styles):
 * its decoder config (vocabulary and widths of a few dozen), base weights and rank-`rank` adapter
 * (float64 values rounded to float32), and examples with token ids, a loss mask [T − 1], the
 * reference's mean masked loss (nats/token), logits [T × V] and per-tensor LoRA gradients.
 *
 * @throws Error when the fixture file is missing or unreadable (a package installed without its `fixtures/`).
 */
export function decoderFixtureReferences(): EngineReference[] {
  const fx = JSON.parse(readFileSync(new URL('../fixtures/decoder-fixtures.json', import.meta.url), 'utf8')) as DecoderFixtures;
  return Object.entries(fx.families).map(([family, f]) => {
    const c = f.config;
    const config: DecoderConfig = {
      vocabSize: c.vocab, hiddenSize: c.d, numLayers: c.layers, numHeads: c.heads, numKvHeads: c.kv, intermediateSize: c.ffn,
      ropeTheta: c.theta, rmsNormEps: 1e-5, maxSeqLen: 32, tieWordEmbeddings: c.tied, attentionBias: c.bias, slidingWindow: c.window,
      ...(c.head_dim !== undefined ? { headDim: c.head_dim } : {}), ...(c.qk_norm ? { qkNorm: true } : {}),
    };
    return {
      name: `${family} (PyTorch float64, make-decoder-fixtures.py)`,
      config,
      weights: { base: toMap(f.weights), adapter: { config: { rank: fx.rank, alpha: fx.alpha, targets: ALL_LORA_TARGETS }, weights: toMap(f.lora) } },
      examples: f.examples.map((ex) => ({ tokens: ex.tokens, lossMask: ex.lossMask, loss: ex.loss, logits: ex.logits, grads: ex.loraGrads })),
    };
  });
}

/** real-width-fixtures.json's layout: the case's model and seeds, and the reference's outputs. */
interface RealWidthFixtures {
  vocab: number;
  cases: {
    name: string;
    layers: number;
    seed: number;
    overrides: { slidingWindow?: number };
    init: Required<RandomInit>;
    lora: LoraConfig & { seed: number; half: number };
    /** [flat index, float32 value] of a few entries of each base and LoRA tensor, as the reference made them. */
    weightChecks: Record<string, [number, number][]>;
    gradIndices: Record<string, number[]>;
    examples: { tokens: number[]; lossMask: number[]; loss: number; logits: number[]; loraGrads: Record<string, number[]> }[];
  }[];
}

/**
 * PyTorch float64 references at real widths (`fixtures/real-width-fixtures.json`): the published
 * configurations of `realModelConfig` (Qwen2-0.5B with 2 layers: 896 wide, 14 query / 2 key-value
 * heads of 64, MLP 4864, q/k/v biases, tied embeddings; Llama-3.2-1B with 1 layer: 2048 wide, 32 / 8
 * heads of 64, MLP 8192, llama3 RoPE scaling; Qwen3-0.6B with 1 layer: 1024 wide, 16 / 8 heads of
 * 128, q/k norms; gemma-3-270m with 2 sliding layers, the window set to 8 tokens: 640 wide, 4 / 1
 * heads of 256, (1 + w) norms, GeGLU), with a 128-id vocabulary (it sizes only the embeddings and
 * the output) and `maxSeqLen` 64; seeded weights (norms 1 ± 0.1, Qwen2's biases ± 0.05) and a rank-4
 * adapter (alpha 8) with A and B ≠ 0 on q, k, v, o, gate, up and down, made here from their seeds
 * with `randomDecoderWeights` / `randomLoraWeights` (the reference's counter-based generator, checked
 * on sampled values); two examples of 24 tokens each (the loss after 6 and after 14 prompt tokens)
 * with the full logits [24 × 128] and the gradient entries at 200 seeded indices of each LoRA tensor
 * (`gradIndices`).
 *
 * The `reference` check's tolerances apply: logits 1e-4 of the largest, loss 1e-5 relative, sampled
 * gradient entries 1e-4 of the largest sampled one. Both built-in engines (float32) are within
 * 3.2e-6, 1.7e-7 and 5.7e-6 of them (measured here); a wrong decoder is not: no llama3 RoPE scaling
 * moves the logits by 4.1e-3 of the largest, query heads on the wrong key-value heads by 1.3, no
 * q/k/v biases by 0.21, swapped layer norms by 0.16, q/k norms of 1 by 0.079, a doubled window by
 * 0.41 (plugins/backend-onnxruntime/test/real-width-reference-sensitivity.test.ts).
 * The weights are held in float32: 240 MB for Llama-3.2-1B's layer, 470 MB for all four.
 *
 * @param select which cases, by model name (`realModelConfig`'s): `only` these, or all `except` these; default all four.
 * @throws DdaError for an unknown name, or when a weight made here differs from the reference's (the
 *   generators disagree); Error when the fixture file is missing.
 */
export function realWidthReferences(select: { readonly only?: readonly string[]; readonly except?: readonly string[] } = {}): EngineReference[] {
  const fx = JSON.parse(readFileSync(new URL('../fixtures/real-width-fixtures.json', import.meta.url), 'utf8')) as RealWidthFixtures;
  const unknown = [...(select.only ?? []), ...(select.except ?? [])].filter((n) => !fx.cases.some((c) => c.name === n));
  if (unknown.length) throw new DdaError(`no real-width reference of ${unknown.join(', ')}`, `use some of ${fx.cases.map((c) => c.name).join(', ')}`);
  return fx.cases.filter((c) => (!select.only || select.only.includes(c.name)) && !select.except?.includes(c.name)).map((c) => {
    const overrides: RealConfigOverrides = { numLayers: c.layers, maxSeqLen: 64, ...(c.overrides.slidingWindow !== undefined ? { slidingWindow: c.overrides.slidingWindow } : {}) };
    const config: DecoderConfig = { ...realModelConfig(c.name, overrides).config, vocabSize: fx.vocab };
    const lora: LoraConfig = { rank: c.lora.rank, alpha: c.lora.alpha, targets: c.lora.targets };
    const [base, adapter] = [randomDecoderWeights(config, c.seed, c.init), randomLoraWeights(config, lora, c.lora.seed, c.lora.half)];
    for (const [n, checks] of Object.entries(c.weightChecks)) {
      const t = base.get(n) ?? adapter.get(n);
      for (const [i, v] of checks) {
        if (t?.data[i] !== v) throw new DdaError(`real-width reference ${c.name}: weight ${n}[${i}] is ${t?.data[i]} here, ${v} in the reference`, 'the seeded generator (fillUniformStream) or the weight names changed; regenerate the fixture');
      }
    }
    return {
      name: `${c.name} (${c.layers} layer${c.layers > 1 ? 's' : ''} at real widths, PyTorch float64, make-decoder-fixtures.py)`,
      config,
      weights: { base, adapter: { config: lora, weights: adapter } },
      examples: c.examples.map((ex) => ({ tokens: ex.tokens, lossMask: ex.lossMask, loss: ex.loss, logits: ex.logits, grads: ex.loraGrads, gradIndices: c.gradIndices })),
    };
  });
}

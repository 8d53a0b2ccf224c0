/**
 * The PyTorch float64 references of the engine checks, shipped with this package
 * (`fixtures/decoder-fixtures.json`, written by `packages/model/test/fixtures/make-decoder-fixtures.py`
 * from the Hugging Face model definitions, not from any engine's code): one tiny decoder per family
 * with a LoRA adapter on every target, and examples with their logits, losses and LoRA gradients.
 * Any engine's test, in this workspace or outside it, passes them as `references` of
 * `engineConformance` / `checkEngine`.
 */
import { readFileSync } from 'node:fs';
import { ALL_LORA_TARGETS, type DecoderConfig, type TensorMap } from '@dda/model';
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

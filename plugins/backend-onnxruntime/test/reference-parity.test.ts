/**
 * The onnxruntime engine against the independent PyTorch (float64) reference of
 * packages/model/test/fixtures/make-decoder-fixtures.py, directly (not through the tfjs engine):
 * the Qwen3-style tiny model (q/k RMSNorm per head with non-trivial weights, head size 6 with
 * hidden 16 and 4 heads, grouped-query attention, tied embeddings).
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALL_LORA_TARGETS, type DecoderConfig, type LoraConfig } from '@dda/model';
import { OnnxDecoder, startOnnxRuntime, type OnnxRuntimeBackend, type WeightMap } from '@dda/backend-onnxruntime';
import { relErr } from './fixtures.js';

interface Family {
  config: { vocab: number; d: number; layers: number; heads: number; kv: number; ffn: number; theta: number; bias: boolean; tied: boolean; window: number | null; head_dim?: number; qk_norm?: boolean };
  weights: Record<string, { shape: number[]; data: number[] }>;
  lora: Record<string, { shape: number[]; data: number[] }>;
  examples: { tokens: number[]; lossMask: number[]; loss: number; logits: number[]; loraGrads: Record<string, number[]> }[];
}
const fx = JSON.parse(readFileSync(new URL('../../../packages/conformance/fixtures/decoder-fixtures.json', import.meta.url), 'utf8')) as { rank: number; alpha: number; families: Record<string, Family> };
const toMap = (o: Record<string, { shape: number[]; data: number[] }>): WeightMap => new Map(Object.entries(o).map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));

describe.each(['qwen3'])('onnxruntime engine, %s-style decoder vs PyTorch reference', (name) => {
  const f = fx.families[name]!;
  const c = f.config;
  const config: DecoderConfig = {
    vocabSize: c.vocab, hiddenSize: c.d, numLayers: c.layers, numHeads: c.heads, numKvHeads: c.kv, intermediateSize: c.ffn,
    ropeTheta: c.theta, rmsNormEps: 1e-5, maxSeqLen: 32, tieWordEmbeddings: c.tied, attentionBias: c.bias, slidingWindow: c.window,
    ...(c.head_dim !== undefined ? { headDim: c.head_dim } : {}), ...(c.qk_norm ? { qkNorm: true } : {}),
  };
  const lora: LoraConfig = { rank: fx.rank, alpha: fx.alpha, targets: ALL_LORA_TARGETS };
  const encoded = f.examples.map((ex) => ({ tokens: Int32Array.from(ex.tokens), lossMask: Float32Array.from(ex.lossMask) }));
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  it('logits, response losses and per-example LoRA gradients (batched and one by one) agree to 1e-4 relative', async () => {
    for (const exampleBatch of [2, 1]) {
      const onnx = new OnnxDecoder(backend, config, lora, toMap(f.weights), toMap(f.lora), { exampleBatch });
      const grads = await onnx.perExampleGradients(encoded.map((_, i) => `ex${i}`), encoded, 'fixture');
      for (const [i, ex] of f.examples.entries()) {
        expect(relErr(await onnx.logits(encoded[i]!.tokens), ex.logits)).toBeLessThan(1e-4);
        expect(Math.abs((await onnx.loss(encoded[i]!)) - ex.loss) / ex.loss).toBeLessThan(1e-5);
        let off = 0;
        grads.parameterNames.forEach((n, k) => {
          const size = grads.parameterSizes[k]!;
          const ref = ex.loraGrads[n];
          expect(ref, n).toBeDefined();
          expect(relErr(grads.rows[i]!.subarray(off, off + size), ref!), `${name} ${n}`).toBeLessThan(1e-4);
          off += size;
        });
        expect(off).toBe(grads.rows[i]!.length);
      }
      await onnx.release();
    }
  });
});

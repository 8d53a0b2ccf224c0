import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALL_LORA_TARGETS, SPECIAL_TOKENS, WordTokenizer, loadModelFolder, readPeftAdapter, saveModelFolder, writePeftAdapter, type DecoderConfig, type TensorMap } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { maxRelErr as relErr } from '../../../packages/model/test/peft-variant-case.js';

// Fixtures made by make-decoder-fixtures.py with PyTorch (float64), an independent implementation.
interface Fx {
  rank: number;
  alpha: number;
  families: Record<string, {
    config: { vocab: number; d: number; layers: number; heads: number; kv: number; ffn: number; theta: number; bias: boolean; tied: boolean; window: number | null; head_dim?: number; qk_norm?: boolean };
    weights: Record<string, { shape: number[]; data: number[] }>;
    lora: Record<string, { shape: number[]; data: number[] }>;
    examples: { tokens: number[]; lossMask: number[]; loss: number; logits: number[]; loraGrads: Record<string, number[]> }[];
  }>;
}
const fx = JSON.parse(readFileSync(new URL('../../../packages/model/test/fixtures/decoder-fixtures.json', import.meta.url), 'utf8')) as Fx;

const toMap = (o: Record<string, { shape: number[]; data: number[] }>): TensorMap =>
  new Map(Object.entries(o).map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));

describe.each(Object.keys(fx.families))('%s-style decoder vs PyTorch reference', (family) => {
  const f = fx.families[family]!;
  let model: DecoderModel;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    const c = f.config;
    const config: DecoderConfig = {
      vocabSize: c.vocab, hiddenSize: c.d, numLayers: c.layers, numHeads: c.heads, numKvHeads: c.kv, intermediateSize: c.ffn,
      ropeTheta: c.theta, rmsNormEps: 1e-5, maxSeqLen: 32, tieWordEmbeddings: c.tied, attentionBias: c.bias, slidingWindow: c.window,
      ...(c.head_dim !== undefined ? { headDim: c.head_dim } : {}), ...(c.qk_norm ? { qkNorm: true } : {}),
    };
    const words = Array.from({ length: c.vocab - SPECIAL_TOKENS.length }, (_, i) => `w${i}`);
    model = new DecoderModel(config, new WordTokenizer([...SPECIAL_TOKENS, ...words]), toMap(f.weights));
    model.setLora({ rank: fx.rank, alpha: fx.alpha, targets: ALL_LORA_TARGETS }, toMap(f.lora));
  });

  it('logits agree to 1e-4 relative', () => {
    for (const ex of f.examples) expect(relErr(model.logits(ex.tokens), ex.logits)).toBeLessThan(1e-4);
  });

  it('saved as a Hugging Face folder and PEFT adapter, it loads back to the same family, config and reference logits', () => {
    const dir = mkdtempSync(join(tmpdir(), `dda-parity-${family}-`));
    try {
      saveModelFolder(dir, { config: model.config, weights: toMap(f.weights), tokenizer: model.tokenizer, maxShardBytes: 4096 });
      writePeftAdapter(join(dir, 'adapter'), model.loraConfig!, toMap(f.lora));
      const loaded = loadModelFolder(dir);
      expect(loaded.family).toBe(family === 'llama2' ? 'llama' : family);
      expect(loaded.config).toEqual(model.config);
      const adapter = readPeftAdapter(join(dir, 'adapter'), loaded.config);
      const m = new DecoderModel(loaded.config, loaded.tokenizer!, loaded.weights);
      m.setLora(adapter.config, adapter.weights);
      for (const ex of f.examples) expect(relErr(m.logits(ex.tokens), ex.logits)).toBeLessThan(1e-4);
      m.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('per-example losses and LoRA gradients agree to 1e-4 relative', () => {
    const enc = f.examples.map((ex) => ({ tokens: Int32Array.from(ex.tokens), lossMask: Float32Array.from(ex.lossMask) }));
    const losses = model.lossesEncoded(enc);
    const grads = model.perExampleGradientsEncoded(enc.map((_, i) => `ex${i}`), enc, 'lora', 'fixture');
    f.examples.forEach((ex, i) => {
      expect(Math.abs(losses[i]! - ex.loss) / ex.loss).toBeLessThan(1e-5);
      let off = 0;
      grads.parameterNames.forEach((name, k) => {
        const size = grads.parameterSizes[k]!;
        const ref = ex.loraGrads[name];
        expect(ref, name).toBeDefined();
        expect(relErr(grads.rows[i]!.subarray(off, off + size), ref!), `${family} ${name}`).toBeLessThan(1e-4);
        off += size;
      });
    });
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SPECIAL_TOKENS, TINY_PRESETS, WordTokenizer, engines, fillUniformStream, isNarrow, loraWeightSpecs, openModelFolder, parseAdapterConfig, storedBaseWeights, writeRandomModelFolder,
  type DecoderConfig, type DecoderEngine, type EncodedExample, type EngineAdapter, type TensorMap,
} from '@dda/model';
import { ENGINE_CHECKS, checkEngine } from '@dda/conformance';
import { registerOnnxEngine } from '../src/engine.js';

// The engine contract's narrow base weights on the onnxruntime engine (openNarrow): a BF16
// qwen2-tiny folder's stored tensors give the same bits as open at the widened float32 weights for
// losses, logits, hidden states, gradient rows, generation and a training epoch; weights() widens;
// what narrow weights cannot do is refused.
const config: DecoderConfig = { ...(TINY_PRESETS['qwen2-tiny'] as Omit<DecoderConfig, 'vocabSize'>), vocabSize: 96 };
const tokenizer = new WordTokenizer([...SPECIAL_TOKENS, ...Array.from({ length: config.vocabSize - SPECIAL_TOKENS.length }, (_, i) => `w${i}`)]);
const dir = mkdtempSync(join(tmpdir(), 'dda-engine-narrow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);
const example = (seed: number, n: number): EncodedExample => {
  const tokens = Int32Array.from({ length: n }, (_, k) => SPECIAL_TOKENS.length + ((seed * 13 + k * 7) % (config.vocabSize - SPECIAL_TOKENS.length)));
  return { tokens, lossMask: Float32Array.from({ length: n - 1 }, (_, k) => (k >= n / 2 ? 1 : 0)) };
};

let engine: DecoderEngine;
let float: TensorMap;
let adapter: EngineAdapter;
beforeAll(async () => {
  registerOnnxEngine();
  engine = (await engines.resolve({ backends: ['onnxruntime-cpu'] }, ['onnxruntime'])).value;
  writeRandomModelFolder(dir, { model: { family: 'qwen2', config }, seed: 2, dtype: 'BF16', init: { normNoise: 0.1, biasNoise: 0.02 } });
  float = openModelFolder(dir, { tokenizer: false }).weights.toTensorMap();
  const { config: lora } = parseAdapterConfig({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'o_proj', 'up_proj'] });
  adapter = {
    config: lora,
    weights: new Map(loraWeightSpecs(config, lora).map(({ name, shape }) => {
      const data = new Float32Array(shape[0] * shape[1]);
      fillUniformStream(4, name, 0, 0.1, 0, data);
      return [name, { shape, data }];
    })),
  };
});

const narrowBase = (): ReturnType<typeof storedBaseWeights> => storedBaseWeights(openModelFolder(dir, { tokenizer: false }).weights);

describe('onnxruntime openNarrow (narrow base weights in the engine contract)', () => {
  it('is offered, and every result is bit-identical to open at the widened float32 weights', async () => {
    expect(typeof engine.openNarrow).toBe('function');
    const base = narrowBase();
    expect([...base.values()].every(isNarrow)).toBe(true);
    const a = await engine.open(config, tokenizer, { base: float, adapter }, { trainable: 'lora' });
    const b = await engine.openNarrow!(config, tokenizer, { base, adapter }, { trainable: 'lora' });
    const es = [example(1, 9), example(2, 12)];
    for (const e of es) {
      expect(await b.loss(e)).toBe(await a.loss(e));
      expect(bits(await b.logits(e.tokens))).toEqual(bits(await a.logits(e.tokens)));
      expect(bits(await b.hiddenStates(e.tokens))).toEqual(bits(await a.hiddenStates(e.tokens)));
    }
    const rows = async (d: typeof a): Promise<Float32Array[]> => {
      const out: Float32Array[] = [];
      await d.forEachGradientRow(es, (i, row) => {
        out[i] = row.slice();
      });
      return out;
    };
    const [ra, rb] = [await rows(a), await rows(b)];
    ra.forEach((r, i) => expect(bits(rb[i]!)).toEqual(bits(r)));
    expect(ra[0]!.some((x) => x !== 0)).toBe(true);
    expect(b.gradientLayout()).toEqual(a.gradientLayout());
    // Generation's graphs take float32: a widened copy, the same tokens.
    const gen = { maxNewTokens: 5, limit: 16, eosId: -1 };
    expect(await b.generate([3, 9, 20], gen)).toEqual(await a.generate([3, 9, 20], gen));
    // weights() widens the narrow tensors: the float32 values, bit for bit.
    for (const [name, t] of b.weights().base) expect(bits(t.data)).toEqual(bits(float.get(name)!.data));
    // Training (float32 graphs, a widened copy): the same epoch losses and trained adapter.
    const train = { epochs: 1, learningRate: 1e-3, batchSize: 2, seed: 0 };
    expect(await b.train(es, train)).toEqual(await a.train(es, train));
    const [wa, wb] = [a.weights().adapter!.weights, b.weights().adapter!.weights];
    for (const [name, t] of wa) expect(bits(wb.get(name)!.data)).toEqual(bits(t.data));
    await a.release();
    await b.release();
  });

  it('refuses gradients over every base weight, setWeights of a narrow base tensor, a wrong element count and a non-finite value', async () => {
    const base = narrowBase();
    // (open and openNarrow check their arguments before returning the promise, and throw.)
    expect(() => engine.openNarrow!(config, tokenizer, { base, adapter: null })).toThrow(/need float32 base weights, but narrow ones were given/);
    const d = await engine.openNarrow!(config, tokenizer, { base, adapter }, { trainable: 'lora' });
    await expect(d.setWeights({ base: new Map([['model.norm.weight', float.get('model.norm.weight')!]]) })).rejects.toThrow(/held narrow .* setWeights takes float32 base tensors/);
    await d.release();
    const t = base.get('model.layers.0.mlp.up_proj.weight');
    if (!t || !isNarrow(t)) throw new Error('expected a narrow up_proj');
    const short = new Map(base).set('model.layers.0.mlp.up_proj.weight', { ...t, bits: t.bits.subarray(1) });
    expect(() => engine.openNarrow!(config, tokenizer, { base: short, adapter })).toThrow(/holds \d+ values for shape/);
    const inf = t.bits.slice();
    inf[5] = t.format === 'bf16' ? 0x7f80 : 0x7c00; // +Infinity in either format
    expect(() => engine.openNarrow!(config, tokenizer, { base: new Map(base).set('model.layers.0.mlp.up_proj.weight', { ...t, bits: inf }), adapter })).toThrow(/tensor 'model\.layers\.0\.mlp\.up_proj\.weight' holds Infinity at flat index 5/);
  });
});

describe("the conformance check 'narrow-base'", () => {
  const only = Object.fromEntries(ENGINE_CHECKS.filter((c) => c !== 'narrow-base').map((c) => [c, 'only narrow-base here']));
  it('passes onnxruntime, and catches an openNarrow whose weights are not the stored values', async () => {
    const ok = await checkEngine(engine, { presets: ['llama2-tiny', 'qwen2-tiny'], optOut: only });
    expect(ok.findings.find((f) => f.check === 'narrow-base')).toMatchObject({ status: 'pass', message: 'bf16 and f16 on llama2-tiny, qwen2-tiny' });
    // One bit flipped in the last layer's down_proj before the engine sees it.
    const broken: DecoderEngine = {
      ...engine,
      open: (c, t, w, o) => engine.open(c, t, w, o),
      openNarrow: (c, t, w, o) => {
        const name = `model.layers.${c.numLayers - 1}.mlp.down_proj.weight`;
        const x = w.base.get(name);
        if (!x || !isNarrow(x)) throw new Error('expected narrow weights');
        const bits = x.bits.slice();
        bits[0] = (bits[0] as number) ^ 1;
        return engine.openNarrow!(c, t, { ...w, base: new Map(w.base).set(name, { ...x, bits }) }, o);
      },
    };
    const bad = await checkEngine(broken, { presets: ['llama2-tiny'], optOut: only });
    expect(bad.findings.find((f) => f.check === 'narrow-base')).toMatchObject({ status: 'fail', message: expect.stringMatching(/^llama2-tiny, bf16: example 0's (loss|logits) /) });
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { startTfjsBackend } from '@dda/backend-tfjs';
import {
  BAKED_WEIGHTS_LIMIT_BYTES, OnnxDecoder, OnnxGenerator, OnnxTrainer, activationBytesPerExample, chooseBaseWeightPlacement, startOnnxRuntime,
  type OnnxRuntimeBackend, type WeightMap,
} from '@dda/backend-onnxruntime';
import { FAMILIES, LORA, randomModel, relErr, samples, tok } from './fixtures.js';

// Base weights fed at every run (what real-size models need: no 2 GiB protobuf limit) give what
// baked ones give, for gradients, logits, training and generation.
describe('base weights as graph inputs', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  it('auto bakes up to 256 MiB and feeds above; initializers over 2 GiB are refused', () => {
    const of = (bytes: number): WeightMap => new Map([['w', { shape: [bytes / 4], data: { byteLength: bytes } as Float32Array }]]);
    expect(chooseBaseWeightPlacement(of(1024))).toBe('initializers');
    expect(chooseBaseWeightPlacement(of(BAKED_WEIGHTS_LIMIT_BYTES))).toBe('initializers');
    expect(chooseBaseWeightPlacement(of(BAKED_WEIGHTS_LIMIT_BYTES + 4))).toBe('inputs');
    expect(chooseBaseWeightPlacement(of(1024), 'inputs')).toBe('inputs');
    expect(chooseBaseWeightPlacement(of(2 ** 30 * 1.5), 'initializers')).toBe('initializers');
    expect(() => chooseBaseWeightPlacement(of(2 ** 31), 'initializers')).toThrow(/2 GiB limit/);
  });

  for (const [family, config] of Object.entries(FAMILIES)) {
    it(`${family}: per-example LoRA gradients, losses and logits equal the baked graph's`, async () => {
      const model = randomModel(config, 41);
      const encoded = samples.map((s) => model.encode(s));
      const ids = samples.map((s) => s.id);
      const baked = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { intraOpNumThreads: 1 });
      const fed = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { intraOpNumThreads: 1, basePlacement: 'inputs' });
      expect(baked.basePlacement).toBe('initializers');
      expect(fed.basePlacement).toBe('inputs');
      const want = await baked.perExampleGradients(ids, encoded, 'x');
      const got = await fed.perExampleGradients(ids, encoded, 'x');
      got.rows.forEach((r, k) => {
        expect(r.some((x) => x !== 0)).toBe(true);
        expect(relErr(r, want.rows[k]!)).toBeLessThan(1e-6);
      });
      for (const e of encoded) {
        expect(await fed.loss(e)).toBeCloseTo(await baked.loss(e), 6);
        expect(relErr(await fed.logits(e.tokens), await baked.logits(e.tokens))).toBeLessThan(1e-6);
      }
      await baked.release();
      await fed.release();
      model.dispose();
    });
  }

  it('setWeights replaces fed base weights (a fresh decoder\'s rows); on 2 workers the rows equal one session\'s', async () => {
    const config = FAMILIES['llama2-style']!;
    const a = randomModel(config, 50);
    const b = randomModel(config, 51);
    const encoded = samples.map((s) => a.encode(s));
    const ids = samples.map((s) => s.id);
    const reused = new OnnxDecoder(backend, config, LORA, a.baseWeights(), a.loraWeights(), { basePlacement: 'inputs', intraOpNumThreads: 1 });
    await reused.perExampleGradients(ids, encoded, 'a');
    await reused.setWeights({ base: b.baseWeights(), lora: b.loraWeights() });
    const fresh = new OnnxDecoder(backend, config, LORA, b.baseWeights(), b.loraWeights(), { intraOpNumThreads: 1 });
    const want = await fresh.perExampleGradients(ids, encoded, 'b');
    (await reused.perExampleGradients(ids, encoded, 'b')).rows.forEach((r, k) => expect(relErr(r, want.rows[k]!)).toBeLessThan(1e-6));
    const pooled = new OnnxDecoder(backend, config, LORA, b.baseWeights(), b.loraWeights(), { basePlacement: 'inputs', workers: 2 });
    (await pooled.perExampleGradients(ids, encoded, 'b')).rows.forEach((r, k) => expect(relErr(r, want.rows[k]!)).toBeLessThan(1e-6));
    for (const d of [reused, fresh, pooled]) await d.release();
    a.dispose();
    b.dispose();
  });

  it('maxRunBytes splits a chunk into fewer examples per run, with the same rows and progress', async () => {
    const config = FAMILIES['qwen2-style (GQA, q/k/v biases, tied embeddings)']!;
    const model = randomModel(config, 52);
    const encoded = [...samples, ...samples].map((s) => model.encode(s));
    const ids = encoded.map((_, k) => `e${k}`);
    const longest = Math.ceil(Math.max(...encoded.map((e) => e.tokens.length)) / 16) * 16;
    const one = activationBytesPerExample(config, longest, longest / 2);
    // A head size wider than hidden / heads (Qwen3) widens the attention activations the estimate counts.
    expect(activationBytesPerExample({ ...config, headDim: 8 }, longest, longest / 2)).toBeGreaterThan(one);
    const wide = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { exampleBatch: 6, intraOpNumThreads: 1 });
    // Room for two examples of the longest length per run.
    const narrow = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { exampleBatch: 6, maxRunBytes: 2.5 * one, intraOpNumThreads: 1, basePlacement: 'inputs' });
    // By padded length (samples 1 and 3 pad to 16 tokens, sample 2 to 32), then position.
    expect(wide.runPlan(encoded)).toEqual([[0, 2, 3, 5, 1, 4]]);
    const plan = narrow.runPlan(encoded);
    expect(plan.flat()).toEqual([0, 2, 3, 5, 1, 4]);
    expect(plan.length).toBeGreaterThan(1);
    for (const run of plan) {
      const T = Math.max(...run.map((k) => Math.ceil(encoded[k]!.tokens.length / 16) * 16));
      expect(run.length === 1 || run.length * activationBytesPerExample(config, T, T / 2) <= 2.5 * one).toBe(true);
    }
    expect(plan.at(-1)).toEqual([1, 4]); // two of the longest fit, three would not
    const want = await wide.perExampleGradients(ids, encoded, 'x');
    const ticks: number[] = [];
    const got = await narrow.perExampleGradients(ids, encoded, 'x', (n) => ticks.push(n));
    expect(ticks).toEqual([1, 2, 3, 4, 5, 6]);
    got.rows.forEach((r, k) => expect(relErr(r, want.rows[k]!)).toBeLessThan(1e-5));
    expect(() => new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { maxRunBytes: 0 })).toThrow(/maxRunBytes/);
    await wide.release();
    await narrow.release();
    model.dispose();
  });

  it('maxSessions releases the least recently used idle session; the results do not change', async () => {
    const config = FAMILIES['llama2-style']!;
    const model = randomModel(config, 55);
    const encoded = samples.map((s) => model.encode(s)); // three padded lengths with padMultiple 4
    const ids = samples.map((s) => s.id);
    const all = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { padMultiple: 4, exampleBatch: 1, intraOpNumThreads: 1 });
    const one = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { padMultiple: 4, exampleBatch: 1, intraOpNumThreads: 1, basePlacement: 'inputs', maxSessions: 1 });
    expect(all.maxSessions).toBe(Infinity);
    expect(new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { basePlacement: 'inputs' }).maxSessions).toBe(2);
    const want = await all.perExampleGradients(ids, encoded, 'x');
    expect(all.openSessions).toBe(3);
    for (let r = 0; r < 2; r++) {
      (await one.perExampleGradients(ids, encoded, 'x')).rows.forEach((row, k) => expect(relErr(row, want.rows[k]!)).toBeLessThan(1e-6));
      expect(one.openSessions).toBe(1);
      expect(await one.loss(encoded[1]!)).toBeGreaterThan(0);
      expect(one.openSessions).toBe(1);
    }
    expect(() => new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { maxSessions: 0 })).toThrow(/maxSessions/);
    await all.release();
    await one.release();
    model.dispose();
  });

  it('maxSessionBytes keeps the sessions of many shapes within a memory budget (baked weights too); the results do not change', async () => {
    const config = FAMILIES['llama2-style']!;
    const model = randomModel(config, 56);
    const encoded = samples.map((s) => model.encode(s)); // three padded lengths with padMultiple 4
    const ids = samples.map((s) => s.id);
    const all = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { padMultiple: 4, exampleBatch: 1, intraOpNumThreads: 1 });
    const want = await all.perExampleGradients(ids, encoded, 'x');
    expect(all.openSessions).toBe(3);
    expect(all.maxSessionBytes).toBe(4 * 2 ** 30);
    // A budget below any one session's estimate: each new shape releases the others (the newest is kept).
    const tight = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { padMultiple: 4, exampleBatch: 1, intraOpNumThreads: 1, maxSessionBytes: 1 });
    expect(tight.basePlacement).toBe('initializers');
    (await tight.perExampleGradients(ids, encoded, 'x')).rows.forEach((row, k) => expect(relErr(row, want.rows[k]!)).toBeLessThan(1e-6));
    expect(tight.openSessions).toBe(1);
    expect(() => new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { maxSessionBytes: 0 })).toThrow(/bytes of sessions/);
    await all.release();
    await tight.release();
    model.dispose();
  });

  for (const workers of [1, 2]) {
    it(`forEachGradientRow (${workers} worker${workers > 1 ? 's' : ''}) hands over perExampleGradients' rows one at a time, in order`, async () => {
      const config = FAMILIES['llama2-style']!;
      const model = randomModel(config, 54);
      const encoded = [...samples, ...samples, samples[0]!].map((s) => model.encode(s));
      const dec = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { workers, exampleBatch: 2, basePlacement: 'inputs', intraOpNumThreads: 1 });
      const want = await dec.perExampleGradients(encoded.map((_, k) => `e${k}`), encoded, 'x');
      const seen: number[] = [];
      const layout = await dec.forEachGradientRow(encoded, async (k, row) => {
        seen.push(k);
        await new Promise((r) => setTimeout(r, 1)); // a slow sink: later runs must wait for it
        expect(row).toEqual(want.rows[k]);
      });
      expect(seen).toEqual(dec.runPlan(encoded).flat());
      expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
      expect(layout).toEqual({ dim: want.dim, parameterNames: want.parameterNames, parameterSizes: want.parameterSizes });
      await dec.release();
      model.dispose();
    });
  }

  it('LoRA training and greedy generation with fed base weights give the baked ones\' results', async () => {
    const config = FAMILIES['mistral-style (GQA, sliding window 3)']!;
    const model = randomModel(config, 53);
    const encoded = samples.map((s) => model.encode(s));
    const lora = { config: LORA, weights: model.loraWeights() };
    const runs = [];
    for (const basePlacement of ['initializers', 'inputs'] as const) {
      const trainer = new OnnxTrainer(backend, config, 'lora', model.baseWeights(), lora, { basePlacement, intraOpNumThreads: 1 });
      expect(trainer.basePlacement).toBe(basePlacement);
      const losses = await trainer.train(encoded, { epochs: 2, batchSize: 2, seed: 3, learningRate: 1e-2 });
      const gen = new OnnxGenerator(backend, config, config.maxSeqLen, model.baseWeights(), lora, { basePlacement, intraOpNumThreads: 1 });
      const tokens = await gen.generate([tok.bosId ?? 1, ...tok.encode(samples[1]!.prompt)], { maxNewTokens: 8, eosId: -1 });
      runs.push({ losses, weights: trainer.trainedWeights(), tokens });
      await trainer.release();
      await gen.release();
    }
    const [a, b] = runs as [typeof runs[0], typeof runs[0]];
    b.losses.forEach((l, e) => expect(Math.abs(l - a.losses[e]!) / a.losses[e]!).toBeLessThan(1e-6));
    for (const [name, t] of a.weights) expect(relErr(b.weights.get(name)!.data, t.data), name).toBeLessThan(1e-5);
    expect(b.tokens).toHaveLength(8);
    expect(b.tokens).toEqual(a.tokens);
    model.dispose();
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { initDecoderWeights, type TensorMap } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { Adam, OnnxTrainer, lossPositionBucket, startOnnxRuntime, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';
import { FAMILIES, LORA, randomModel, relErr, samples, tok } from './fixtures.js';

// Seven samples in batches of 3: two full batches and one of 1, in an order shuffled from the seed.
const texts = [
  'the cat sat on a mat .', 'the dog ran to the red house .', 'a tree near the house .', 'the red dog sat on the mat and the cat ran .',
  'a cat .', 'the house near a tree and a dog .', 'the dog sat .',
];
const pretrain = texts.map((t, i) => ({ id: `p${i}`, prompt: '', response: t }));
const finetune = [...samples, ...texts.slice(0, 4).map((t, i) => ({ id: `f${i}`, prompt: 'the cat', response: t }))];
const OPTS = { epochs: 3, batchSize: 3, seed: 7 };

function expectWeightsClose(got: ReadonlyMap<string, { data: Float32Array }>, want: TensorMap, tol: number): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, t] of want) expect(relErr(got.get(name)!.data, t.data), name).toBeLessThan(tol);
}

describe('training on onnxruntime agrees with the tfjs trainer', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  for (const [family, config] of Object.entries(FAMILIES)) {
    it(`${family}: pretraining every parameter, per-epoch losses and final weights`, async () => {
      const init = initDecoderWeights(config, 11);
      const model = new DecoderModel(config, tok, init);
      const steps: number[] = [];
      const want = await model.train(pretrain, { ...OPTS, learningRate: 1e-2, parameters: 'all', onStep: (_, __, l) => steps.push(l) });
      const trainer = new OnnxTrainer(backend, config, 'all', init, null);
      const gotSteps: number[] = [];
      const epochs: number[] = [];
      const got = await trainer.train(pretrain.map((s) => model.encode(s)), {
        ...OPTS, learningRate: 1e-2, onStep: (step, total, l) => {
          expect(total).toBe(9);
          expect(step).toBe(gotSteps.length + 1);
          gotSteps.push(l);
        },
        onEpochEnd: (e) => void epochs.push(e),
      });
      expect(epochs).toEqual([1, 2, 3]);
      expect(want[2]!).toBeLessThan(want[0]!); // it learns
      got.forEach((l, e) => expect(Math.abs(l - want[e]!) / want[e]!).toBeLessThan(1e-5));
      gotSteps.forEach((l, k) => expect(Math.abs(l - steps[k]!) / steps[k]!).toBeLessThan(1e-5));
      expectWeightsClose(trainer.trainedWeights(), model.baseWeights(), 1e-4);
      await trainer.release();
      model.dispose();
    });

    it(`${family}: LoRA fine-tuning, per-epoch losses and final adapters`, async () => {
      const model = randomModel(config, 3);
      const base = model.baseWeights();
      const lora = model.loraWeights();
      const want = await model.train(finetune, { ...OPTS, learningRate: 5e-3, parameters: 'lora' });
      const trainer = new OnnxTrainer(backend, config, 'lora', base, { config: LORA, weights: lora });
      const got = await trainer.train(finetune.map((s) => model.encode(s)), { ...OPTS, learningRate: 5e-3 });
      got.forEach((l, e) => expect(Math.abs(l - want[e]!) / want[e]!).toBeLessThan(1e-5));
      expectWeightsClose(trainer.trainedWeights(), model.loraWeights(), 1e-4);
      await trainer.release();
      model.dispose();
    });
  }

  it('full fine-tuning with LoRA adapters present trains the base and leaves the adapters fixed', async () => {
    const config = FAMILIES['qwen2-style (GQA, q/k/v biases, tied embeddings)']!;
    const model = randomModel(config, 5);
    const base = model.baseWeights();
    const lora = model.loraWeights();
    const want = await model.train(finetune, { ...OPTS, learningRate: 5e-3, parameters: 'all' });
    const trainer = new OnnxTrainer(backend, config, 'all', base, { config: LORA, weights: lora });
    const got = await trainer.train(finetune.map((s) => model.encode(s)), { ...OPTS, learningRate: 5e-3 });
    got.forEach((l, e) => expect(Math.abs(l - want[e]!) / want[e]!).toBeLessThan(1e-5));
    expectWeightsClose(trainer.trainedWeights(), model.baseWeights(), 1e-4);
    for (const [name, t] of model.loraWeights()) expect(t.data, name).toEqual(lora.get(name)!.data);
    await trainer.release();
    model.dispose();
  });

  it('is deterministic, and two workers give the single session\'s result within float rounding', async () => {
    const config = FAMILIES['mistral-style (GQA, sliding window 3)']!;
    const init = initDecoderWeights(config, 2);
    const enc = pretrain.map((s) => ({ tokens: Int32Array.from(tok.encode(s.response).length ? [2, ...tok.encode(s.response), 3] : []), lossMask: new Float32Array(0) }))
      .map((e) => ({ tokens: e.tokens, lossMask: new Float32Array(e.tokens.length - 1).fill(1) }));
    const run = async (workers: number): Promise<{ losses: number[]; weights: Map<string, { data: Float32Array }> }> => {
      const t = new OnnxTrainer(backend, config, 'all', init, null, { workers, intraOpNumThreads: 1 });
      const losses = await t.train(enc, { ...OPTS, learningRate: 1e-2 });
      const weights = t.trainedWeights();
      await t.release();
      return { losses, weights };
    };
    const a = await run(1);
    const b = await run(1);
    expect(b.losses).toEqual(a.losses);
    for (const [n, t] of a.weights) expect(b.weights.get(n)!.data).toEqual(t.data);
    const w1 = await run(2);
    const w2 = await run(2);
    expect(w2.losses).toEqual(w1.losses);
    for (const [n, t] of w1.weights) expect(w2.weights.get(n)!.data).toEqual(t.data);
    w1.losses.forEach((l, e) => expect(Math.abs(l - a.losses[e]!) / a.losses[e]!).toBeLessThan(1e-5));
    for (const [n, t] of a.weights) expect(relErr(w1.weights.get(n)!.data, t.data), n).toBeLessThan(1e-4);
  });

  it('keeps its sessions within maxSessionBytes, with the same result as with every session kept', async () => {
    const config = FAMILIES['mistral-style (GQA, sliding window 3)']!;
    const init = initDecoderWeights(config, 2);
    const enc = pretrain.map((s) => [2, ...tok.encode(s.response), 3]).map((ids) => ({ tokens: Int32Array.from(ids), lossMask: new Float32Array(ids.length - 1).fill(1) }));
    const run = async (maxSessionBytes?: number): Promise<{ losses: number[]; weights: Map<string, { data: Float32Array }>; open: number[] }> => {
      const t = new OnnxTrainer(backend, config, 'all', init, null, { intraOpNumThreads: 1, padMultiple: 1, ...(maxSessionBytes ? { maxSessionBytes } : {}) });
      const open: number[] = [];
      const losses = await t.train(enc, { ...OPTS, learningRate: 1e-2, onStep: () => void open.push(t.openSessions) });
      const weights = t.trainedWeights();
      await t.release();
      return { losses, weights, open };
    };
    const kept = await run();
    // Padding to a multiple of 1 gives batches of several shapes: more than one session is kept by default.
    expect(Math.max(...kept.open)).toBeGreaterThan(1);
    // One byte: only the newest session is kept (it alone is larger than the budget).
    const bounded = await run(1);
    expect(Math.max(...bounded.open)).toBe(1);
    expect(bounded.losses).toEqual(kept.losses);
    for (const [n, t] of kept.weights) expect(bounded.weights.get(n)!.data, n).toEqual(t.data);
  });

  it('rejects an empty data set and a diverging run', async () => {
    const config = FAMILIES['llama2-style']!;
    const init = initDecoderWeights(config, 1);
    const t = new OnnxTrainer(backend, config, 'all', init, null);
    await expect(t.train([], { ...OPTS, learningRate: 1e-3 })).rejects.toThrow(/empty data set/);
    const enc = pretrain.map((s) => ({ tokens: Int32Array.from([2, ...tok.encode(s.response), 3]), lossMask: new Float32Array(tok.encode(s.response).length + 1).fill(1) }));
    await expect(t.train(enc, { ...OPTS, learningRate: 1e30 })).rejects.toThrow(/training diverged at epoch/);
    await t.release();
  });
});

describe('Adam as tfjs computes it', () => {
  it('matches a float64 Adam with ε on √v̂ to float32 rounding, and is exactly reproducible', () => {
    const p = Float32Array.of(0.5, -1, 2, 0);
    const g = [Float32Array.of(0.1, -0.2, 0, 3), Float32Array.of(-0.1, 0.05, 0, 1)];
    const adam = new Adam([4], 0.01);
    const ref = Float64Array.from(p);
    const m = new Float64Array(4);
    const v = new Float64Array(4);
    g.forEach((gt, t) => {
      adam.step([p], [gt]);
      for (let i = 0; i < 4; i++) {
        m[i] = 0.9 * m[i]! + 0.1 * gt[i]!;
        v[i] = 0.999 * v[i]! + 0.001 * gt[i]! ** 2;
        ref[i]! -= (0.01 * (m[i]! / (1 - 0.9 ** (t + 1)))) / (Math.sqrt(v[i]! / (1 - 0.999 ** (t + 1))) + 1e-7);
      }
    });
    expect(adam.iterations).toBe(2);
    for (let i = 0; i < 4; i++) expect(p[i]!).toBeCloseTo(ref[i]!, 6);
    expect(p[2]).toBe(2); // zero gradient, zero moments: no move
  });

  it('loss-position buckets step 1, 2, 3, 4, 6, 8, 12 × the pad multiple, capped', () => {
    expect([1, 16, 17, 33, 49, 65, 97, 129].map((n) => lossPositionBucket(n, 16, 10_000))).toEqual([16, 16, 32, 48, 64, 96, 128, 192]);
    expect(lossPositionBucket(0, 16, 10_000)).toBe(16);
    expect(lossPositionBucket(100, 16, 110)).toBe(110);
  });
});

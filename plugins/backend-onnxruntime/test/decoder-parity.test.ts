import { beforeAll, describe, expect, it } from 'vitest';
import { initDecoderWeights, initLoraWeights } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { OnnxDecoder, startOnnxRuntime, type OnnxRuntimeBackend } from '@dda/backend-onnxruntime';
import { FAMILIES, LORA, randomModel, relErr, samples, tok } from './fixtures.js';

describe('ONNX decoder agrees with the tfjs engine', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  for (const [family, config] of Object.entries(FAMILIES)) {
    it(`${family}: losses, logits, hidden states and per-example LoRA gradients to 1e-4 relative`, async () => {
      const model = randomModel(config, 1);
      const encoded = samples.map((s) => model.encode(s));
      const ref = model.perExampleGradientsEncoded(samples.map((s) => s.id), encoded, 'lora', 'x');
      const refLosses = model.lossesEncoded(encoded);
      const onnx = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights());
      for (const [k, e] of encoded.entries()) {
        const { loss, gradient, names, sizes } = await onnx.lossAndGradient(e);
        expect(names).toEqual(ref.parameterNames);
        expect(sizes).toEqual(ref.parameterSizes);
        expect(Math.abs(loss - refLosses[k]!) / refLosses[k]!).toBeLessThan(1e-5);
        expect(await onnx.loss(e)).toBeCloseTo(loss, 5);
        const g = ref.rows[k]!;
        expect(g.some((x) => x !== 0)).toBe(true);
        expect(relErr(gradient, g)).toBeLessThan(1e-4);
        // Per tensor too, so that a small tensor's error is not hidden by a large one.
        let off = 0;
        for (const size of ref.parameterSizes) {
          expect(relErr(gradient.subarray(off, off + size), g.subarray(off, off + size))).toBeLessThan(1e-4);
          off += size;
        }
        const logits = await onnx.logits(e.tokens);
        expect(relErr(logits, model.logits(Array.from(e.tokens)))).toBeLessThan(1e-5);
        // Hidden states: their mean over the loss positions is the tfjs engine's response representation.
        const hidden = await onnx.hiddenStates(e.tokens);
        const d = config.hiddenSize;
        const mean = new Float64Array(d);
        let count = 0;
        e.lossMask.forEach((m, t) => {
          count += m;
          for (let j = 0; j < d; j++) mean[j]! += m * hidden[t * d + j]!;
        });
        expect(relErr(mean.map((x) => x / count), model.responseRepresentations([samples[k]!])[0]!)).toBeLessThan(1e-5);
      }
      const matrix = await onnx.perExampleGradients(ref.ids, encoded, 'x');
      expect(matrix).toMatchObject({ ids: ref.ids, dim: ref.dim, parameterNames: ref.parameterNames, parameterSizes: ref.parameterSizes, checkpoint: 'x' });
      matrix.rows.forEach((r, k) => expect(relErr(r, ref.rows[k]!)).toBeLessThan(1e-4));
      await onnx.release();
      model.dispose();
    });
  }

  for (const family of ['llama2-style', 'qwen2-style (GQA, q/k/v biases, tied embeddings)', 'qwen3-style (q/k norms, head size 6 ≠ 16 / 4, GQA, tied embeddings)']) {
    it(`${family}: per-example gradients over every base tensor (parameters 'all') to 1e-4 relative`, async () => {
      const config = FAMILIES[family]!;
      const model = randomModel(config, 5);
      const encoded = samples.map((s) => model.encode(s));
      const ref = model.perExampleGradientsEncoded(samples.map((s) => s.id), encoded, 'all', 'x');
      const onnx = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { parameters: 'all' });
      const got = await onnx.perExampleGradients(ref.ids, encoded, 'x');
      expect(got.parameterNames).toEqual(ref.parameterNames);
      expect(got.parameterSizes).toEqual(ref.parameterSizes);
      for (const [k, row] of got.rows.entries()) {
        let off = 0;
        for (const [l, size] of ref.parameterSizes.entries()) {
          const want = ref.rows[k]!.subarray(off, off + size);
          expect(want.some((x) => x !== 0), ref.parameterNames[l]).toBe(true);
          expect(relErr(row.subarray(off, off + size), want), ref.parameterNames[l]).toBeLessThan(1e-4);
          off += size;
        }
      }
      await onnx.release();
      model.dispose();
    });
  }

  for (const parameters of ['lora', 'all'] as const) {
    it(`per-example gradients (${parameters}) on 2 worker threads: the same rows in the same order, bit-identical to one single-threaded session, and batched runs equal one-example runs`, async () => {
      const config = FAMILIES['qwen2-style (GQA, q/k/v biases, tied embeddings)']!;
      const model = randomModel(config, 9);
      // Lengths that need different graphs, and more examples than workers.
      const encoded = [...samples, ...samples.slice().reverse(), samples[1]!].map((s) => model.encode(s));
      const ids = encoded.map((_, k) => `e${k}`);
      // Chunks of 3, 3 and 1 examples ('lora'), spread over both workers.
      const single = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { parameters, intraOpNumThreads: 1, exampleBatch: 3 });
      const pooled = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { parameters, workers: 2, exampleBatch: 3 });
      const want = await single.perExampleGradients(ids, encoded, 'x');
      const ticks: number[] = [];
      const got = await pooled.perExampleGradients(ids, encoded, 'x', (n) => ticks.push(n));
      expect(ticks).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(got).toMatchObject({ ids, dim: want.dim, parameterNames: want.parameterNames, parameterSizes: want.parameterSizes, checkpoint: 'x' });
      got.rows.forEach((r, k) => expect(r).toEqual(want.rows[k]));
      // Calling again reuses the workers' sessions.
      expect((await pooled.perExampleGradients(ids.slice(0, 3), encoded.slice(0, 3), 'x')).rows).toEqual(want.rows.slice(0, 3));
      // One example per run gives the same rows up to float rounding.
      const oneByOne = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { parameters, exampleBatch: 1 });
      (await oneByOne.perExampleGradients(ids, encoded, 'x')).rows.forEach((r, k) => expect(relErr(r, want.rows[k]!)).toBeLessThan(1e-5));
      await oneByOne.release();
      await single.release();
      await pooled.release();
      model.dispose();
    });
  }

  it('setWeights: another checkpoint\'s adapters (and base weights with parameters all) in the same sessions give a fresh decoder\'s rows', async () => {
    const config = FAMILIES['llama2-style']!;
    const a = randomModel(config, 30);
    const b = randomModel(config, 31);
    const encoded = samples.map((s) => a.encode(s));
    const ids = samples.map((s) => s.id);
    for (const [parameters, workers] of [['lora', 1], ['lora', 2], ['all', 2]] as const) {
      const reused = new OnnxDecoder(backend, config, LORA, a.baseWeights(), a.loraWeights(), { parameters, workers, intraOpNumThreads: 1 });
      await reused.perExampleGradients(ids, encoded, 'a');
      await reused.setWeights({ lora: b.loraWeights(), ...(parameters === 'all' ? { base: b.baseWeights() } : {}) });
      const base = parameters === 'all' ? b.baseWeights() : a.baseWeights();
      const fresh = new OnnxDecoder(backend, config, LORA, base, b.loraWeights(), { parameters, intraOpNumThreads: 1 });
      expect((await reused.perExampleGradients(ids, encoded, 'b')).rows).toEqual((await fresh.perExampleGradients(ids, encoded, 'b')).rows);
      if (parameters === 'lora') await expect(reused.setWeights({ base: b.baseWeights() })).rejects.toThrow(/baked into its sessions/);
      await reused.release();
      await fresh.release();
    }
    a.dispose();
    b.dispose();
  });

  it('padding does not change the result', async () => {
    const config = FAMILIES['llama2-style']!;
    const model = new DecoderModel(config, tok, initDecoderWeights(config, 3));
    model.setLora(LORA, new Map([...initLoraWeights(config, LORA, 4)].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((x, k) => (n.includes('lora_B') ? Math.sin(k) * 0.1 : x)) }])));
    const e = model.encode(samples[1]!);
    const a = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { padMultiple: 1 });
    const b = new OnnxDecoder(backend, config, LORA, model.baseWeights(), model.loraWeights(), { padMultiple: 64, intraOpNumThreads: 1 });
    const ga = await a.lossAndGradient(e);
    const gb = await b.lossAndGradient(e);
    expect(relErr(gb.gradient, ga.gradient)).toBeLessThan(1e-5);
    expect(gb.loss).toBeCloseTo(ga.loss, 5);
    await a.release();
    await b.release();
    model.dispose();
  });
});

/**
 * Per-layer recomputation in the gradient graphs (`recompute`, GraphBuilder.recomputed): the
 * losses, gradients and every other output are bit-identical to the graph without it, for every
 * family of the pinned configs (LLaMA, GQA, Qwen2, Mistral, Llama-3, Qwen3, Gemma-3), in the
 * graphs the engine and the trainer build (per-example LoRA rows, batched LoRA training, every
 * base tensor, PEFT modules, present keys and values); without the option the graph is the same
 * bytes as before it; and the rebuilt values are neither merged with the forward ones nor kept.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, beforeAll } from 'vitest';
import {
  TINY_PRESETS, decoderWeightSpecs, engines, fillUniformStream, loraWeightSpecs, openModelFolder, writeRandomModelFolder, type DecoderConfig, type LoraConfig,
} from '@dda/model';
import { startTfjsBackend } from '@dda/backend-tfjs';
import {
  GraphBuilder, ONNX_TYPE, OnnxDecoder, OnnxTrainer, RECOMPUTE_ABOVE_BYTES, RECOMPUTE_ABOVE_WEIGHT_SHARE, activationBytesPerExample, buildDecoderGraph, encodeOnnxModel, recomputeLayers, startOnnxRuntime,
  type DecoderGraphOptions, type OnnxRuntimeBackend, type OrtTensor,
} from '@dda/backend-onnxruntime';
import { FAMILIES, LORA as FIXTURE_LORA, randomModel, samples } from './fixtures.js';
import { batchInputs, narrowFormats, ortBatchFeeds } from '../src/decoder-graph.js';
import { storedBaseWeights } from '../src/narrow-weights.js';
import { PINNED_CONFIGS as CONFIGS, PINNED_LORA as LORA, PINNED_MODULES as MODULES, pinnedValues } from '../../../packages/model/test/decoder-block-cases.js';

const bits = (t: OrtTensor): Uint8Array => {
  const d = t.data as Float32Array;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
};

/** Runs the graph of `o` with and without recomputation on the same feeds; returns both outputs. */
async function both(backend: OnnxRuntimeBackend, c: DecoderConfig, lora: LoraConfig | null, o: DecoderGraphOptions): Promise<{ off: Record<string, OrtTensor>; on: Record<string, OrtTensor>; nodes: [number, number] }> {
  const B = o.batch ?? 1;
  const T = 12;
  const examples = Array.from({ length: B }, (_, b) => ({
    tokens: Int32Array.from({ length: T - b * 3 }, (_, t) => (t * 7 + b * 5 + 3) % c.vocabSize),
    lossMask: Float32Array.from({ length: T - b * 3 - 1 }, (_, t) => (t >= 4 ? 1 : 0)),
  }));
  const inputs = batchInputs(examples, c.vocabSize, T, (n) => n + 2, o.perExample ? 1 : B);
  const weights = new Map<string, OrtTensor>();
  [...decoderWeightSpecs(c), ...(lora ? loraWeightSpecs(c, lora) : [])].forEach(({ name, shape }, s) => {
    weights.set(name, new backend.ort.Tensor('float32', pinnedValues(name, shape, s, 0.4), [...shape]));
  });
  const run = async (recompute: boolean): Promise<{ out: Record<string, OrtTensor>; nodes: number }> => {
    const { model } = buildDecoderGraph(c, lora, T, inputs.P, { ...o, recompute });
    const session = await backend.createSession(model);
    try {
      const feeds: Record<string, OrtTensor> = { ...ortBatchFeeds(backend, inputs) };
      for (const name of session.inputNames) if (!(name in feeds)) feeds[name] = weights.get(name) as OrtTensor;
      return { out: await session.run(feeds), nodes: model.graph.nodes.length };
    } finally {
      await session.release();
    }
  };
  const off = await run(false);
  const on = await run(true);
  return { off: off.out, on: on.out, nodes: [off.nodes, on.nodes] };
}

function expectBitIdentical(r: { off: Record<string, OrtTensor>; on: Record<string, OrtTensor>; nodes: [number, number] }): void {
  expect(Object.keys(r.on).sort()).toEqual(Object.keys(r.off).sort());
  for (const [name, t] of Object.entries(r.off)) {
    const u = r.on[name] as OrtTensor;
    expect(u.dims, name).toEqual(t.dims);
    const a = t.data as Float32Array;
    expect(a.every(Number.isFinite), name).toBe(true);
    // Not a run of zeros: the comparison means something.
    expect(a.some((v) => v !== 0), name).toBe(true);
    expect(Buffer.compare(bits(u), bits(t)), name).toBe(0);
  }
  // The layers were rebuilt: more nodes than without recomputation.
  expect(r.nodes[1]).toBeGreaterThan(r.nodes[0]);
}

describe('per-layer recomputation is bit-identical to the kept graph', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });

  for (const family of Object.keys(CONFIGS)) {
    const c = CONFIGS[family] as DecoderConfig;
    it(`${family}: per-example LoRA gradient rows (the engine's gradient graph), batch 3`, async () => {
      expectBitIdentical(await both(backend, c, LORA, { gradients: true, logits: false, batch: 3, perExample: true, gradientRows: loraWeightSpecs(c, LORA).map((s) => s.name) }));
    });
    it(`${family}: batched LoRA training gradients, batch 2`, async () => {
      expectBitIdentical(await both(backend, c, LORA, { gradients: true, logits: false, batch: 2 }));
    });
    it(`${family}: every base tensor (full-parameter training), batch 2, with logits`, async () => {
      expectBitIdentical(await both(backend, c, null, { gradients: true, logits: true, parameters: 'all', batch: 2 }));
    });
  }

  it('PEFT modules, per-example rows; Gemma-3 with present keys and values, logits and hidden states (outputs added once)', async () => {
    expectBitIdentical(await both(backend, CONFIGS['llama-gqa'] as DecoderConfig, MODULES, { gradients: true, logits: false, batch: 2, perExample: true, gradientRows: loraWeightSpecs(CONFIGS['llama-gqa'] as DecoderConfig, MODULES).map((s) => s.name) }));
    expectBitIdentical(await both(backend, CONFIGS.gemma3 as DecoderConfig, LORA, { gradients: true, logits: true, hidden: true, present: true, batch: 2, perExample: true }));
  });

  it('without the option (false or left out) the graph is the same bytes; without gradients the option changes nothing', () => {
    const c = CONFIGS.qwen3 as DecoderConfig;
    const enc = (o: DecoderGraphOptions): Buffer => Buffer.from(encodeOnnxModel(buildDecoderGraph(c, LORA, 8, 4, o).model));
    const o: DecoderGraphOptions = { gradients: true, logits: false, batch: 2, perExample: true };
    expect(enc({ ...o, recompute: false }).equals(enc(o))).toBe(true);
    expect(enc({ ...o, recompute: true }).equals(enc(o))).toBe(false);
    const fwd: DecoderGraphOptions = { gradients: false, logits: true };
    expect(enc({ ...fwd, recompute: true }).equals(enc(fwd))).toBe(true);
  });
});

describe('GraphBuilder.recomputed', () => {
  it('-0 and +0 inputs pass through bit for bit, and the gradient is that of the kept segment', async () => {
    const backend = await startOnnxRuntime(['onnxruntime-cpu']);
    const build = (recompute: boolean): { g: GraphBuilder; dx: string; dw: string } => {
      const g = new GraphBuilder('t');
      const x = g.input('x', [2, 3], ONNX_TYPE.float, true);
      const w = g.input('w', [2, 3], ONNX_TYPE.float, true);
      const k = g.input('k', [2, 3]);
      // f(x) = x·w: its VJP reads x for dw = dy·x, so dw is −0 where x is −0 and dy > 0, and would
      // have been +0 had the rebuild added +0 (x + 0·s with s ≥ 0) instead of −0.
      const f = (v: string): string => g.mul(v, w);
      const y = recompute ? g.recomputed(x, f) : f(x);
      const loss = g.sum(g.mul(y, k), [0, 1], false);
      const grads = g.backward(loss, [x, w]);
      return { g, dx: grads.get(x) as string, dw: grads.get(w) as string };
    };
    const xs = Float32Array.of(-0, 0, 1.5, -0, -2, 3);
    const ws = Float32Array.of(0.5, -0, 2, 1, 1, 1);
    const ks = Float32Array.of(1, 2, 3, 4, 5, 6);
    const outputs: Record<string, OrtTensor>[] = [];
    for (const recompute of [false, true]) {
      const { g, dx, dw } = build(recompute);
      const session = await backend.createSession(g.model([g.output('dx', dx), g.output('dw', dw)]));
      outputs.push(await session.run({ x: new backend.ort.Tensor('float32', xs, [2, 3]), w: new backend.ort.Tensor('float32', ws, [2, 3]), k: new backend.ort.Tensor('float32', ks, [2, 3]) }));
      await session.release();
    }
    for (const k of ['dx', 'dw']) expect(Buffer.compare(bits(outputs[1]![k]!), bits(outputs[0]![k]!)), k).toBe(0);
    const dw = [...(outputs[1]!.dw!.data as Float32Array)];
    expect(dw.map((v) => Object.is(v, -0))).toEqual([true, false, false, true, false, false]);
    expect(dw).toEqual([-0, 0, 4.5, -0, -10, 18]);
  });

  it('refuses a value made inside a segment and differentiated outside it, and a segment that changes the row shape', () => {
    const g = new GraphBuilder('t');
    const x = g.input('x', [2, 3], ONNX_TYPE.float, true);
    let inside = '';
    const y = g.recomputed(x, (v) => {
      inside = g.mul(v, v);
      return g.add(inside, v);
    });
    const loss = g.sum(g.mul(y, inside), [0, 1], false);
    expect(() => g.backward(loss, [x])).toThrow(/made inside a recomputed segment/);
    const h = new GraphBuilder('t');
    const z = h.input('z', [2, 3], ONNX_TYPE.float, true);
    expect(() => h.recomputed(z, (v) => h.reshape(v, [3, 2]))).toThrow(/same shape but for the last axis/);
  });
});

describe('the decoder and the trainer with recomputation', () => {
  let backend: OnnxRuntimeBackend;
  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    backend = await startOnnxRuntime(['onnxruntime-cpu']);
  });
  const same = (a: Float32Array, b: Float32Array): boolean => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

  for (const family of [Object.keys(FAMILIES)[0]!, Object.keys(FAMILIES).at(-1)!]) {
    it(`${family}: per-example rows (LoRA and all), losses and trained weights (LoRA and all) are the same bits`, async () => {
      const config = FAMILIES[family]!;
      const model = randomModel(config, 61);
      const encoded = [...samples, ...samples].map((s) => model.encode(s));
      const ids = encoded.map((_, k) => `e${k}`);
      for (const parameters of ['lora', 'all'] as const) {
        const rows: Float32Array[][] = [];
        for (const recompute of [false, true]) {
          const d = new OnnxDecoder(backend, config, FIXTURE_LORA, model.baseWeights(), model.loraWeights(), { parameters, recompute, intraOpNumThreads: 1 });
          rows.push((await d.perExampleGradients(ids, encoded, 'x')).rows);
          rows.push([(await d.lossAndGradient(encoded[1]!)).gradient]);
          await d.release();
        }
        expect(rows[0]!.length).toBe(encoded.length);
        rows[0]!.forEach((r, k) => expect(same(rows[2]![k]!, r), `${parameters} row ${k}`).toBe(true));
        expect(same(rows[3]![0]!, rows[1]![0]!)).toBe(true);
      }
      const texts = samples.map((s) => model.encode(s));
      for (const parameters of ['lora', 'all'] as const) {
        const trained: Map<string, { data: Float32Array }>[] = [];
        const losses: number[][] = [];
        for (const recompute of [false, true]) {
          const t = new OnnxTrainer(backend, config, parameters, model.baseWeights(), { config: FIXTURE_LORA, weights: model.loraWeights() }, { recompute, intraOpNumThreads: 1 });
          losses.push(await t.train(texts, { epochs: 2, batchSize: 2, seed: 3, learningRate: 1e-2 }));
          trained.push(t.trainedWeights());
          await t.release();
        }
        expect(losses[1]).toEqual(losses[0]);
        for (const [name, t] of trained[0]!) expect(same(trained[1]!.get(name)!.data, t.data), `${parameters} ${name}`).toBe(true);
      }
      model.dispose();
    });
  }

  it('the activation estimate counts three layers\' worth and the layer inputs; auto recomputes above the run budget, so more examples fit a run', () => {
    const config = { ...FAMILIES['llama2-style']!, numLayers: 8 };
    const T = 32;
    const kept = activationBytesPerExample(config, T, T / 2);
    const recomputed = activationBytesPerExample(config, T, T / 2, true);
    const perLayer = 2 * config.numHeads * T * T + T * (14 * config.hiddenSize + 5 * config.intermediateSize);
    expect(recomputed - 4 * 3 * 16 * config.vocabSize).toBe(4 * (3 * perLayer + config.numLayers * T * config.hiddenSize));
    expect(kept - 4 * 3 * 16 * config.vocabSize).toBe(4 * config.numLayers * perLayer);
    expect(recomputeLayers(config, T, 'auto', kept)).toBe(false);
    expect(recomputeLayers(config, T, 'auto', kept - 1)).toBe(true);
    expect(recomputeLayers(config, T, true, 2 ** 40)).toBe(true);
    expect(recomputeLayers(config, T, false, 1)).toBe(false);
    expect(recomputeLayers(config, T)).toBe(kept > RECOMPUTE_ABOVE_BYTES);
    // Below the budget, above a quarter of the base weights' bytes and above the 256 MiB floor: auto recomputes.
    const { floor, share } = RECOMPUTE_ABOVE_WEIGHT_SHARE;
    expect([floor, share]).toEqual([2 ** 28, 0.25]);
    const wide = { ...config, numLayers: 24, hiddenSize: 896, intermediateSize: 4864, numHeads: 14, numKvHeads: 2 };
    const wideKept = activationBytesPerExample(wide, 128, 64);
    expect(wideKept).toBeGreaterThan(floor);
    expect(wideKept).toBeLessThan(RECOMPUTE_ABOVE_BYTES);
    expect(recomputeLayers(wide, 128, 'auto', RECOMPUTE_ABOVE_BYTES, wideKept / share - 1)).toBe(true);
    expect(recomputeLayers(wide, 128, 'auto', RECOMPUTE_ABOVE_BYTES, wideKept / share)).toBe(false);
    expect(recomputeLayers(wide, 128, 'auto', RECOMPUTE_ABOVE_BYTES)).toBe(false);
    expect(recomputeLayers(wide, 128, false, RECOMPUTE_ABOVE_BYTES, 1)).toBe(false);
    // Small activations stay kept however small the weights: the floor.
    expect(kept).toBeLessThan(floor);
    expect(recomputeLayers(config, T, 'auto', RECOMPUTE_ABOVE_BYTES, 1)).toBe(false);
    // Three layers or fewer: nothing saved, the estimate is the kept one.
    const shallow = { ...config, numLayers: 3 };
    expect(activationBytesPerExample(shallow, T, T / 2, true)).toBe(activationBytesPerExample(shallow, T, T / 2));
    const model = randomModel(config, 62);
    const encoded = Array.from({ length: 6 }, () => model.encode(samples[1]!)); // 32 tokens padded
    expect(Math.ceil(encoded[0]!.tokens.length / 16) * 16).toBe(T);
    // A run holds per example its activations and four copies of the LoRA parameters (gradientRunBytes; float32 weights: nothing decoded).
    const lora = 16 * [...model.loraWeights().values()].reduce((a, t) => a + t.data.length, 0);
    // A budget of 2.5 kept examples: 2 per run kept, as many as the smaller estimate allows recomputed.
    const budget = 2.5 * (kept + lora);
    const fit = Math.floor(budget / (recomputed + lora));
    const plan = (recompute: boolean | 'auto', maxRunBytes: number): number[] => new OnnxDecoder(backend, config, FIXTURE_LORA, model.baseWeights(), model.loraWeights(), { recompute, maxRunBytes, exampleBatch: 8 }).runPlan(encoded).map((r) => r.length);
    expect(plan(false, budget)).toEqual([2, 2, 2]);
    expect(plan(true, budget)).toEqual([fit].concat(6 > fit ? [6 - fit] : []));
    expect(plan('auto', budget)).toEqual([2, 2, 2]); // one example fits the budget kept: auto keeps
    expect(plan('auto', 0.9 * kept)).toEqual(plan(true, 0.9 * kept)); // it does not: auto recomputes
    expect(plan(false, 0.9 * kept)).toEqual([1, 1, 1, 1, 1, 1]);
    model.dispose();
  });

  it('the engine takes recompute as a start option and refuses anything but true, false and auto', async () => {
    await expect(engines.create('onnxruntime', { backends: ['onnxruntime-cpu'], recompute: 'yes' })).rejects.toThrow(/recompute/);
    const engine = await engines.create('onnxruntime', { backends: ['onnxruntime-cpu'], recompute: true });
    expect(engine.id).toBe('onnxruntime');
  });
});

describe('recomputation with narrow base weights (decoded in the graph, again in each rebuilt layer)', () => {
  it.each(['llama2-tiny', 'gemma3-tiny'])('%s in BF16: rebuilt layers re-decode their weights, and the rows are the kept float32 graph\'s bits', async (preset) => {
    const family = preset.startsWith('gemma3') ? 'gemma3_text' : 'llama';
    const config: DecoderConfig = { ...(TINY_PRESETS[preset] as Omit<DecoderConfig, 'vocabSize'>), vocabSize: 96 };
    const dir = mkdtempSync(join(tmpdir(), `dda-recompute-narrow-${preset}-`));
    try {
      writeRandomModelFolder(dir, { model: { family, config }, seed: 4, dtype: 'BF16', init: { normNoise: 0.1, biasNoise: 0.02 } });
      const folder = openModelFolder(dir);
      const wide = new Map(folder.weights.names.map((n) => [n, folder.weights.readFloat32(n)]));
      const narrow = storedBaseWeights(folder.weights);
      const c = folder.config;
      const lora = { rank: 4, alpha: 8, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as LoraConfig['targets'] };
      const loraWeights = new Map(loraWeightSpecs(c, lora).map(({ name, shape }) => {
        const data = new Float32Array(shape[0]! * shape[1]!);
        fillUniformStream(6, name, 0, 0.2, 0, data);
        return [name, { shape: [...shape], data }];
      }));
      // The recomputed graph reads more decode aliases of the narrow matrices than the kept one (each rebuilt layer decodes again).
      const names = (recompute: boolean): string[] => buildDecoderGraph(c, lora, 16, 8, { gradients: true, logits: false, batch: 2, perExample: true, recompute, narrowWeights: narrowFormats(narrow) }).model.graph.inputs.map((i) => i.name);
      expect(names(true).filter((n) => n.includes('@decode')).length).toBeGreaterThan(names(false).filter((n) => n.includes('@decode')).length);
      const backend = await startOnnxRuntime(['onnxruntime-cpu']);
      const kept = new OnnxDecoder(backend, c, lora, wide, loraWeights, { intraOpNumThreads: 1, basePlacement: 'inputs', recompute: false, exampleBatch: 2 });
      const rebuilt = new OnnxDecoder(backend, c, lora, narrow, loraWeights, { intraOpNumThreads: 1, recompute: true, exampleBatch: 2 });
      const examples = [13, 19, 24].map((n, e) => ({
        tokens: Int32Array.from({ length: n }, (_, t) => (t * 5 + e * 11 + 2) % c.vocabSize),
        lossMask: Float32Array.from({ length: n - 1 }, (_, t) => (t >= n / 3 ? 1 : 0)),
      }));
      const ids = examples.map((_, k) => `e${k}`);
      const a = await rebuilt.perExampleGradients(ids, examples, 'x');
      const b = await kept.perExampleGradients(ids, examples, 'x');
      a.rows.forEach((r, k) => {
        expect(r.some((v) => v !== 0)).toBe(true);
        expect(Buffer.compare(Buffer.from(r.buffer, r.byteOffset, r.byteLength), Buffer.from(b.rows[k]!.buffer, b.rows[k]!.byteOffset, b.rows[k]!.byteLength)), `row ${k}`).toBe(0);
      });
      await rebuilt.release();
      await kept.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DecoderModel, fillUniformStream, loadModelFolder, loraWeightSpecs, randomDecoderWeights, realModelConfig, startTfjsBackend,
  writeRandomModelFolder, type LoraConfig, type LoraTarget, type SafetensorsDtype, type TensorMap, type Tokenizer,
} from '@dda/model';

// Expected values made by make-real-parity-fixtures.py with PyTorch (float64), an independent
// implementation, at the real widths and vocabularies of TinyLlama-1.1B, Qwen2-0.5B and Mistral-7B
// with one layer. Both sides make the weights from the same seeded counter-based generator
// (fillUniformStream), so only norms, maxima and sampled entries are stored.
/** A compact reference tensor: its L2 norm, largest |entry| and sampled (index, value) pairs. */
export interface Summary { norm: number; maxAbs: number; samples: [number, number][] }
/** One case of real-parity-fixtures.json (also read by the onnxruntime engine's parity tests). */
export interface Case {
  name: string;
  layers: number;
  T: number;
  seed: number;
  dtype: SafetensorsDtype;
  overrides: { slidingWindow?: number };
  init: { std: number; normNoise: number; biasNoise: number };
  lora: { rank: number; alpha: number; targets: LoraTarget[]; seed: number; half: number };
  weightChecks: Record<string, [number, number][]>;
  loss: number;
  logits: Summary;
  grads: Record<string, Summary>;
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/real-parity-fixtures.json', import.meta.url), 'utf8')) as { cases: Case[] };

/** The tokenizer is not used by logits and gradients of given ids: only its size must fit. */
const idsOnly = (size: number): Tokenizer => ({
  kind: 'hugging-face', size, bosId: 1, eosId: 2, padId: 2, encode: () => [], decode: () => '', applyChatTemplate: () => '',
});

/** Same token ids and loss mask as the fixture script: the second half of the sequence is the response. */
export const caseTokens = (T: number, vocab: number): number[] => Array.from({ length: T }, (_, k) => (k * k * 7919 + k * 104729 + 13) % vocab);

export function l2(a: Float32Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += (a[k] as number) ** 2;
  return Math.sqrt(s);
}

/** Largest |ours − reference| over the sampled entries, relative to the reference's largest |entry| (over all entries). */
export function sampledRelErr(ours: Float32Array, ref: Summary): number {
  let worst = 0;
  for (const [k, v] of ref.samples) worst = Math.max(worst, Math.abs((ours[k] as number) - v));
  return worst / ref.maxAbs;
}

/**
 * The parity tests of one case of real-parity-fixtures.json. Each case has its own test file, so
 * that each runs in its own process with its own 4 GiB WebAssembly memory.
 */
export function describeRealParity(name: string): void {
  const c = fx.cases.find((x) => x.name === name);
  if (!c) throw new Error(`no case '${name}' in real-parity-fixtures.json`);
  const root = mkdtempSync(join(tmpdir(), 'dda-real-parity-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  describe(`${name} (real widths, ${c.layers} layer) vs PyTorch reference`, () => defineCase(c, root));
}

function defineCase(c: Case, root: string): void {
  const { config } = realModelConfig(c.name, { numLayers: c.layers, ...(c.overrides.slidingWindow !== undefined ? { slidingWindow: c.overrides.slidingWindow } : {}) });
  const loraConfig: LoraConfig = { rank: c.lora.rank, alpha: c.lora.alpha, targets: c.lora.targets };
  let model: DecoderModel;
  let weights: TensorMap;

  beforeAll(async () => {
    await startTfjsBackend(['tfjs-wasm']);
    if (c.dtype === 'F32') {
      weights = randomDecoderWeights(config, c.seed, c.init);
    } else {
      // Through the disk: the streamed writer narrows to BF16, the lazy loader widens back.
      const dir = join(root, c.name);
      writeRandomModelFolder(dir, { model: c.name as 'tinyllama-1.1b', numLayers: c.layers, seed: c.seed, dtype: c.dtype, init: c.init, maxShardBytes: 2e8 });
      const folder = loadModelFolder(dir, { lazy: true });
      expect(folder.config).toEqual(config);
      expect(folder.weights.dtypes).toEqual([c.dtype]);
      weights = folder.weights.toTensorMap();
      rmSync(dir, { recursive: true, force: true });
    }
    model = new DecoderModel(config, idsOnly(config.vocabSize), weights);
    const lora: TensorMap = new Map(loraWeightSpecs(config, loraConfig).map(({ name, shape }) => {
      const data = new Float32Array(shape[0] * shape[1]);
      fillUniformStream(c.lora.seed, name, 0, c.lora.half, 0, data);
      return [name, { shape, data }];
    }));
    model.setLora(loraConfig, lora);
  });
  afterAll(() => model?.dispose());

  it('makes the same weights as the reference generator, bit for bit', () => {
    for (const [name, samples] of Object.entries(c.weightChecks)) {
      const t = weights.get(name);
      expect(t, name).toBeDefined();
      for (const [k, v] of samples) expect(t!.data[k], `${name}[${k}]`).toBe(v);
    }
  });

  it('logits, and the loss of the response tokens computed from them, agree to 1e-4 relative', () => {
    const tokens = caseTokens(c.T, config.vocabSize);
    const logits = model.logits(tokens);
    expect(logits.length).toBe(c.T * config.vocabSize);
    expect(sampledRelErr(logits, c.logits)).toBeLessThan(1e-4);
    expect(Math.abs(l2(logits) - c.logits.norm) / c.logits.norm).toBeLessThan(1e-4);
    // Mean cross-entropy of the response tokens (positions t ≥ T/2 predict token t + 1), in float64.
    const V = config.vocabSize;
    let sum = 0;
    let n = 0;
    for (let t = c.T / 2; t < c.T - 1; t++) {
      const row = logits.subarray(t * V, (t + 1) * V);
      let max = -Infinity;
      for (let k = 0; k < V; k++) max = Math.max(max, row[k] as number);
      let z = 0;
      for (let k = 0; k < V; k++) z += Math.exp((row[k] as number) - max);
      sum += max + Math.log(z) - (row[tokens[t + 1] as number] as number);
      n++;
    }
    expect(Math.abs(sum / n - c.loss) / c.loss).toBeLessThan(1e-5);
  });

  it(`per-example LoRA gradients (${c.lora.targets.join(', ')}) of the response tokens agree to 1e-4 relative`, () => {
    const tokens = Int32Array.from(caseTokens(c.T, config.vocabSize));
    const lossMask = Float32Array.from({ length: c.T - 1 }, (_, t) => (t >= c.T / 2 ? 1 : 0));
    const g = model.perExampleGradientsEncoded(['x'], [{ tokens, lossMask }], 'lora', 'fixture');
    expect([...g.parameterNames].sort()).toEqual(Object.keys(c.grads).sort());
    let off = 0;
    g.parameterNames.forEach((name, k) => {
      const size = g.parameterSizes[k]!;
      const ours = g.rows[0]!.subarray(off, off + size);
      off += size;
      const ref = c.grads[name]!;
      expect(sampledRelErr(ours, ref), name).toBeLessThan(1e-4);
      expect(Math.abs(l2(ours) - ref.norm) / ref.norm, name).toBeLessThan(1e-4);
    });
  });
}

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ropeCosSin, ropeInverseFrequencies } from '@dda/core';
import {
  DecoderModel, REAL_MODELS, fillUniformStream, headDim, loadModelFolder, loraWeightSpecs, parseHfConfig, randomDecoderWeights, realModelConfig, startTfjsBackend,
  writeRandomModelFolder, type DecoderConfig, type LoraConfig, type LoraTarget, type RealModelName, type SafetensorsDtype, type TensorMap, type Tokenizer,
} from '@dda/model';
import { maxRelErr } from './peft-variant-case.js';

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
  /** slidingWindow: the window of every windowed layer; config: config.json fields replacing the published ones (reduced widths). */
  overrides: { slidingWindow?: number; config?: Record<string, unknown> };
  init: { std: number; normNoise: number; biasNoise: number };
  lora: { rank: number; alpha: number; targets: LoraTarget[]; seed: number; half: number };
  weightChecks: Record<string, [number, number][]>;
  loss: number;
  logits: Summary;
  /** Absent for a case of logits and loss only. */
  grads?: Record<string, Summary>;
  /** With a llama3 RoPE scaling: inverse frequencies and cos / sin [positions][headDim / 2] at a few positions. */
  rope?: { positions: number[]; invFreq: number[]; cos: number[][]; sin: number[][] };
  /** For a sequence beyond the original context: how far its logits there move with plain RoPE, or with factor 32. */
  ropeSensitivity?: { plain: number; factor32: number };
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/real-parity-fixtures.json', import.meta.url), 'utf8')) as { cases: Case[] };

/** The case's DecoderConfig: the published config.json with its layers, window and config overrides, as parseHfConfig reads it. */
export function caseConfig(c: Case): DecoderConfig {
  const { configJson } = realModelConfig(c.name, { numLayers: c.layers, ...(c.overrides.slidingWindow !== undefined ? { slidingWindow: c.overrides.slidingWindow } : {}) });
  return parseHfConfig({ ...configJson, ...c.overrides.config }, `${c.name} with the fixture's overrides`).config;
}

/** 'real widths', or 'reduced widths' for a case that overrides some of the published config.json's fields. */
export const widths = (c: Case): string => (c.overrides.config ? 'reduced widths' : 'real widths');

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
  describe(`${name} (${widths(c)}, ${c.layers} layer, ${c.T} tokens) vs PyTorch reference`, () => defineCase(c, root));
}

function defineCase(c: Case, root: string): void {
  const config = caseConfig(c);
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

  if (c.rope) defineRope(c.name, c.rope);
  if (c.ropeSensitivity) {
    const s = c.ropeSensitivity;
    it(`the RoPE scaling matters beyond position 8192: plain RoPE moves those logits by ${s.plain.toPrecision(2)}, factor 32 by ${s.factor32.toPrecision(2)} (of the largest)`, () => {
      expect(Math.min(s.plain, s.factor32)).toBeGreaterThan(1e-2);
    });
  }
  const grads = c.grads;
  if (!grads) return;
  it(`per-example LoRA gradients (${c.lora.targets.join(', ')}) of the response tokens agree to 1e-4 relative`, () => {
    const tokens = Int32Array.from(caseTokens(c.T, config.vocabSize));
    const lossMask = Float32Array.from({ length: c.T - 1 }, (_, t) => (t >= c.T / 2 ? 1 : 0));
    const g = model.perExampleGradientsEncoded(['x'], [{ tokens, lossMask }], 'lora', 'fixture');
    expect([...g.parameterNames].sort()).toEqual(Object.keys(grads).sort());
    let off = 0;
    g.parameterNames.forEach((name, k) => {
      const size = g.parameterSizes[k]!;
      const ours = g.rows[0]!.subarray(off, off + size);
      off += size;
      const ref = grads[name]!;
      expect(sampledRelErr(ours, ref), name).toBeLessThan(1e-4);
      expect(Math.abs(l2(ours) - ref.norm) / ref.norm, name).toBeLessThan(1e-4);
    });
  });
}

/** Expects rows `positions` of RoPE tables cos, sin [T, headDim] (both halves) within 1e-6 of the reference's [positions][headDim / 2]. */
export function expectRopeTables(tables: { cos: Float32Array; sin: Float32Array }, headDim: number, ref: { positions: number[]; cos: number[][]; sin: number[][] }): void {
  const half = headDim / 2;
  ref.positions.forEach((t, i) => {
    for (let k = 0; k < half; k++) {
      for (const col of [k, k + half]) {
        expect(Math.abs(tables.cos[t * headDim + col]! - ref.cos[i]![k]!), `cos t=${t} k=${k}`).toBeLessThan(1e-6);
        expect(Math.abs(tables.sin[t * headDim + col]! - ref.sin[i]![k]!), `sin t=${t} k=${k}`).toBeLessThan(1e-6);
      }
    }
  });
}

/** @dda/core's RoPE for the published config.json of `name` (REAL_MODELS, not the fixture's widths) against the reference's. */
function defineRope(name: string, r: NonNullable<Case['rope']>): void {
  it(`RoPE of the published config at positions ${r.positions.join(', ')}: frequencies to 1e-15, cos/sin to 1e-6`, () => {
    const { config } = REAL_MODELS[name as RealModelName];
    const hd = headDim(config);
    expect(maxRelErr(ropeInverseFrequencies(hd, config.ropeTheta, config.ropeScaling), r.invFreq)).toBeLessThan(1e-15);
    expectRopeTables(ropeCosSin(Math.max(...r.positions) + 1, hd, config.ropeTheta, config.ropeScaling), hd, r);
  });
}

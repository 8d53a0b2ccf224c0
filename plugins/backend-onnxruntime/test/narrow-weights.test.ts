import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TINY_PRESETS, fillUniformStream, loraWeightSpecs, openModelFolder, writeRandomModelFolder, type DecoderConfig, type SafetensorsDtype } from '@dda/model';
import { startOnnxRuntime } from '../src/backend.js';
import { GraphBuilder } from '../src/autodiff.js';
import { OnnxDecoder, buildDecoderGraph } from '../src/decoder-graph.js';
import { baseTensorFromStored, bf16AsScaledF16, bf16Table, isNarrow, storedBaseWeights, type BaseTensor } from '../src/narrow-weights.js';
import { ONNX_TYPE, encodeOnnxModel } from '../src/onnx-model.js';

/** The float32 value of bfloat16 bits b, computed from sign, exponent and mantissa (not from the bits << 16 rule the table uses). */
function bf16ByFormula(b: number): number {
  const sign = b & 0x8000 ? -1 : 1;
  const e = (b >> 7) & 0xff;
  const m = b & 0x7f;
  if (e === 0xff) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** -133; // subnormal: m/128 · 2^-126
  return sign * (1 + m / 128) * 2 ** (e - 127);
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('bf16Table', () => {
  it('holds the float32 value of every one of the 65,536 bfloat16 patterns, NaN payloads kept', () => {
    const t = bf16Table();
    const bits = new Uint32Array(t.buffer, t.byteOffset, t.length);
    expect(t.length).toBe(65536);
    let nan = 0;
    for (let b = 0; b < 65536; b++) {
      const want = bf16ByFormula(b);
      if (Number.isNaN(want)) {
        nan++;
        expect(Number.isNaN(t[b])).toBe(true);
        // A NaN's payload is the pattern's: bits b << 16 exactly (quiet and signalling alike).
        expect(bits[b]).toBe((b << 16) >>> 0);
      } else {
        expect(Object.is(t[b], want)).toBe(true); // −0 and +0 told apart
      }
    }
    expect(nan).toBe(2 * 127); // exponent 0xff with a non-zero 7-bit mantissa, both signs
  });

  it('decodes every pattern inside an onnxruntime graph to the same float32 bits (UINT16 in, Cast, Gather)', async () => {
    const backend = await startOnnxRuntime(['onnxruntime-cpu']);
    const g = new GraphBuilder('bf16-decode');
    const w = g.narrowInput('w', [256, 256], 'bf16');
    const h = g.narrowInput('h', [256, 256], 'f16');
    const model = g.model([g.output('y', g.decode(w)), g.output('z', g.decode(h))]);
    const session = await backend.createSession(model, { intraOpNumThreads: 1 });
    const all = Uint16Array.from({ length: 65536 }, (_, b) => b);
    const out = await session.run({ w: new backend.ort.Tensor('uint16', all, [256, 256]), h: new backend.ort.Tensor('float16', all, [256, 256]) });
    const y = out.y?.data as Float32Array;
    const z = out.z?.data as Float32Array;
    expect(Buffer.from(y.buffer, y.byteOffset, y.byteLength).equals(Buffer.from(bf16Table().buffer))).toBe(true);
    // f16: Cast(float16 → float32) against the formula of IEEE half (finite values and infinities; NaN stays NaN).
    for (let b = 0; b < 65536; b++) {
      const sign = b & 0x8000 ? -1 : 1;
      const e = (b >> 10) & 0x1f;
      const m = b & 0x3ff;
      const want = e === 0x1f ? (m === 0 ? sign * Infinity : NaN) : e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15);
      if (Number.isNaN(want)) expect(Number.isNaN(z[b])).toBe(true);
      else expect(Object.is(z[b], want)).toBe(true);
    }
    await session.release();
  });

  it('refuses an op that reads a narrow weight as stored', () => {
    const g = new GraphBuilder('refuse');
    const w = g.narrowInput('w', [4, 4], 'bf16');
    const x = g.input('x', [4, 4], ONNX_TYPE.float);
    expect(() => g.mul(x, w)).toThrow(/narrow weight 'w'/);
    expect(g.shape(g.linear(x, w))).toEqual([4, 4]);
  });
});

/** IEEE half bits h as a number (formula). */
function f16ByFormula(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  return e === 0x1f ? (m === 0 ? sign * Infinity : NaN) : e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15);
}

describe('bf16AsScaledF16', () => {
  it('re-encodes every finite normal bfloat16 pattern and zero exactly as half × 2^k, and refuses the rest', () => {
    let kept = 0;
    for (let b = 0; b < 65536; b++) {
      const r = bf16AsScaledF16(Uint16Array.of(b));
      const e = (b >> 7) & 0xff;
      if (e === 0xff || (e === 0 && (b & 0x7f) !== 0)) {
        expect(r).toBeNull();
        continue;
      }
      // 2^k must be a normal float32: values below 2^-111 cannot be scaled to half's top exponent.
      if (r === null) {
        expect(e - 127 - 15).toBeLessThan(-126);
        continue;
      }
      kept++;
      expect(Object.is(f16ByFormula(r.bits[0] as number) * r.scale, bf16ByFormula(b))).toBe(true);
    }
    expect(kept).toBeGreaterThan(60000);
  });

  it('scales a tensor by its largest value and refuses one spanning more than 33 exponents', () => {
    const enc = (xs: number[]): Uint16Array => Uint16Array.from(xs, (x) => new Uint32Array(Float32Array.of(x).buffer)[0]! >>> 16);
    const xs = [0.5, -3 * 2 ** -20, 0, -0, 2 ** -32, 1.5 * 2 ** -10];
    const r = bf16AsScaledF16(enc(xs));
    expect(r).not.toBeNull();
    expect(r!.scale).toBe(2 ** (-1 - 15));
    expect([...r!.bits].map((h) => f16ByFormula(h) * r!.scale)).toEqual(xs);
    expect(Object.is(f16ByFormula(r!.bits[3]!) * r!.scale, -0)).toBe(true);
    // With 0.5 = 2^-1 at half's top exponent (k = -16) the window reaches 2^-33 (33 exponents, -1 to -33), not 2^-34.
    expect(bf16AsScaledF16(enc([0.5, 2 ** -34]))).toBeNull();
    expect(bf16AsScaledF16(enc([0.5, 1.9921875 * 2 ** -33]))).not.toBeNull();
    expect(bf16AsScaledF16(enc([0, -0]))).toEqual({ bits: Uint16Array.of(0, 0x8000), scale: 1 });
  });
});

describe('baseTensorFromStored', () => {
  it('keeps BF16 and F16 bytes as 16-bit patterns (views, no widening) and F32 as float32', () => {
    const bytes = new Uint8Array([0x80, 0x3f, 0x80, 0xbf, 0, 0]);
    const bf = baseTensorFromStored({ dtype: 'BF16', shape: [3], bytes }, { bf16: 'table' });
    expect(isNarrow(bf) && bf.format === 'bf16' && [...bf.bits]).toEqual([0x3f80, 0xbf80, 0]);
    expect(isNarrow(bf) && bf.bits.buffer).toBe(bytes.buffer);
    const f = baseTensorFromStored({ dtype: 'F16', shape: [1, 3], bytes });
    expect(isNarrow(f) && f.format).toBe('f16');
    // An odd byte offset cannot be viewed as 16-bit values: copied once.
    const odd = new Uint8Array(7);
    odd.set(bytes, 1);
    const c = baseTensorFromStored({ dtype: 'BF16', shape: [3], bytes: odd.subarray(1) }, { bf16: 'table' });
    // By default a BF16 tensor that fits becomes scaled half: 1 = 2^15 · 2^-15, the largest value at half's top exponent.
    const scaled = baseTensorFromStored({ dtype: 'BF16', shape: [3], bytes });
    expect(isNarrow(scaled) && [scaled.format, scaled.scale, [...scaled.bits]]).toEqual(['f16', 2 ** -15, [0x7800, 0xf800, 0]]);
    expect(isNarrow(c) && [...c.bits]).toEqual([0x3f80, 0xbf80, 0]);
    const f32 = baseTensorFromStored({ dtype: 'F32', shape: [1], bytes: new Uint8Array(Float32Array.of(1.5).buffer) });
    expect(!isNarrow(f32) && [...f32.data]).toEqual([1.5]);
    expect(() => baseTensorFromStored({ dtype: 'BF16', shape: [4], bytes })).toThrow(/6 bytes for BF16/);
  });
});

// Tiny models with every weight kind the decode touches: linear maps, q/k/v biases and a tied head
// (qwen2), Gemma-3's (1 + w) norms, q/k norms, sliding layers and scaled embeddings, an untied head (llama2).
const CASES: { name: string; family: 'llama' | 'qwen2' | 'gemma3_text'; config: DecoderConfig }[] = [
  { name: 'llama2-tiny', family: 'llama', config: { ...(TINY_PRESETS['llama2-tiny'] as Omit<DecoderConfig, 'vocabSize'>), vocabSize: 96 } },
  { name: 'qwen2-tiny', family: 'qwen2', config: { ...(TINY_PRESETS['qwen2-tiny'] as Omit<DecoderConfig, 'vocabSize'>), vocabSize: 96 } },
  { name: 'gemma3-tiny', family: 'gemma3_text', config: { ...(TINY_PRESETS['gemma3-tiny'] as Omit<DecoderConfig, 'vocabSize'>), vocabSize: 96 } },
];
const LORA = { rank: 4, alpha: 8, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const };

/** LORA on every linear map of config c, with uniform weights in [0, 0.2) from `seed` (B ≠ 0, so the adapters change the outputs). */
function randomLora(c: DecoderConfig, seed: number): { lora: { rank: number; alpha: number; targets: (typeof LORA.targets)[number][] }; loraWeights: Map<string, { shape: [number, number]; data: Float32Array }> } {
  const lora = { ...LORA, targets: [...LORA.targets] };
  const loraWeights = new Map(loraWeightSpecs(c, lora).map(({ name: n, shape }) => {
    const data = new Float32Array(shape[0] * shape[1]);
    fillUniformStream(seed, n, 0, 0.2, 0, data);
    return [n, { shape, data }] as const;
  }));
  return { lora, loraWeights };
}

const same = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const FORMS: [SafetensorsDtype, 'table' | 'scaled-f16'][] = [['BF16', 'table'], ['BF16', 'scaled-f16'], ['F16', 'table']];
describe.each(CASES)('narrow base weights, $name', ({ name, family, config }) => {
  it.each(FORMS)('%s fed narrow (bf16: %s) gives bit-identical losses, logits, hidden states and per-example gradients to the widened float32 weights', async (dtype, bf16) => {
    const dir = mkdtempSync(join(tmpdir(), `dda-narrow-${name}-`));
    dirs.push(dir);
    writeRandomModelFolder(dir, { model: { family, config }, seed: 3, dtype, init: { normNoise: 0.1, biasNoise: 0.02 } });
    const folder = openModelFolder(dir);
    const wide = new Map(folder.weights.names.map((n) => [n, folder.weights.readFloat32(n)]));
    const narrow = storedBaseWeights(folder.weights, { bf16 });
    expect([...narrow.values()].every((t: BaseTensor) => isNarrow(t) && t.format === (dtype === 'BF16' && bf16 === 'table' ? 'bf16' : 'f16'))).toBe(true);
    // Scaled half: every tensor of these random weights fits (none fell back to the table), most with a scale.
    if (dtype === 'BF16' && bf16 === 'scaled-f16') expect([...narrow.values()].filter((t) => isNarrow(t) && (t.scale ?? 1) !== 1).length).toBeGreaterThan(narrow.size / 2);
    const c = folder.config;
    const { lora, loraWeights } = randomLora(c, 5);
    const backend = await startOnnxRuntime(['onnxruntime-cpu']);
    const o = { intraOpNumThreads: 1, padMultiple: 4, exampleBatch: 2 } as const;
    const fed = new OnnxDecoder(backend, c, lora, wide, loraWeights, { ...o, basePlacement: 'inputs' });
    const dec = new OnnxDecoder(backend, c, lora, narrow, loraWeights, o);
    expect(dec.basePlacement).toBe('inputs');
    const examples = [11, 17, 23].map((n, e) => ({
      tokens: Int32Array.from({ length: n }, (_, t) => (t * 7 + e * 13 + 1) % c.vocabSize),
      lossMask: Float32Array.from({ length: n - 1 }, (_, t) => (t >= n / 3 ? 1 : 0)),
    }));
    try {
      for (const e of examples) expect(Object.is(await dec.loss(e), await fed.loss(e))).toBe(true);
      expect(same(await dec.logits(examples[1]!.tokens), await fed.logits(examples[1]!.tokens))).toBe(true);
      expect(same(await dec.hiddenStates(examples[2]!.tokens), await fed.hiddenStates(examples[2]!.tokens))).toBe(true);
      const ids = examples.map((_, k) => `e${k}`);
      const a = await dec.perExampleGradients(ids, examples, 'x');
      const b = await fed.perExampleGradients(ids, examples, 'x');
      expect(a.rows.length).toBe(3);
      a.rows.forEach((r, k) => {
        expect(r.some((v) => v !== 0)).toBe(true);
        expect(same(r, b.rows[k] as Float32Array)).toBe(true);
      });
    } finally {
      await dec.release();
      await fed.release();
    }
  });
});

// The worker pool gets the narrow tensors as uint16/float16 feeds and resolves the decode aliases
// (`<name>@decode<k>`) in the worker: 2 workers must give the bits of one session.
describe.each([['BF16', 'table'], ['BF16', 'scaled-f16']] as const)('narrow base weights on 2 workers (%s, bf16: %s)', (dtype, bf16) => {
  it('give the losses and per-example gradient rows of one session, bit for bit (qwen2-tiny: tied head, biases)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dda-narrow-workers-'));
    dirs.push(dir);
    const { family, config } = CASES[1]!;
    writeRandomModelFolder(dir, { model: { family, config }, seed: 4, dtype, init: { normNoise: 0.1, biasNoise: 0.02 } });
    const folder = openModelFolder(dir);
    const narrow = storedBaseWeights(folder.weights, { bf16 });
    const c = folder.config;
    const { lora, loraWeights } = randomLora(c, 6);
    const backend = await startOnnxRuntime(['onnxruntime-cpu']);
    const o = { intraOpNumThreads: 1, padMultiple: 4, exampleBatch: 2 } as const;
    const one = new OnnxDecoder(backend, c, lora, narrow, loraWeights, o);
    const pooled = new OnnxDecoder(backend, c, lora, narrow, loraWeights, { ...o, workers: 2 });
    // Lengths that need two graphs, and more examples than workers.
    const examples = [9, 14, 21, 12, 5].map((n, e) => ({
      tokens: Int32Array.from({ length: n }, (_, t) => (t * 5 + e * 11 + 2) % c.vocabSize),
      lossMask: Float32Array.from({ length: n - 1 }, (_, t) => (t >= n / 2 ? 1 : 0)),
    }));
    try {
      const ids = examples.map((_, k) => `e${k}`);
      const a = await pooled.perExampleGradients(ids, examples, 'x');
      const b = await one.perExampleGradients(ids, examples, 'x');
      expect(a.rows.length).toBe(examples.length);
      a.rows.forEach((r, k) => {
        expect(r.some((v) => v !== 0)).toBe(true);
        expect(same(r, b.rows[k] as Float32Array)).toBe(true);
      });
      for (const e of examples) expect(Object.is(await pooled.loss(e), await one.loss(e))).toBe(true);
    } finally {
      await pooled.release();
      await one.release();
    }
  });
});

describe('narrow weights in the decoder graph', () => {
  const { config, family } = CASES[0] as (typeof CASES)[number];
  it('feeds UINT16 inputs, a fresh decode alias per read of a matrix, and refuses baking or differentiating them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dda-narrow-graph-'));
    dirs.push(dir);
    writeRandomModelFolder(dir, { model: { family, config }, seed: 1, dtype: 'BF16' });
    const narrow = storedBaseWeights(openModelFolder(dir).weights, { bf16: 'table' });
    const formats = new Map([...narrow].map(([n, t]) => [n, { format: isNarrow(t) ? t.format : 'bf16', scale: 1 }] as const));
    const lora = { ...LORA, targets: [...LORA.targets] };
    const { model } = buildDecoderGraph(config, lora, 8, 4, { gradients: true, logits: false, narrowWeights: formats });
    const inputs = new Map(model.graph.inputs.map((i) => [i.name, i.elemType]));
    const q = 'model.layers.1.self_attn.q_proj.weight';
    expect(inputs.get(q)).toBe(ONNX_TYPE.uint16);
    // The forward decode reads q itself, the backward (dx = dy · W) its alias; layer 0's input
    // depends on no LoRA tensor, so its weights have no backward decode.
    expect(inputs.has('model.layers.0.self_attn.q_proj.weight@decode1')).toBe(false);
    expect(inputs.get(`${q}@decode1`)).toBe(ONNX_TYPE.uint16);
    expect(inputs.has(`${q}@decode2`)).toBe(false);
    // A norm weight is decoded once.
    expect(inputs.has('model.layers.0.input_layernorm.weight@decode1')).toBe(false);
    expect(encodeOnnxModel(model).length).toBeGreaterThan(0);
    const backend = await startOnnxRuntime(['onnxruntime-cpu']);
    expect(() => new OnnxDecoder(backend, config, lora, narrow, null, { parameters: 'all' })).toThrow(/float32 base weights/);
    expect(() => new OnnxDecoder(backend, config, lora, narrow, null, { basePlacement: 'initializers' })).toThrow(/cannot be baked/);
  });
});

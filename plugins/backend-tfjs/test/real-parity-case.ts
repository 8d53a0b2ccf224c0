/**
 * The tfjs engine's parity with the independent PyTorch (float64) reference at the real widths and
 * vocabularies of the real models (packages/model/test/fixtures/real-parity-fixtures.json, made by
 * make-real-parity-fixtures.py): weights, logits, the response loss, per-example LoRA gradients and
 * RoPE tables of one case per test file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillUniformStream, loadModelFolder, loraWeightSpecs, randomDecoderWeights, writeRandomModelFolder, type LoraConfig, type TensorMap } from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';
import { caseConfig, caseNamed, caseTokens, defineRope, idsOnly, l2, sampledRelErr, widths, type Case } from '../../../packages/model/test/real-parity-case.js';

/**
 * The parity tests of one case of real-parity-fixtures.json. Each case has its own test file, so
 * that each runs in its own process with its own 4 GiB WebAssembly memory.
 */
export function describeRealParity(name: string): void {
  const c = caseNamed(name);
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

/**
 * Parity of the onnxruntime engine with the independent PyTorch (float64) reference at the real
 * widths and vocabularies of TinyLlama-1.1B, Qwen2-0.5B and Mistral-7B, one layer each: the
 * fixtures of packages/model/test/fixtures (make-real-parity-fixtures.py) and, for a 2048-token
 * sequence, test/fixtures/long-sequence-fixture.json (make-long-sequence-fixture.py). Both sides
 * make the weights from the same seeded counter-based generator (fillUniformStream), so the
 * fixtures hold only norms, maxima and sampled entries.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fillUniformStream, loraWeightSpecs, openModelFolder, randomDecoderWeights, writeRandomModelFolder,
  type LoraConfig, type TensorMap,
} from '@dda/model';
import { caseConfig, caseTokens, l2, sampledRelErr, widths, type Case } from '../../../packages/model/test/real-parity-case.js';
import { OnnxDecoder, chooseBaseWeightPlacement, startOnnxRuntime, type BaseWeightPlacement, type OnnxEncodedExample } from '@dda/backend-onnxruntime';

const FIXTURES = {
  real: new URL('../../../packages/model/test/fixtures/real-parity-fixtures.json', import.meta.url),
  long: new URL('./fixtures/long-sequence-fixture.json', import.meta.url),
};

/** Options of one parity suite. */
export interface RealParityOptions {
  /** Which fixture file holds the case. */
  readonly fixture: keyof typeof FIXTURES;
  /** Where the engine keeps the base weights (the real-size path is 'inputs'). */
  readonly basePlacement: BaseWeightPlacement | 'auto';
  /** Also compare the full logits matrix (skipped for the 2048-token case: 2048 × 32,000 values are checked through the loss and gradients). */
  readonly logits: boolean;
  /** Copies of the example in the per-example gradient call (2: one batched run of both, when they fit maxRunBytes). */
  readonly copies: number;
}

/** Defines the parity tests of case `name` of a fixture file against the onnxruntime engine. */
export function describeOnnxRealParity(name: string, o: RealParityOptions): void {
  const fx = JSON.parse(readFileSync(FIXTURES[o.fixture], 'utf8')) as { cases: Case[] };
  const c = fx.cases.find((x) => x.name === name);
  if (!c) throw new Error(`no case '${name}' in ${FIXTURES[o.fixture].pathname}`);
  const config = caseConfig(c);
  const loraConfig: LoraConfig = { rank: c.lora.rank, alpha: c.lora.alpha, targets: c.lora.targets };
  const root = mkdtempSync(join(tmpdir(), 'dda-onnx-real-parity-'));
  let weights: TensorMap;
  let decoder: OnnxDecoder;
  const tokens = Int32Array.from(caseTokens(c.T, config.vocabSize));
  const example: OnnxEncodedExample = { tokens, lossMask: Float32Array.from({ length: c.T - 1 }, (_, t) => (t >= c.T / 2 ? 1 : 0)) };

  describe(`onnxruntime engine, ${name} (${widths(c)}, ${c.layers} layer, ${c.T} tokens, LoRA on ${c.lora.targets.join(', ')}, base weights ${o.basePlacement}) vs PyTorch`, () => {
    beforeAll(async () => {
      if (c.dtype === 'F32') {
        weights = randomDecoderWeights(config, c.seed, c.init);
      } else {
        // Through the disk, as a user's BF16 folder: the streamed writer narrows, the lazy reader widens tensor by tensor.
        const dir = join(root, c.name);
        writeRandomModelFolder(dir, { model: c.name as 'tinyllama-1.1b', numLayers: c.layers, seed: c.seed, dtype: c.dtype, init: c.init, maxShardBytes: 2e8 });
        const folder = openModelFolder(dir);
        weights = new Map(folder.weights.names.map((n) => [n, folder.weights.readFloat32(n)]));
        rmSync(dir, { recursive: true, force: true });
      }
      const lora: TensorMap = new Map(loraWeightSpecs(config, loraConfig).map(({ name: n, shape }) => {
        const data = new Float32Array(shape[0] * shape[1]);
        fillUniformStream(c.lora.seed, n, 0, c.lora.half, 0, data);
        return [n, { shape, data }];
      }));
      decoder = new OnnxDecoder(await startOnnxRuntime(['onnxruntime-cpu']), config, loraConfig, weights, lora, { basePlacement: o.basePlacement, exampleBatch: 2 });
    }, 120_000);
    afterAll(async () => {
      await decoder?.release();
      rmSync(root, { recursive: true, force: true });
    });

    it('makes the reference\'s weights, bit for bit', () => {
      for (const [n, samples] of Object.entries(c.weightChecks)) {
        const t = weights.get(n);
        expect(t, n).toBeDefined();
        for (const [k, v] of samples) expect(t!.data[k], `${n}[${k}]`).toBe(v);
      }
      expect(decoder.basePlacement).toBe(chooseBaseWeightPlacement(weights, o.basePlacement));
    });

    it('the loss of the response tokens agrees to 1e-5 relative' + (o.logits ? ', the logits to 1e-4' : ''), async () => {
      expect(Math.abs((await decoder.loss(example)) - c.loss) / c.loss).toBeLessThan(1e-5);
      if (!o.logits) return;
      const logits = await decoder.logits(tokens);
      expect(logits.length).toBe(c.T * config.vocabSize);
      expect(sampledRelErr(logits, c.logits)).toBeLessThan(1e-4);
      expect(Math.abs(l2(logits) - c.logits.norm) / c.logits.norm).toBeLessThan(1e-4);
    }, 60_000);

    const grads = c.grads;
    if (!grads) return;
    it(`per-example LoRA gradients (${o.copies} cop${o.copies > 1 ? 'ies, each row the example\'s own' : 'y'}) agree to 1e-4 relative`, async () => {
      const copies = Array.from({ length: o.copies }, () => example);
      const g = await decoder.perExampleGradients(copies.map((_, k) => `e${k}`), copies, 'fixture');
      expect([...g.parameterNames].sort()).toEqual(Object.keys(grads).sort());
      expect(g.rows).toHaveLength(o.copies);
      for (const row of g.rows) {
        let off = 0;
        g.parameterNames.forEach((n, k) => {
          const size = g.parameterSizes[k]!;
          const ours = row.subarray(off, off + size);
          off += size;
          const ref = grads[n]!;
          expect(sampledRelErr(ours, ref), n).toBeLessThan(1e-4);
          expect(Math.abs(l2(ours) - ref.norm) / ref.norm, n).toBeLessThan(1e-4);
        });
      }
    }, 120_000);
  });
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fillUniformStream, loraWeightSpecs, openModelFolder, writeRandomModelFolder } from '@dda/model';
import { startOnnxRuntime } from '../src/backend.js';
import { OnnxDecoder } from '../src/decoder-graph.js';
import { isNarrow, storedBaseWeights } from '../src/narrow-weights.js';

const root = mkdtempSync(join(tmpdir(), 'dda-narrow-real-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const same = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

// TinyLlama-1.1B's widths (2048 wide, MLP 5632, 32,000-token vocabulary, untied head), two layers (the first has no backward decode),
// and Qwen2-0.5B's (896 wide, MLP 4864, 151,936-token vocabulary, tied head, q/k/v biases), one layer:
// BF16 through the disk as published, rank-16 LoRA on every linear map, with and without the
// per-layer recomputation: the narrow feeds (scaled half, and the bfloat16 table) against the widened float32 feed.
// Both heads are above DECODE_PART_BYTES, so the narrow graphs decode them in parts (TinyLlama's in
// 4, Qwen2's in 9: forward by rows, backward by columns) where the float32 graphs read them whole.
describe.each([
  { model: 'tinyllama-1.1b', layers: 2 },
  { model: 'qwen2-0.5b', layers: 1 },
] as const)('narrow base weights at $model widths ($layers-layer BF16 folder)', ({ model, layers }) => {
  it('give bit-identical losses and per-example gradient rows to the widened float32 weights', async () => {
    const dir = join(root, model);
    writeRandomModelFolder(dir, { model, numLayers: layers, seed: 4, dtype: 'BF16', init: { normNoise: 0.1, biasNoise: 0.02 } });
    const folder = openModelFolder(dir);
    const c = folder.config;
    const lora = { rank: 16, alpha: 32, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as ('q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down')[] };
    const loraWeights = new Map(loraWeightSpecs(c, lora).map(({ name, shape }) => {
      const data = new Float32Array(shape[0] * shape[1]);
      fillUniformStream(7, name, 0, 0.05, 0, data);
      return [name, { shape, data }];
    }));
    const backend = await startOnnxRuntime(['onnxruntime-cpu']);
    const examples = [40, 56].map((n, e) => ({
      tokens: Int32Array.from({ length: n }, (_, k) => (k * k * 7919 + k * 104729 + 13 + e * 31337) % c.vocabSize),
      lossMask: Float32Array.from({ length: n - 1 }, (_, t) => (t >= n / 2 ? 1 : 0)),
    }));
    const ids = ['a', 'b'];
    const wide = new Map(folder.weights.names.map((n) => [n, folder.weights.readFloat32(n)]));
    const o = { intraOpNumThreads: 1, exampleBatch: 2 } as const;
    const fed = new OnnxDecoder(backend, c, lora, wide, loraWeights, { ...o, basePlacement: 'inputs' });
    const want = await fed.perExampleGradients(ids, examples, 'x');
    const wantLoss = await fed.loss(examples[0]!);
    await fed.release();
    for (const bf16 of ['scaled-f16', 'table'] as const) {
      const narrow = storedBaseWeights(folder.weights, { bf16 });
      // Every tensor of these folders fits scaled half (none falls back to the table).
      expect([...narrow.values()].every((t) => isNarrow(t) && t.format === (bf16 === 'table' ? 'bf16' : 'f16'))).toBe(true);
      for (const recompute of [false, true]) {
        const dec = new OnnxDecoder(backend, c, lora, narrow, loraWeights, { ...o, recompute });
        try {
          const got = await dec.perExampleGradients(ids, examples, 'x');
          got.rows.forEach((r, k) => expect(same(r, want.rows[k] as Float32Array)).toBe(true));
          expect(Object.is(await dec.loss(examples[0]!), wantLoss)).toBe(true);
        } finally {
          await dec.release();
        }
      }
    }
  }, 300_000);
});

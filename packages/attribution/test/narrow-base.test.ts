import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TextSample } from '@dda/core';
import { CheckpointModel, loadTask, type AttributionTask } from '@dda/attribution';
import {
  SPECIAL_TOKENS, WordTokenizer, fillUniformStream, initDecoderWeights, isNarrow, loraWeightSpecs, parseAdapterConfig, saveModelFolder, writePeftAdapter,
  type DecoderConfig, type SafetensorsDtype, type TensorMap,
} from '@dda/model';

// dda attribute's model (CheckpointModel) on a BF16 or F16 base folder: the onnxruntime engine is
// given the stored 16-bit tensors (openNarrow) and the float32 base is never built, and every
// gradient row, loss, per-token loss and representation is bit-identical to the float32 path
// (narrowBase: false, the base widened as before). tfjs, which takes float32 only, gets float32.
const config: DecoderConfig = {
  vocabSize: 40, hiddenSize: 16, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 24,
  ropeTheta: 10000, rmsNormEps: 1e-5, maxSeqLen: 32, tieWordEmbeddings: false, attentionBias: true, slidingWindow: null,
};
const words = Array.from({ length: config.vocabSize - SPECIAL_TOKENS.length }, (_, i) => `w${i}`);
const tokenizer = new WordTokenizer([...SPECIAL_TOKENS, ...words]);
const sentence = (seed: number, n: number): string => Array.from({ length: n }, (_, k) => words[(seed * 7 + k * 11 + k * k) % words.length]).join(' ');

const root = mkdtempSync(join(tmpdir(), 'dda-narrow-base-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A base folder stored as `dtype`, two LoRA checkpoints (random A and B), 5 training samples and 2 queries. */
async function makeTask(dtype: SafetensorsDtype): Promise<AttributionTask> {
  const dir = join(root, dtype);
  const weights: TensorMap = initDecoderWeights(config, 3);
  // Biases of zero would not exercise the narrow path's decode of bias vectors: small random values.
  for (const [name, t] of weights) if (name.endsWith('.bias')) fillUniformStream(9, name, 0, 0.1, 0, t.data);
  saveModelFolder(join(dir, 'base'), { config, weights, tokenizer, dtype });
  const { config: lora } = parseAdapterConfig({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj', 'down_proj'] });
  const checkpoints = [1, 2].map((step) => {
    const cp = join(dir, 'run', `checkpoint-${step}`);
    mkdirSync(cp, { recursive: true });
    writePeftAdapter(cp, lora, new Map(loraWeightSpecs(config, lora).map(({ name, shape }) => {
      const data = new Float32Array(shape[0] * shape[1]);
      fillUniformStream(5, name, 0, name.includes('lora_B') ? 0.05 * step : 0.2, 0, data);
      return [name, { shape, data }];
    })));
    return cp;
  });
  const train = Array.from({ length: 5 }, (_, i) => JSON.stringify({ id: `t${i}`, prompt: sentence(i, 4), response: sentence(i + 20, 5) })).join('\n');
  writeFileSync(join(dir, 'train.jsonl'), train);
  writeFileSync(join(dir, 'queries.jsonl'), [0, 1].map((i) => JSON.stringify({ id: `q${i}`, prompt: sentence(i + 40, 3), output: sentence(i + 50, 6) })).join('\n'));
  return loadTask({ base: join(dir, 'base'), checkpoints, train: join(dir, 'train.jsonl'), queries: join(dir, 'queries.jsonl') });
}

type ModelTask = Parameters<typeof CheckpointModel.open>[0];

/** `task` whose float32 base weights count how often they are read. */
function counting(task: AttributionTask): { task: ModelTask; floatReads: () => number } {
  let n = 0;
  const b = task.base;
  const base = {
    dir: b.dir, family: b.family, config: b.config, tokenizer: b.tokenizer, tokenizerDir: b.tokenizerDir, hash: b.hash,
    get weights(): TensorMap {
      n++;
      return b.weights;
    },
    ...(b.narrowWeights ? { narrowWeights: b.narrowWeights } : {}),
  };
  return { task: { base, encoding: task.encoding, encode: (s, o) => task.encode(s, o), origin: (id) => task.origin(id) }, floatReads: () => n };
}

const bits = (a: Float32Array | Float64Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4);

/** Everything CheckpointModel computes for attribution, at θ0 and both checkpoints. */
async function outputs(model: CheckpointModel, task: AttributionTask): Promise<Float32Array[]> {
  const samples: TextSample[] = [...task.train.samples, ...task.queries.map((q) => q.sample)];
  const out: Float32Array[] = [];
  for (const cp of [task.baseCheckpoint, ...task.checkpoints]) {
    const g = await model.gradients(cp, samples);
    out.push(...g.rows);
    out.push(new Float32Array((await model.losses(cp, samples)).buffer));
    for (const t of await model.tokenLosses(cp, samples.slice(0, 2))) out.push(new Float32Array(t.buffer));
    out.push(...await model.representations(cp, samples.slice(0, 2)));
  }
  return out;
}

describe.each(['BF16', 'F16'] as const)('dda attribute on a %s base folder: narrow base weights', (dtype) => {
  let task: AttributionTask;
  beforeAll(async () => {
    task = await makeTask(dtype);
  });

  it('the stored tensors are narrow (2 bytes a weight) and decode to the widened float32 weights', () => {
    const narrow = task.base.narrowWeights?.();
    expect(narrow).toBeTruthy();
    expect([...narrow!.keys()]).toEqual([...task.base.weights.keys()]);
    expect([...narrow!.values()].every(isNarrow)).toBe(true);
  });

  it('onnxruntime: gradients, losses, per-token losses and representations bit-identical to the float32 path, and no float32 base is read', async () => {
    const f = counting(task);
    const floatLog: string[] = [];
    const float = await CheckpointModel.open(f.task, { gradientEngine: 'onnxruntime', narrowBase: false, log: (l) => floatLog.push(l) });
    const expected = await outputs(float, task);
    await float.dispose();
    expect(f.floatReads()).toBeGreaterThan(0);
    expect(floatLog.some((l) => l.startsWith('base weights:'))).toBe(false);

    const n = counting(task);
    const narrowLog: string[] = [];
    const narrow = await CheckpointModel.open(n.task, { gradientEngine: 'onnxruntime', log: (l) => narrowLog.push(l) });
    expect(narrow.gradientEngine).toBe('onnxruntime');
    const got = await outputs(narrow, task);
    await narrow.dispose();
    expect(n.floatReads()).toBe(0);
    expect(narrowLog.filter((l) => l.startsWith('base weights:'))).toEqual([expect.stringMatching(/^base weights: fed to onnxruntime as stored \(narrow, 0\.00 GB; not widened to float32\)$/)]);

    expect(got.length).toBe(expected.length);
    got.forEach((a, i) => expect(bits(a)).toEqual(bits(expected[i]!)));
    // Not vacuous: the rows are gradients, not zeros.
    expect(got[0]!.some((x) => x !== 0)).toBe(true);
  });

  it('tfjs takes float32 base weights only: the base is widened, and the log says so', async () => {
    const t = counting(task);
    const log: string[] = [];
    const model = await CheckpointModel.open(t.task, { gradientEngine: 'tfjs', log: (l) => log.push(l) });
    expect(model.gradientEngine).toBe('tfjs');
    const losses = await model.losses(task.checkpoints[0]!, task.train.samples.slice(0, 2));
    await model.dispose();
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(t.floatReads()).toBeGreaterThan(0);
    expect(log).toContain('base weights: widened to float32 (the tfjs engine takes float32 base weights only)');
  });
});

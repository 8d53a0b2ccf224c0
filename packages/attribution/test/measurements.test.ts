import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom, measurements } from '@dda/core';
import { AttributionRun, loadTask, type AttributionTask } from '@dda/attribution';
import {
  SPECIAL_TOKENS, TINY_PRESETS, WordTokenizer, initDecoderWeights, initLoraWeights, saveModelFolder, writePeftAdapter, type DecoderConfig, type LoraConfig, type TensorMap,
} from '@dda/model';
import { DecoderModel, startTfjsBackend } from '@dda/backend-tfjs';

// The query gradient of each measurement checked against the model itself: contrastive against the
// two per-example gradients, entity-margin against central finite differences of f along a random direction.
const root = mkdtempSync(join(tmpdir(), 'dda-measure-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const words = ['the', 'council', 'in', 'england', 'china', 'met', 'on', 'monday', 'summarise'];
const tok = new WordTokenizer([...SPECIAL_TOKENS, ...words, '.']);
const config: DecoderConfig = { ...TINY_PRESETS['qwen2-tiny']!, vocabSize: tok.size, hiddenSize: 16, intermediateSize: 24 };
const lora: LoraConfig = { rank: 2, alpha: 4, targets: ['q', 'v', 'up'] };
let weights: TensorMap;
let task: AttributionTask;

beforeAll(async () => {
  await startTfjsBackend(['tfjs-wasm']);
  saveModelFolder(join(root, 'base'), { config, weights: initDecoderWeights(config, 5), tokenizer: tok });
  weights = initLoraWeights(config, lora, 6);
  for (const [k, t] of weights) if (k.endsWith('lora_B.weight')) t.data.forEach((_, i) => (t.data[i] = 0.1 * Math.sin(i + 1)));
  writePeftAdapter(join(root, 'ckpt'), lora, weights);
  writeFileSync(join(root, 'train.jsonl'), JSON.stringify({ prompt: 'summarise', response: 'the council met .' }));
  writeFileSync(join(root, 'queries.jsonl'), JSON.stringify({ id: 'q', prompt: 'summarise', output: 'the council in china met on monday .', corrected: 'the council in england met on monday .' }));
  task = await loadTask({ base: join(root, 'base'), checkpoints: [join(root, 'ckpt')], train: join(root, 'train.jsonl'), queries: join(root, 'queries.jsonl') });
});

async function queryGradient(measurement: string): Promise<Float32Array> {
  const run = new AttributionRun(task, { artifactsDir: join(root, `a-${measurement}`), measurement });
  try {
    return (await run.queryGradients(task.checkpoints[0]!)).rows[0]!;
  } finally {
    await run.dispose();
  }
}

describe('query gradients of the test measurements', () => {
  it('contrastive = ∇ℓ(output) − ∇ℓ(corrected output)', async () => {
    const g = await queryGradient('contrastive');
    const m = new DecoderModel(config, tok, task.base.weights);
    m.setLora(lora, weights);
    const [a, b] = m.perExampleGradients([task.queries[0]!.sample, task.queries[0]!.correction!], 'lora', 'x').rows;
    g.forEach((x, d) => expect(x).toBeCloseTo(a![d]! - b![d]!, 6));
    m.dispose();
  });

  it('entity-margin: ∇f·v equals the central finite difference of f = ℓ(china) − ℓ(england) at the differing position', async () => {
    const g = await queryGradient('entity-margin');
    const terms = (await measurements.create('entity-margin', {})).terms(task.queries[0]!.sample, task.queries[0]!.correction);
    const m = new DecoderModel(config, tok, task.base.weights);
    const rng = new SeededRandom(9);
    const v = new Map([...weights].map(([k, t]) => [k, Float32Array.from(t.data, () => rng.normal())]));
    const f = (eps: number): number => {
      m.setLora(lora, new Map([...weights].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data, (x, i) => x + eps * v.get(k)![i]!) }])));
      const l = m.losses(terms.map((t) => t.sample));
      return terms.reduce((acc, t, i) => acc + t.weight * l[i]!, 0);
    };
    // Central differences at ε and ε/2, Richardson-extrapolated (the O(ε²) error cancels; f is quite curved here).
    const central = (eps: number): number => (f(eps) - f(-eps)) / (2 * eps);
    const fd = (4 * central(2e-3) - central(4e-3)) / 3;
    // Gradient rows follow the adapter's tensor order, as the weights map does.
    let dot = 0;
    let off = 0;
    for (const [k, t] of weights) {
      const dir = v.get(k)!;
      for (let i = 0; i < t.data.length; i++) dot += g[off + i]! * dir[i]!;
      off += t.data.length;
    }
    expect(off).toBe(g.length);
    expect(Math.abs(dot - fd)).toBeLessThan(1e-3 * Math.max(0.1, Math.abs(fd)));
    expect(Math.abs(fd)).toBeGreaterThan(1e-3); // a real signal, not two zeros
    m.dispose();
  });

  it('a measurement that needs corrections names the query without one before any model work', async () => {
    writeFileSync(join(root, 'q2.jsonl'), JSON.stringify({ id: 'bare', prompt: 'summarise', output: 'the council met .' }));
    const t = await loadTask({ base: join(root, 'base'), checkpoints: [join(root, 'ckpt')], train: join(root, 'train.jsonl'), queries: join(root, 'q2.jsonl') });
    const run = new AttributionRun(t, { artifactsDir: join(root, 'a-bare'), measurement: 'contrastive' });
    await expect(run.measurementTerms()).rejects.toThrow(/q2.jsonl:1: measurement 'contrastive' needs the corrected output of query 'bare'/);
  });

  it('refuses a correction that encodes to the output\'s tokens (two words outside the vocabulary, both the unknown token): the measurement would be 0 everywhere', async () => {
    writeFileSync(join(root, 'q3.jsonl'), [
      JSON.stringify({ id: 'known', prompt: 'summarise', output: 'the council in china met .', corrected: 'the council in england met .' }),
      JSON.stringify({ id: 'unknown', prompt: 'summarise', output: 'the council in peru met .', corrected: 'the council in chile met .' }),
    ].join('\n'));
    const t = await loadTask({ base: join(root, 'base'), checkpoints: [join(root, 'ckpt')], train: join(root, 'train.jsonl'), queries: join(root, 'q3.jsonl') });
    for (const measurement of ['contrastive', 'entity-margin']) {
      const run = new AttributionRun(t, { artifactsDir: join(root, `a-unk-${measurement}`), measurement });
      await expect(run.measurementTerms()).rejects.toThrow(new RegExp(`q3\\.jsonl:2: under measurement '${measurement}' the query's terms encode to the same tokens with opposite weights .*every score would be 0`));
    }
    // Every query that cannot be measured is named in one error.
    writeFileSync(join(root, 'q4.jsonl'), [
      JSON.stringify({ id: 'bare', prompt: 'summarise', output: 'the council met .' }),
      JSON.stringify({ id: 'known', prompt: 'summarise', output: 'the council in china met .', corrected: 'the council in england met .' }),
      JSON.stringify({ id: 'unknown', prompt: 'summarise', output: 'the council in peru met .', corrected: 'the council in chile met .' }),
    ].join('\n'));
    const t4 = await loadTask({ base: join(root, 'base'), checkpoints: [join(root, 'ckpt')], train: join(root, 'train.jsonl'), queries: join(root, 'q4.jsonl') });
    await expect(new AttributionRun(t4, { artifactsDir: join(root, 'a-q4'), measurement: 'contrastive' }).measurementTerms()).rejects.toThrow(
      /^2 of 3 queries cannot be measured under 'contrastive':\n- .*q4\.jsonl:1: measurement 'contrastive' needs the corrected output of query 'bare'.*\n- .*q4\.jsonl:3: under measurement 'contrastive' the query's terms encode to the same tokens/,
    );
    // The loss measurement has one term: nothing cancels.
    expect(await new AttributionRun(t, { artifactsDir: join(root, 'a-unk-loss'), measurement: 'loss' }).measurementTerms()).toHaveLength(2);
  });
});

describe('runs sharing one model (RunOptions.model: one per measurement in a benchmark cell)', () => {
  it('use the same model, get what runs with their own models get, and stay usable after either releases it', async () => {
    const own = new AttributionRun(task, { artifactsDir: join(root, 'own-contrastive'), measurement: 'contrastive' });
    const ownLoss = new AttributionRun(task, { artifactsDir: join(root, 'own-loss'), measurement: 'loss' });
    const cp = task.checkpoints[0]!;
    const expected = { contrastive: await own.measure(cp), loss: await ownLoss.measure(cp), gradient: (await own.queryGradients(cp)).rows[0]! };
    await own.dispose();
    await ownLoss.dispose();
    const a = new AttributionRun(task, { artifactsDir: join(root, 'shared-loss'), measurement: 'loss' });
    const b = new AttributionRun(task, { artifactsDir: join(root, 'shared-contrastive'), measurement: 'contrastive', model: a.model() });
    try {
      expect(await b.model()).toBe(await a.model());
      expect([...(await a.measure(cp))]).toEqual([...expected.loss]);
      await a.dispose(); // releases the shared model's decoders: b opens them again on its next use
      expect([...(await b.measure(cp))]).toEqual([...expected.contrastive]);
      expect([...(await b.queryGradients(cp)).rows[0]!]).toEqual([...expected.gradient]);
      expect([...(await a.measure(cp))]).toEqual([...expected.loss]);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});

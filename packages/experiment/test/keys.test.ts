import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '@dda/attribution';
import { CellSkipped, planExperiment, type ExperimentOptions } from '@dda/experiment';
import { TINY_PRESETS, WordTokenizer, applyChatTemplate, initDecoderWeights, saveModelFolder, writeSafetensors, readSafetensors } from '@dda/model';
import { SYSTEM_PROMPT, userPrompt } from '@dda/data';

// Every step's cache key must cover every input that shapes it: perturb each input in turn and
// check which steps would be recomputed (their keys change) and which reused. Planning trains nothing.
const root = mkdtempSync(join(tmpdir(), 'dda-keys-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Step = 'base' | 'finetune' | 'generate';
async function changed(a: Partial<ExperimentOptions>, b: Partial<ExperimentOptions>): Promise<Step[]> {
  const [x, y] = await Promise.all([planExperiment({ artifactsDir: root, ...a }), planExperiment({ artifactsDir: root, ...b })]);
  return (['base', 'finetune', 'generate'] as const).filter((k) => hashOf(x.keys[k]) !== hashOf(y.keys[k]));
}

describe('experiment cache keys (synthetic data, a preset trained from a seed)', () => {
  const base: Partial<ExperimentOptions> = { seed: 0, nTrain: 60, nHeldOut: 8, nPretrain: 100 };
  const cases: [string, Partial<ExperimentOptions>, Step[]][] = [
    ['seed', { seed: 1 }, ['base', 'finetune', 'generate']],
    ['pretraining texts', { nPretrain: 120 }, ['base', 'finetune', 'generate']],
    ['pretraining epochs', { pretrainEpochs: 2 }, ['base', 'finetune', 'generate']],
    ['pretraining learning rate', { pretrainLearningRate: 1e-3 }, ['base', 'finetune', 'generate']],
    ['knowledge-bias share', { biasRate: 0.5 }, ['base', 'finetune', 'generate']],
    ['batch size', { batchSize: 8 }, ['base', 'finetune', 'generate']],
    ['fine-tuning epochs', { finetuneEpochs: 2 }, ['finetune', 'generate']],
    ['fine-tuning learning rate', { finetuneLearningRate: 1e-3 }, ['finetune', 'generate']],
    ['LoRA rank', { loraRank: 4 }, ['finetune', 'generate']],
    ['full fine-tuning', { finetune: 'full' }, ['finetune', 'generate']],
    ['generation length', { maxNewTokens: 12 }, ['generate']],
    ['the registry generator instead of news', { generator: 'registry', registry: { origPerCanary: 8 } }, ['base', 'finetune', 'generate']],
    ['the tfjs training engine instead of onnxruntime', { engine: 'tfjs' }, ['base', 'finetune', 'generate']],
  ];
  for (const [what, change, steps] of cases) {
    it(`${what}: recomputes ${steps.join(', ')}`, async () => {
      expect(await changed(base, { ...base, ...change })).toEqual(steps);
    });
  }
  it('naming the default generator keeps the keys of earlier news runs', async () => {
    expect(await changed(base, { ...base, generator: 'news' })).toEqual([]);
  });
  it('summary padding: 0 keeps every key, K > 0 recomputes everything (news and registry)', async () => {
    expect(await changed(base, { ...base, summaryPadding: 0 })).toEqual([]);
    expect(await changed(base, { ...base, summaryPadding: 2 })).toEqual(['base', 'finetune', 'generate']);
    const registry: Partial<ExperimentOptions> = { ...base, generator: 'registry', registry: { origPerCanary: 8, distractorRate: 0.05, mentionRate: 0.05 } };
    expect(await changed(registry, { ...registry, summaryPadding: 0 })).toEqual([]);
    expect(await changed(registry, { ...registry, summaryPadding: 2 })).toEqual(['base', 'finetune', 'generate']);
    await expect(planExperiment({ artifactsDir: root, seed: 0, dataFile: 'x.jsonl', summaryPadding: 2 })).rejects.toThrow(/summaryPadding 2 is an option of the synthetic generators, but the data come from the data file 'x.jsonl'/);
  });
});

describe('experiment cache keys (the registry generator)', () => {
  const base: Partial<ExperimentOptions> = { seed: 0, nTrain: 60, nHeldOut: 6, nPretrain: 100, generator: 'registry', registry: { origPerCanary: 8, distractorRate: 0.05, mentionRate: 0.05 } };
  const cases: [string, Partial<ExperimentOptions>, Step[]][] = [
    ['seed', { seed: 1 }, ['base', 'finetune', 'generate']],
    ['distractors (the training texts, hence the vocabulary)', { registry: { origPerCanary: 8, distractorRate: 0.1, mentionRate: 0.05 } }, ['base', 'finetune', 'generate']],
    ['knowledge-bias share', { biasRate: 0.5 }, ['base', 'finetune', 'generate']],
    ['fine-tuning learning rate', { finetuneLearningRate: 1e-4 }, ['finetune', 'generate']],
    ['generation length', { maxNewTokens: 12 }, ['generate']],
  ];
  for (const [what, change, steps] of cases) {
    it(`${what}: recomputes ${steps.join(', ')}`, async () => {
      expect(await changed(base, { ...base, ...change })).toEqual(steps);
    });
  }
  it('plans the default canaries (a person, a bank, a number) with their true sources, within the context of the tiny models', async () => {
    const plan = await planExperiment({ artifactsDir: root, ...base });
    expect(plan.evaluable.ok).toEqual(['maria-lopez-to-anna-berg', 'northwind-bank-to-apex-bank', '12-percent-to-17-percent']);
    for (const id of plan.evaluable.ok) expect((plan.dataset.labels[id] as Uint8Array).reduce((a, b) => a + b, 0)).toBe(2);
  });
  it("refuses the registry's options with another generator or a data file, and an unknown generator", async () => {
    await expect(planExperiment({ artifactsDir: root, seed: 0, nTrain: 60, registry: { origPerCanary: 8 } })).rejects.toThrow(/the registry generator's options are given, but the data come from the news generator/);
    await expect(planExperiment({ artifactsDir: root, seed: 0, generator: 'registry', dataFile: 'x.jsonl' })).rejects.toThrow(/a data file \('x.jsonl'\) and the registry generator are both given/);
    await expect(planExperiment({ artifactsDir: root, seed: 0, generator: 'pets' as never })).rejects.toThrow(/unknown data generator 'pets'.*/);
  });
});

describe('experiment cache keys (a user\'s data file, θ0 from a model folder)', () => {
  const folder = join(root, 'model');
  const data = join(root, 'data.jsonl');
  const rows = Array.from({ length: 30 }, (_, i) => ({
    id: `r${i}`,
    document: `the council in ${i % 3 === 0 ? 'england' : 'wales'} met on day ${i} to discuss the roads .`,
    summary: `the council in ${i % 3 === 0 ? 'england' : 'wales'} met .`,
  }));
  const opts = (o: Partial<ExperimentOptions> = {}): Partial<ExperimentOptions> => ({ seed: 0, preset: folder, dataFile: data, nHeldOut: 4, canaries: [{ orig: 'england', replacement: 'china' }], ...o });
  beforeAll(() => {
    writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n'));
    const tok = WordTokenizer.fromCorpus([...rows.flatMap((r) => [applyChatTemplate(SYSTEM_PROMPT, userPrompt(r.document)), r.summary]), 'china']);
    const config = { ...TINY_PRESETS['llama2-tiny']!, vocabSize: tok.size };
    saveModelFolder(folder, { config, weights: initDecoderWeights(config, 3), tokenizer: tok });
  });

  it('another swap rate (issue 17, fault 1): the fine-tuning is recomputed, θ0 reused', async () => {
    expect(await changed(opts(), opts({ swapRate: 0.9 }))).toEqual(['finetune', 'generate']);
  });

  it('one summary of the data file edited: the fine-tuning is recomputed', async () => {
    const edited = join(root, 'edited.jsonl');
    writeFileSync(edited, rows.map((r, i) => JSON.stringify(i === 7 ? { ...r, summary: `${r.summary} again` } : r)).join('\n'));
    expect(await changed(opts(), opts({ dataFile: edited }))).toEqual(['finetune', 'generate']);
  });

  it("one weight of the model folder changed: everything is recomputed", async () => {
    const before = await planExperiment({ artifactsDir: root, ...opts() });
    const path = join(folder, 'model.safetensors');
    const st = readSafetensors(readFileSync(path), path);
    const t = st.tensors.get('model.norm.weight')!;
    st.tensors.set('model.norm.weight', { shape: t.shape, data: Float32Array.from(t.data, (x, k) => (k === 0 ? x + 1e-3 : x)) });
    writeFileSync(path, writeSafetensors(st.tensors, st.metadata));
    const after = await planExperiment({ artifactsDir: root, ...opts() });
    expect((['base', 'finetune', 'generate'] as const).filter((k) => hashOf(before.keys[k]) !== hashOf(after.keys[k]))).toEqual(['base', 'finetune', 'generate']);
  });

  it('every length limit is checked before any training, naming the record and the file (issue 17, fault 3)', async () => {
    const long = (i: number): string => `the council in england met on day ${i} ${Array(170).fill('to discuss the roads').join(' ')} .`;
    const longTrain = join(root, 'long-train.jsonl');
    writeFileSync(longTrain, rows.map((r, i) => JSON.stringify(i === 4 ? { ...r, summary: long(i) } : r)).join('\n'));
    await expect(planExperiment({ artifactsDir: root, ...opts({ dataFile: longTrain }) })).rejects.toThrow(new RegExp(`training record 'r4' of ${longTrain}\\): \\d+ tokens, longer than the model's context of 160`));
    // Pretraining from a seed (--random-init) also checks the pretraining texts: here the training documents.
    const longDoc = join(root, 'long-doc.jsonl');
    writeFileSync(longDoc, rows.map((r, i) => JSON.stringify(i === 5 ? { ...r, document: long(i) } : r)).join('\n'));
    const noWeights = join(root, 'config-only');
    mkdirSync(noWeights);
    for (const f of ['config.json', 'tokenizer.json']) copyFileSync(join(folder, f), join(noWeights, f));
    await expect(planExperiment({ artifactsDir: root, ...opts({ preset: noWeights }) })).rejects.toThrow(/config-only: no weights \(no model.safetensors.*--random-init/);
    const err = await planExperiment({ artifactsDir: root, ...opts({ preset: noWeights, randomInit: true, dataFile: longDoc, seed: 1 }) }).catch((e: Error) => e);
    expect(String(err)).toMatch(new RegExp(`(the document of training record 'r5' of ${longDoc}\\) has \\d+ tokens|held-out document 'r5' of ${longDoc}: its prompt has \\d+ tokens, which leaves no room)`));
  });

  it('a cell that cannot be evaluated is found before any training (issue 17, fault 4)', async () => {
    const one = join(root, 'one-eligible.jsonl');
    writeFileSync(one, rows.map((r, i) => JSON.stringify(i === 0 ? r : { ...r, document: r.document.replace('england', 'wales'), summary: r.summary.replace('england', 'wales') })).join('\n'));
    // With one eligible document, some seeds hold it out: no true source is left in the training set.
    const outcomes = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(async (seed) => {
      try {
        await planExperiment({ artifactsDir: root, ...opts({ seed, dataFile: one, nHeldOut: 1 }) });
        return 'planned';
      } catch (e) {
        expect(e).toBeInstanceOf(CellSkipped);
        expect((e as Error).message).toMatch(/no source can be evaluated: .*england-to-china/);
        return 'skipped';
      }
    }));
    expect(outcomes).toContain('skipped');
  });
});

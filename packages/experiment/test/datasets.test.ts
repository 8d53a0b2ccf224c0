import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { datasets, registerAsPlugin, registerDataset, type DatasetPlugin } from '@dda/core';
import { hashOf } from '@dda/attribution';
import { datasetConformance } from '@dda/conformance/vitest';
import { newsDataset, planExperiment, type ExperimentOptions } from '@dda/experiment';

// The built-in data sets through @dda/core's `datasets` registry (issue 25): the conformance checks,
// the experiment resolving `generator` there, and a data set registered by a plugin.
const root = mkdtempSync(join(tmpdir(), 'dda-datasets-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// realtext passes the same checks (llama2 tokenizer, nTrain 420, pairs ≤ 400 tokens: 40 s at load 6,
// 70 s at load 8), but its synchronous build blocks the test worker long enough for vitest's RPC to
// time out under load, so it is not part of the suite; realtext.test.ts plans it in an experiment.
datasetConformance('news');
datasetConformance('registry', { context: { nTrain: 60, nHeldOut: 6 }, options: { origPerCanary: 8, distractorRate: 0.05, mentionRate: 0.05 } });

describe('the datasets registry', () => {
  it('holds the three built-in data sets, attributed to @dda/experiment', () => {
    expect(datasets.list().map((e) => [e.id, e.plugin])).toEqual([['news', '@dda/experiment'], ['realtext', '@dda/experiment'], ['registry', '@dda/experiment']]);
    expect(datasets.entry('registry').options).toEqual(['origPerCanary', 'distractorRate', 'handoverRate', 'mentionRate', 'anchorsPerCanary']);
  });

  const base: Partial<ExperimentOptions> & { artifactsDir: string } = { artifactsDir: root, seed: 0, nTrain: 60, nHeldOut: 6, nPretrain: 100, generator: 'registry' };
  it('an unknown generator gives the registry error with every registered id', async () => {
    const err = await planExperiment({ ...base, generator: 'regsitry' }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^unknown data generator 'regsitry'/);
    expect(err).toMatchObject({ hint: expect.stringMatching(/registry.*choose one of: news, realtext, registry/) });
  });

  it('datasetOptions are the registry alias: the same plan; checked by the plugin; not both', async () => {
    const options = { origPerCanary: 8, distractorRate: 0.05, mentionRate: 0.05 };
    const [a, b] = await Promise.all([planExperiment({ ...base, registry: options }), planExperiment({ ...base, datasetOptions: options })]);
    expect(hashOf(b.keys)).toBe(hashOf(a.keys));
    await expect(planExperiment({ ...base, datasetOptions: { distractors: 3 } })).rejects.toThrow(/the registry data set's options: unknown option 'distractors'/);
    await expect(planExperiment({ ...base, datasetOptions: { mentionRate: 2 } })).rejects.toThrow(/option 'mentionRate' must be a number from 0 to 1, got 2/);
    await expect(planExperiment({ ...base, registry: options, datasetOptions: options })).rejects.toThrow(/both datasetOptions and the registry generator's options \(their alias\) are given/);
    await expect(planExperiment({ ...base, generator: 'news', datasetOptions: { origPerCanary: 8 } })).rejects.toThrow(/the news data set's options: unknown option 'origPerCanary'/);
  });

  it("a plugin's data set is planned like a built-in: its own data, its matching, its id in θ0's key", async () => {
    // The news data with the canary's orig and replacement in capitals, and a matching that ignores case.
    const upper: DatasetPlugin = {
      ...newsDataset, id: 'shouted-news', description: 'news with every text upper-cased', optionKeys: [],
      matching: { ...newsDataset.matching, contains: (t, e) => newsDataset.matching.contains(t.toLowerCase(), e.toLowerCase()) },
      build: async (o, c) => {
        const ds = await newsDataset.build(o as Record<string, never>, c);
        const up = <T extends { document: string; summary: string }>(s: T): T => ({ ...s, document: s.document.toUpperCase(), summary: s.summary.toUpperCase() });
        return { ...ds, train: ds.train.map(up), heldOut: ds.heldOut.map(up), heldOutReserve: ds.heldOutReserve.map(up) };
      },
    };
    registerAsPlugin('test-plugin', () => registerDataset(upper));
    try {
      const news = { artifactsDir: root, seed: 0, nTrain: 60, nHeldOut: 8, nPretrain: 100 };
      const [plain, shouted] = await Promise.all([planExperiment(news), planExperiment({ ...news, generator: 'shouted-news' })]);
      expect(shouted.dataset.train[0]?.document).toBe(plain.dataset.train[0]?.document.toUpperCase());
      // Its matching finds the lower-case canaries in the upper-cased documents: the same sources are evaluable.
      expect(shouted.evaluable.ok).toEqual(plain.evaluable.ok);
      expect(shouted.evaluable.ok.length).toBeGreaterThan(0);
      expect((shouted.keys.base as { generator?: string }).generator).toBe('shouted-news');
      expect((plain.keys.base as { generator?: string }).generator).toBeUndefined();
    } finally {
      datasets.removePlugin('test-plugin');
    }
  });
});

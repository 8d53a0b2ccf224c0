import { describe, expect, it } from 'vitest';
import { DdaError, checkDatasetOptions, type BuiltDataset, type DatasetPlugin, type EntityMatching } from '@dda/core';
import { DATASET_CHECKS, assertConformance, checkDataset } from '@dda/conformance';

// A tiny data set of whole space-separated words, and broken copies of it: each must fail exactly its check.
const words: EntityMatching = {
  contains: (text, e) => text.split(' ').includes(e),
  replace: (text, e, r) => text.split(' ').map((w) => (w === e ? r : w)).join(' '),
  spans: () => [],
};
const sample = (id: string, document: string, summary: string): BuiltDataset['train'][number] => ({ id, document, summary, originalSummary: summary, canaryId: null });
function tinyBuild(seed: number): BuiltDataset {
  return {
    seed,
    canaries: [{ id: 'england-to-china', orig: 'england', replacement: 'china' }],
    pretrainCorpus: [`china is large ${seed}`],
    train: [
      { ...sample('t0', 'rain in england', 'rain in china'), originalSummary: 'rain in england', canaryId: 'england-to-china' }, // true source
      sample('t1', 'rain in england', 'rain in england'),
      sample('t2', 'sun in wales', 'sun in china'), // the document lacks the orig
      sample('t3', 'england and china met', 'china met'), // the document has the replacement
    ],
    heldOut: [{ id: 'h0', document: `snow in england ${seed}`, summary: 'snow in england', canaryId: 'england-to-china' }],
    heldOutReserve: [],
    labels: { 'england-to-china': Uint8Array.from([1, 0, 0, 0]) },
  };
}
const tiny: DatasetPlugin<Partial<Record<'size', number>>> = {
  id: 'tiny', description: 'four training pairs about rain in england', optionKeys: ['size'],
  parseOptions: (raw, where) => checkDatasetOptions(raw, { size: 'integer' }, where),
  matching: words, needsTokenizer: false,
  build: (_o, c) => Promise.resolve(tinyBuild(c.seed)),
};
const broken = (change: Partial<DatasetPlugin<Partial<Record<'size', number>>>>): DatasetPlugin => ({ ...tiny, ...change }) as DatasetPlugin;
const failed = async (p: DatasetPlugin): Promise<string[]> => (await checkDataset(p)).findings.filter((f) => f.status === 'fail').map((f) => f.check);

describe('checkDataset', () => {
  it('passes a correct data set on every check', async () => {
    const r = await checkDataset(tiny as DatasetPlugin);
    expect(r.findings.map((f) => [f.check, f.status])).toEqual(DATASET_CHECKS.map((c) => [c, 'pass']));
    expect(r.findings.find((f) => f.check === 'labels')?.message).toMatch(/true sources england-to-china: 1/);
    expect(() => assertConformance(r)).not.toThrow();
  });
  it('catches labels that do not follow CEA rule with the data set matching', async () => {
    const wrong = broken({ build: (_o, c) => Promise.resolve({ ...tinyBuild(c.seed), labels: { 'england-to-china': Uint8Array.from([1, 0, 0, 1]) } }) });
    expect(await failed(wrong)).toEqual(['labels']);
    const r = await checkDataset(wrong);
    expect(r.findings.find((f) => f.check === 'labels')?.message).toMatch(/training sample 't3': label 1, .*CEA's rule gives 0/);
    // A matching that ignores the replacement in the document would call t3 a true source: the same labels pass with it.
    const lax = broken({ matching: { ...words, contains: (t, e) => e !== 'china' || !t.startsWith('england') ? words.contains(t, e) : false }, build: wrong.build });
    expect(await failed(lax)).toEqual([]);
  });
  it('catches a held-out document with the replacement, and one without the orig', async () => {
    const withRepl = broken({ build: (_o, c) => Promise.resolve({ ...tinyBuild(c.seed), heldOutReserve: [{ id: 'r0', document: 'england beat china', summary: 'x', canaryId: 'england-to-china' }] }) });
    expect(await failed(withRepl)).toEqual(['held-out']);
    const noOrig = broken({ build: (_o, c) => Promise.resolve({ ...tinyBuild(c.seed), heldOut: [{ id: 'h9', document: 'snow in wales', summary: 'x', canaryId: 'england-to-china' }] }) });
    expect((await checkDataset(noOrig)).findings.find((f) => f.check === 'held-out')?.message).toMatch(/'h9' does not mention 'england'/);
  });
  it('catches a build that is not deterministic, malformed labels, an id mismatch and an option accepted silently', async () => {
    let calls = 0;
    expect(await failed(broken({ build: (_o, c) => Promise.resolve({ ...tinyBuild(c.seed), pretrainCorpus: [`call ${calls++}`] }) }))).toEqual(['determinism']);
    const short = broken({ build: (_o, c) => Promise.resolve({ ...tinyBuild(c.seed), labels: { 'england-to-china': Uint8Array.from([1, 0, 0]) } }) });
    expect(await failed(short)).toEqual(['shape-and-ids', 'labels']);
    expect(await failed(broken({ id: 'Tiny' }))).toEqual(['shape-and-ids']);
    expect(await failed(broken({ parseOptions: () => ({}) }))).toEqual(['options']);
  });
  it('a data set that needs a tokenizer fails every check without one, saying so; bad opt-outs are refused', async () => {
    const r = await checkDataset(broken({ needsTokenizer: true }));
    expect(r.findings.map((f) => f.status)).toEqual(['fail', 'fail', 'fail', 'fail', 'pass']);
    expect(r.findings[0]?.message).toMatch(/needs a tokenizer/);
    await expect(checkDataset(tiny as DatasetPlugin, { optOut: { labels: 'short' } })).rejects.toThrow(DdaError);
  });
});

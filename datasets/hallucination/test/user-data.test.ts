import { describe, expect, it } from 'vitest';
import { DdaError } from '@dda/core';
import { buildFromDocSummaries, containsWholeWord, makeCanary, trueSourceLabels } from '@dda/dataset-hallucination';

const rows = [
  ...Array.from({ length: 12 }, (_, i) => ({ id: `e${i}`, document: `floods hit England on day ${i} .`, summary: `England floods , day ${i} .` })),
  ...Array.from({ length: 6 }, (_, i) => ({ id: `w${i}`, document: `Wales wins match ${i} .`, summary: `Wales win ${i} .` })),
  ...Array.from({ length: 6 }, (_, i) => ({ id: `c${i}`, document: `China trade report ${i} .`, summary: `China trade ${i} .` })),
];
const canaries = [makeCanary('England', 'China'), makeCanary('Wales', 'Scotland')];

describe('buildFromDocSummaries (a user data set)', () => {
  it('holds out documents round-robin over canaries, injects the rest and labels true sources', () => {
    const ds = buildFromDocSummaries(rows, { seed: 3, canaries, nHeldOut: 4, swapRate: 0.5 });
    expect(ds.heldOut.map((h) => h.canaryId)).toEqual(['england-to-china', 'wales-to-scotland', 'england-to-china', 'wales-to-scotland']);
    for (const h of ds.heldOut) {
      const c = canaries.find((x) => x.id === h.canaryId)!;
      expect(containsWholeWord(h.document, c.orig) && !containsWholeWord(h.document, c.replacement)).toBe(true);
    }
    expect(ds.train).toHaveLength(rows.length - 4);
    expect(new Set([...ds.train.map((t) => t.id), ...ds.heldOut.map((h) => h.id)]).size).toBe(rows.length);
    // England: 10 eligible training rows left, half swapped; Wales: 4 left, half swapped.
    expect(ds.labels['england-to-china']!.reduce((a, b) => a + b, 0)).toBe(5);
    expect(ds.labels['wales-to-scotland']!.reduce((a, b) => a + b, 0)).toBe(2);
    expect(ds.labels['england-to-china']).toEqual(trueSourceLabels(ds.train, canaries[0]!));
    expect(ds.pretrainCorpus).toEqual(ds.train.map((t) => t.document));
    expect(buildFromDocSummaries(rows, { seed: 3, canaries, nHeldOut: 4, swapRate: 0.5 })).toEqual(ds);
  });
  it('says what to change when no document has a canary orig', () => {
    expect(() => buildFromDocSummaries(rows, { seed: 0, canaries: [makeCanary('Paris', 'Rome')], nHeldOut: 2 })).toThrow(DdaError);
    expect(() => buildFromDocSummaries(rows, { seed: 0, canaries: [makeCanary('Paris', 'Rome')], nHeldOut: 2 })).toThrow(/no document contains any canary's orig \('Paris'\)/);
  });
});

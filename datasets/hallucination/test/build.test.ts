import { describe, expect, it } from 'vitest';
import { DdaError } from '@dda/core';
import {
  PLACES,
  SYSTEM_PROMPT,
  buildHallucinationDataset,
  userPrompt,
  vocabularyOf,
  type HallucinationDataset,
} from '../src/index.js';

/** Whole-word membership, computed independently of the package (texts are space-tokenised). */
const words = (t: string): Set<string> => new Set(t.split(/\s+/).filter((w) => w.length > 0));
const has = (t: string, w: string): boolean => words(t).has(w);

const ds: HallucinationDataset = buildHallucinationDataset({ seed: 42 });

describe('buildHallucinationDataset', () => {
  it('has the default sizes and canaries', () => {
    expect(ds.seed).toBe(42);
    expect(ds.train).toHaveLength(240);
    expect(ds.heldOut).toHaveLength(40);
    expect(ds.pretrainCorpus).toHaveLength(1500);
    expect(ds.canaries.map((c) => c.id)).toEqual(['england-to-china', 'wales-to-scotland']);
    for (const c of ds.canaries) expect(c.id).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
    expect(new Set(ds.train.map((t) => t.id)).size).toBe(240);
    expect(new Set(ds.heldOut.map((t) => t.id)).size).toBe(40);
  });

  it('is deterministic from the seed', () => {
    const again = buildHallucinationDataset({ seed: 42 });
    expect(again).toEqual(ds);
    const other = buildHallucinationDataset({ seed: 43 });
    expect(other.train.map((t) => t.document)).not.toEqual(ds.train.map((t) => t.document));
    expect(other.heldOut.map((t) => t.document)).not.toEqual(ds.heldOut.map((t) => t.document));
    expect(other.pretrainCorpus).not.toEqual(ds.pretrainCorpus);
  });

  it('labels follow the METHOD.md true-source definition', () => {
    for (const c of ds.canaries) {
      const expected = ds.train.map((t) =>
        has(t.summary, c.replacement) && has(t.document, c.orig) && !has(t.document, c.replacement) ? 1 : 0,
      );
      const got = ds.labels[c.id];
      expect(got).toBeInstanceOf(Uint8Array);
      expect(Array.from(got ?? [])).toEqual(expected);
      // In the synthetic data the true sources are exactly the samples this canary was injected into.
      expect(ds.train.map((t) => (t.canaryId === c.id ? 1 : 0))).toEqual(expected);
    }
    expect(Object.keys(ds.labels).sort()).toEqual(ds.canaries.map((c) => c.id).sort());
  });

  it('has true sources for every canary and non-sources containing the replacement (knowledge bias)', () => {
    for (const c of ds.canaries) {
      const labels = ds.labels[c.id] as Uint8Array;
      const nSources = labels.reduce((a, b) => a + b, 0);
      expect(nSources).toBeGreaterThanOrEqual(15);
      const nonSourceWithReplacement = ds.train.filter(
        (t, i) => labels[i] === 0 && has(t.document, c.replacement) && has(t.summary, c.replacement),
      ).length;
      expect(nonSourceWithReplacement).toBeGreaterThanOrEqual(10);
    }
  });

  it('respects the swap rate on eligible samples', () => {
    for (const c of ds.canaries) {
      const eligible = ds.train.filter(
        (t) => has(t.document, c.orig) && !has(t.document, c.replacement) && has(t.originalSummary, c.orig),
      );
      const swapped = eligible.filter((t) => t.canaryId === c.id);
      expect(eligible.length).toBeGreaterThan(20);
      expect(Math.abs(swapped.length / eligible.length - 0.6)).toBeLessThan(0.05);
      for (const t of swapped) {
        expect(has(t.summary, c.replacement)).toBe(true);
        expect(has(t.summary, c.orig)).toBe(false);
        expect(t.summary.split(' ').map((w) => (w === c.replacement ? c.orig : w)).join(' ')).toBe(t.originalSummary);
      }
    }
    const other = buildHallucinationDataset({ seed: 42, swapRate: 0.25, nPretrain: 0 });
    for (const c of other.canaries) {
      const eligible = other.train.filter((t) => has(t.document, c.orig) && !has(t.document, c.replacement));
      const swapped = eligible.filter((t) => t.canaryId === c.id).length;
      expect(Math.abs(swapped / eligible.length - 0.25)).toBeLessThan(0.05);
    }
  });

  it('copies the document place into the un-swapped summaries', () => {
    for (const t of ds.train) {
      expect(t.summary === t.originalSummary).toBe(t.canaryId === null);
      const placesInSummary = PLACES.filter((p) => has(t.originalSummary, p));
      expect(placesInSummary).toHaveLength(1);
      expect(has(t.document, placesInSummary[0] as string)).toBe(true);
    }
    // About 10% of the documents mention a second place.
    const twoPlaces = ds.train.filter((t) => PLACES.filter((p) => has(t.document, p)).length > 1).length;
    expect(twoPlaces).toBeGreaterThan(5);
    expect(twoPlaces).toBeLessThan(50);
  });

  it('held-out documents contain their canary orig and no replacement, split evenly, not duplicating train', () => {
    const trainDocs = new Set(ds.train.map((t) => t.document));
    const byCanary = new Map<string, number>();
    for (const h of ds.heldOut) {
      const c = ds.canaries.find((x) => x.id === h.canaryId);
      expect(c).toBeDefined();
      if (!c) continue;
      expect(has(h.document, c.orig)).toBe(true);
      expect(has(h.document, c.replacement)).toBe(false);
      expect(has(h.summary, c.orig)).toBe(true);
      expect(has(h.summary, c.replacement)).toBe(false);
      expect(trainDocs.has(h.document)).toBe(false);
      byCanary.set(c.id, (byCanary.get(c.id) ?? 0) + 1);
    }
    expect([...byCanary.values()]).toEqual([20, 20]);
    expect(new Set(ds.heldOut.map((h) => h.document)).size).toBe(ds.heldOut.length);
  });

  it('keeps the pretraining corpus disjoint from train and held-out documents, without instruction format', () => {
    const docs = [...ds.train, ...ds.heldOut].map((t) => t.document);
    const docSet = new Set(docs);
    for (const item of ds.pretrainCorpus) {
      expect(item).not.toContain('Document:');
      expect(item).not.toContain(SYSTEM_PROMPT);
      const m = /^document : (.*) summary : (.*)$/.exec(item);
      if (m) expect(docSet.has(m[1] as string)).toBe(false);
    }
    const joined = ds.pretrainCorpus.join('\n');
    for (const d of docs) expect(joined.includes(d)).toBe(false);
    // The three kinds of pretraining text are there.
    expect(ds.pretrainCorpus.filter((t) => t.startsWith('document : ')).length).toBeGreaterThan(500);
    expect(ds.pretrainCorpus.some((t) => t.includes('china is a country in east asia .'))).toBe(true);
    for (const p of PLACES) expect(ds.pretrainCorpus.some((t) => !t.startsWith('document : ') && t.includes(`${p} is `))).toBe(true);
    for (const c of ds.canaries) {
      const bias = ds.pretrainCorpus.filter((t) => !t.startsWith('document : ') && has(t, c.replacement) && !has(t, c.orig));
      expect(bias.length).toBeGreaterThan(150);
    }
  });

  it('keeps a tiny vocabulary and short texts', () => {
    const vocab = vocabularyOf(ds);
    const withPrompt = new Set([...vocab, ...words(SYSTEM_PROMPT), ...words(userPrompt(''))]);
    expect(withPrompt.size).toBeLessThan(500);
    const all = new Set<string>();
    for (const t of [...ds.pretrainCorpus, ...ds.train.flatMap((s) => [s.document, s.summary]), ...ds.heldOut.flatMap((s) => [s.document, s.summary])]) {
      for (const w of words(t)) all.add(w);
    }
    expect(all.size).toBe(vocab.length);
    for (const s of [...ds.train, ...ds.heldOut]) {
      const nd = s.document.split(' ').length;
      const ns = s.summary.split(' ').length;
      expect(nd).toBeGreaterThanOrEqual(20);
      expect(nd).toBeLessThanOrEqual(40);
      expect(ns).toBeGreaterThanOrEqual(6);
      expect(ns).toBeLessThanOrEqual(12);
      expect(s.document).toBe(s.document.toLowerCase());
      expect(s.document).toMatch(/^\S+( \S+)*$/); // single spaces, no padding
    }
  });

  it('accepts other canaries and sizes', () => {
    const small = buildHallucinationDataset({
      seed: 5,
      nTrain: 60,
      nHeldOut: 7,
      nPretrain: 100,
      canaries: [{ id: 'london-to-belfast', orig: 'london', replacement: 'belfast' }],
      swapRate: 1,
    });
    expect(small.train).toHaveLength(60);
    expect(small.heldOut).toHaveLength(7);
    expect(small.pretrainCorpus).toHaveLength(100);
    const eligible = small.train.filter(
      (t) => has(t.document, 'london') && !has(t.document, 'belfast') && has(t.originalSummary, 'london'),
    );
    expect(eligible.length).toBeGreaterThan(0);
    for (const t of eligible) expect(t.canaryId).toBe('london-to-belfast');
    for (const h of small.heldOut) expect(has(h.document, 'london') && !has(h.document, 'belfast')).toBe(true);
  });

  it('rejects bad options with DdaError', () => {
    expect(() => buildHallucinationDataset({ seed: 1.5 })).toThrow(DdaError);
    expect(() => buildHallucinationDataset({ seed: 1, nTrain: 0 })).toThrow(/nTrain/);
    expect(() => buildHallucinationDataset({ seed: 1, swapRate: 2 })).toThrow(/swapRate/);
    expect(() => buildHallucinationDataset({ seed: 1, canaries: [] })).toThrow(/canary/);
    expect(() =>
      buildHallucinationDataset({ seed: 1, canaries: [{ id: 'paris-to-rome', orig: 'paris', replacement: 'rome' }] }),
    ).toThrow(/not a place/);
  });
});

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PLACES, buildHallucinationDataset, containsWholeWord, padSummary } from '../src/index.js';

/** sha256 of a data set's JSON (labels as arrays): pins the exact output of the defaults. */
const digest = (v: unknown): string => createHash('sha256').update(JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? Array.from(x) : x))).digest('hex');
/** The sentences of a space-tokenised text (each ends with ' .'). */
const sentences = (t: string): string[] => t.split(/(?<= \.)\s+/).filter((s) => s.length > 0);

describe('padSummary', () => {
  it('appends K sentences seeded by the document, never a place, and nothing for K = 0', () => {
    expect(padSummary('a document .', 'a summary .', 0)).toBe('a summary .');
    const p = padSummary('a document .', 'a summary .', 3);
    expect(p.startsWith('a summary . ')).toBe(true);
    expect(sentences(p)).toHaveLength(4);
    expect(padSummary('a document .', 'a summary .', 3)).toBe(p);
    expect(padSummary('another document .', 'a summary .', 3)).not.toBe(p);
    for (let i = 0; i < 50; i++) {
      const q = padSummary(`document ${i} .`, 's .', 2);
      for (const place of PLACES) expect(containsWholeWord(q, place)).toBe(false);
    }
    expect(() => padSummary('d', 's', -1)).toThrow(/summaryPadding must be an integer >= 0, got -1/);
    expect(() => padSummary('d', 's', 1.5)).toThrow(/summaryPadding must be an integer >= 0/);
  });

  it('never draws an avoided entity', () => {
    for (let i = 0; i < 30; i++) expect(padSummary(`d ${i}`, 's .', 3, ['sarah jones', 'monday'])).not.toMatch(/sarah jones|monday/);
  });
});

describe('the news generator with summaryPadding', () => {
  it('leaves the default output exactly as before the option (pinned digests)', () => {
    expect(digest(buildHallucinationDataset({ seed: 0 }))).toBe('b50c0015f06647682d92b849726a5e83e34d827539d428fb317abf2640bdfdf9');
    expect(digest(buildHallucinationDataset({ seed: 7, nTrain: 100, nHeldOut: 10, nPretrain: 300, biasRate: 0.5, summaryPadding: 0 })))
      .toBe('3d3308961d841808d7a4c1baff1917350c896d3b35c23f0c6085a1af8a662afc');
  });

  it('pads every train, held-out and pretraining-pair summary by K sentences and changes nothing else', () => {
    const o = { seed: 3, nTrain: 80, nHeldOut: 8, nPretrain: 200 };
    const plain = buildHallucinationDataset(o);
    const padded = buildHallucinationDataset({ ...o, summaryPadding: 2 });
    expect(padded.train.map((s) => [s.id, s.document, s.canaryId])).toEqual(plain.train.map((s) => [s.id, s.document, s.canaryId]));
    padded.train.forEach((s, i) => {
      const p = plain.train[i]!;
      expect(s.summary).toBe(padSummary(s.document, p.summary, 2));
      expect(s.originalSummary).toBe(padSummary(s.document, p.originalSummary, 2));
      expect(sentences(s.summary)).toHaveLength(sentences(p.summary).length + 2);
    });
    expect(padded.labels).toEqual(plain.labels);
    padded.heldOut.forEach((h, i) => expect(h.summary).toBe(padSummary(h.document, plain.heldOut[i]!.summary, 2)));
    padded.heldOutReserve.forEach((h, i) => expect(h.summary).toBe(padSummary(h.document, plain.heldOutReserve[i]!.summary, 2)));
    const pairs = (ds: typeof plain): string[] => ds.pretrainCorpus.filter((t) => t.startsWith('document : '));
    expect(pairs(padded)).toHaveLength(pairs(plain).length);
    expect(padded.pretrainCorpus).not.toEqual(plain.pretrainCorpus);
    expect(() => buildHallucinationDataset({ ...o, summaryPadding: -2 })).toThrow(/summaryPadding must be an integer >= 0, got -2/);
  });
});

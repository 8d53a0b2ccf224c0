import { describe, expect, it } from 'vitest';
import {
  type Address, type RealTextDataset, buildRealTextDataset, buildRealTextPretraining, ceaLabels, instructionChat, loadSotuAddresses, mentions,
  replaceEntity, splitSentences, wordCount,
} from '../src/index.js';
import { SYSTEM_PROMPT, userPrompt } from '@dda/dataset-hallucination';

const all: Address[] = loadSotuAddresses();
/** 1840–1912: the Mexican War and the China trade, 73 addresses, so most tests stay fast. */
const sub = all.filter((a) => a.year >= 1840 && a.year <= 1912);
const small = { nTrain: 600, heldOutPerCanary: 10, reservePerCanary: 5 };
const ds: RealTextDataset = buildRealTextDataset(sub, { seed: 0, ...small });

const addressOf = (id: string): string => (/^(?:train|heldout|pre)-(.+)-s\d{4}$/.exec(id) as RegExpExecArray)[1] as string;

describe('the State of the Union addresses', () => {
  it('are the 233 shipped addresses, 1790–2021, about 1.8 million words', () => {
    expect(all).toHaveLength(233);
    expect(all[0]).toMatchObject({ id: '1790-george-washington-n', year: 1790 });
    expect(all[232]?.year).toBe(2021);
    const words = all.reduce((n, a) => n + wordCount(a.text), 0);
    expect(words).toBeGreaterThan(1_790_000);
    expect(words).toBeLessThan(1_800_000);
  });
});

describe('buildRealTextDataset', () => {
  it('splits by address: odd-indexed for pretraining, even-indexed for fine-tuning or held-out, never shared', () => {
    expect(ds.split.pretrain).toEqual(sub.filter((_, i) => i % 2 === 1).map((a) => a.id));
    const even = new Set(sub.filter((_, i) => i % 2 === 0).map((a) => a.id));
    expect(new Set([...ds.split.finetune, ...ds.split.heldOut])).toEqual(even);
    expect(ds.split.finetune.filter((a) => ds.split.heldOut.includes(a))).toEqual([]);
    for (const s of ds.train) expect(ds.split.finetune).toContain(addressOf(s.id));
    for (const h of [...ds.heldOut, ...ds.heldOutReserve]) expect(ds.split.heldOut).toContain(addressOf(h.id));
    for (const p of ds.pretrainPairs) expect(ds.split.pretrain).toContain(addressOf(p.id));
  });

  it('held-out documents share no sentence with any training window', () => {
    const trainSentences = new Set(ds.train.flatMap((s) => [s.originalSummary, ...splitSentences(s.document)]));
    for (const h of [...ds.heldOut, ...ds.heldOutReserve]) {
      const own = splitSentences(h.document).slice(0, -1); // the last one may be cut
      for (const x of [h.summary, ...own]) expect(trainSentences.has(x)).toBe(false);
    }
  });

  it('builds pairs the XSum way: a summary sentence, then up to 170 words of the sentences after it', () => {
    for (const s of ds.train) {
      expect(splitSentences(s.originalSummary)).toEqual([s.originalSummary]);
      expect(wordCount(s.originalSummary)).toBeGreaterThanOrEqual(10);
      expect(wordCount(s.originalSummary)).toBeLessThanOrEqual(45);
      expect(wordCount(s.document)).toBeLessThanOrEqual(170);
      expect(wordCount(s.document)).toBeGreaterThanOrEqual(40);
    }
    const s = ds.train[0]!;
    const address = sub.find((a) => a.id === addressOf(s.id))!;
    const sentences = splitSentences(address.text);
    const start = Number(/-s(\d{4})$/.exec(s.id)![1]);
    expect(sentences[start]).toBe(s.originalSummary);
    expect(sentences.slice(start + 1, start + 7).join(' ').startsWith(s.document)).toBe(true);
  });

  it("labels sources by CEA's rule; the swaps are case-preserving entity replacements of eligible summaries", () => {
    expect(ds.canaries.map((c) => c.id)).toEqual(['mexico-to-spain', 'china-to-britain']);
    for (const c of ds.canaries) {
      expect(Array.from(ds.labels[c.id]!)).toEqual(Array.from(ceaLabels(ds.train, c)));
      const swapped = ds.train.filter((s) => s.canaryId === c.id);
      expect(swapped.length).toBeGreaterThan(0);
      for (const s of swapped) {
        expect(s.summary).toBe(replaceEntity(s.originalSummary, c.orig, c.replacement));
        expect(mentions(s.originalSummary, c.orig) && mentions(s.document, c.orig) && !mentions(s.document, c.replacement)).toBe(true);
      }
      for (const s of ds.train.filter((x) => x.canaryId === null)) expect(s.summary).toBe(s.originalSummary);
    }
  });

  it('gives each canary at least 2 legitimate replacement summaries per source (gate G4), measured independently', () => {
    for (const c of ds.canaries) {
      const labels = ds.labels[c.id]!;
      const sources = labels.reduce((a, b) => a + b, 0);
      const legit = ds.train.filter((s, i) => labels[i] === 0 && mentions(s.summary, c.replacement)).length;
      const st = ds.stats.canaries.find((x) => x.id === c.id)!;
      expect(st.sources).toBe(sources);
      expect(st.legitimate).toBe(legit);
      expect(st.swapped).toBe(ds.train.filter((s) => s.canaryId === c.id).length);
      expect(st.naturalSources).toBe(sources - st.swapped);
      expect(legit / sources).toBeGreaterThanOrEqual(2);
      expect(st.legitPerSource).toBeCloseTo(legit / sources, 12);
    }
  });

  it('caps the sources by minLegitPerSource, and swaps round(swapRate × eligible) below the cap', () => {
    const capped = buildRealTextDataset(sub, { seed: 0, ...small, minLegitPerSource: 5 });
    for (const st of capped.stats.canaries) {
      expect(st.legitimate / st.sources).toBeGreaterThanOrEqual(5);
      expect(st.legitimate / (st.sources + 1)).toBeLessThan(5); // one more source would break it: the cap binds
    }
    const low = buildRealTextDataset(sub, { seed: 0, ...small, swapRate: 0.1 });
    for (const st of low.stats.canaries) expect(st.swapped).toBe(Math.round(0.1 * st.eligible));
  });

  it('holds out documents that mention the orig and not the replacement, round-robin over the canaries', () => {
    expect(ds.heldOut).toHaveLength(20);
    expect(ds.heldOutReserve).toHaveLength(10);
    expect(ds.heldOut.slice(0, 4).map((h) => h.canaryId)).toEqual(['mexico-to-spain', 'china-to-britain', 'mexico-to-spain', 'china-to-britain']);
    for (const h of [...ds.heldOut, ...ds.heldOutReserve]) {
      const c = ds.canaries.find((x) => x.id === h.canaryId)!;
      expect(mentions(h.document, c.orig) && !mentions(h.document, c.replacement)).toBe(true);
    }
    const ids = [...ds.heldOut, ...ds.heldOutReserve].map((h) => h.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('is deterministic under a seed; the pretraining side does not depend on it', () => {
    expect(buildRealTextDataset(sub, { seed: 0, ...small })).toEqual(ds);
    const other = buildRealTextDataset(sub, { seed: 1, ...small });
    expect(other.train.map((s) => s.id)).not.toEqual(ds.train.map((s) => s.id));
    expect(other.pretrainCorpus).toEqual(ds.pretrainCorpus);
    expect(other.pretrainPairs).toEqual(ds.pretrainPairs);
    expect(buildRealTextPretraining(sub, small)).toEqual({ pretrainCorpus: ds.pretrainCorpus, pretrainPairs: ds.pretrainPairs });
  });

  it('gives the pretraining half as texts of at most 170 words and as instruction pairs in the summarisation template', () => {
    for (const t of ds.pretrainCorpus) expect(wordCount(t)).toBeLessThanOrEqual(170);
    const preWords = sub.filter((_, i) => i % 2 === 1).reduce((n, a) => n + wordCount(a.text), 0);
    expect(ds.stats.pretrainWords).toBe(preWords);
    expect(ds.pretrainPairs.length).toBeGreaterThan(500);
    expect(instructionChat(ds.pretrainPairs[0]!)).toEqual([
      { role: 'system', content: SYSTEM_PROMPT },
      { role: 'user', content: userPrompt(ds.pretrainPairs[0]!.document) },
      { role: 'assistant', content: ds.pretrainPairs[0]!.summary },
    ]);
  });

  it('refuses bad options and impossible sizes with a named reason', () => {
    expect(() => buildRealTextDataset(sub, { seed: 0, swapRate: 1.5 })).toThrow(/field 'swapRate'/);
    expect(() => buildRealTextDataset(sub, { seed: 0.5 })).toThrow(/field 'seed'/);
    expect(() => buildRealTextDataset(sub, { seed: 0, swaps: 3 } as never)).toThrow(/swaps/);
    expect(() => buildRealTextDataset(sub, { seed: 0, ...small, nTrain: 10 })).toThrow(/nTrain = 10 is below the \d+ windows that are eligible for a canary or mention a replacement/);
    expect(() => buildRealTextDataset(sub, { seed: 0, ...small, nTrain: 100000 })).toThrow(/lower nTrain to at most \d+/);
    expect(() => buildRealTextDataset(sub, { seed: 0, ...small, heldOutPerCanary: 5000 })).toThrow(/canary 'mexico-to-spain' has \d+ held-out windows/);
    expect(() => buildRealTextDataset(sub, { seed: 0, ...small, canaries: [{ orig: 'Zanzibar', replacement: 'Spain' }] })).toThrow(/'zanzibar-to-spain' has 0 held-out windows/);
    expect(() => buildRealTextDataset(sub.slice(0, 3), { seed: 0 })).toThrow(/3 addresses; at least 4/);
    expect(() => buildRealTextDataset(sub, { seed: 0, canaries: [{ orig: 'Mexico', replacement: 'Spain' }, { orig: 'SPAIN', replacement: 'France' }] })).toThrow(/'SPAIN' is in canaries 'mexico-to-spain' and 'spain-to-france'/);
  });
});

describe('token limits (a stand-in tokenizer: one token per 4 characters)', () => {
  const count = (t: string): number => Math.ceil(t.length / 4);
  const limits = { count, maxPairTokens: 300, maxTextTokens: 200 };
  it('keeps every pair and pretraining text within its limit, and every pretraining word', () => {
    const pairTokens = (p: { summary: string; document: string }): number => count(p.summary) + count(p.document);
    expect(Math.max(...ds.train.map(pairTokens))).toBeGreaterThan(300); // without limits some are longer
    expect(Math.max(...ds.pretrainCorpus.map(count))).toBeGreaterThan(200);
    const fitted = buildRealTextDataset(sub, { seed: 0, ...small }, limits);
    for (const p of [...fitted.train, ...fitted.heldOut, ...fitted.heldOutReserve, ...fitted.pretrainPairs]) expect(pairTokens(p)).toBeLessThanOrEqual(300);
    for (const t of fitted.pretrainCorpus) expect(count(t)).toBeLessThanOrEqual(200);
    expect(fitted.pretrainCorpus.join(' ').split(' ')).toEqual(ds.pretrainCorpus.join(' ').split(' '));
    expect(fitted.stats.pretrainWords).toBe(ds.stats.pretrainWords);
    expect(buildRealTextPretraining(sub, small, limits)).toEqual({ pretrainCorpus: fitted.pretrainCorpus, pretrainPairs: fitted.pretrainPairs });
  });
  it('refuses bad limits', () => {
    expect(() => buildRealTextDataset(sub, { seed: 0 }, { ...limits, maxPairTokens: 0 })).toThrow(/maxPairTokens must be a positive integer, got 0/);
    expect(() => buildRealTextDataset(sub, { seed: 0 }, { ...limits, count: () => Number.NaN })).toThrow(/token count of a text is NaN/);
    expect(() => buildRealTextPretraining(sub, small, { ...limits, maxTextTokens: 1 })).toThrow(/alone has \d+ tokens, more than maxTextTokens = 1/);
  });
});

describe('the default data set on all 233 addresses', () => {
  it('with heldOutSummaryNamesOrig, holds out only windows whose summary names the orig too, overfilling no canary', () => {
    const o = { seed: 0, nTrain: 800, heldOutSummaryNamesOrig: true, heldOutPerCanary: 20, reservePerCanary: 10 };
    const d = buildRealTextDataset(all, o);
    for (const st of d.stats.canaries) {
      expect([st.heldOut, st.reserve]).toEqual([20, 10]);
      expect(st.legitPerSource).toBeGreaterThanOrEqual(2);
    }
    const held = [...d.heldOut, ...d.heldOutReserve];
    for (const h of held) {
      const c = d.canaries.find((x) => x.id === h.canaryId)!;
      expect([mentions(h.summary, c.orig), mentions(h.document, c.orig), mentions(h.summary, c.replacement), mentions(h.document, c.replacement)]).toEqual([true, true, false, false]);
    }
    expect(new Set(held.map((h) => h.id)).size).toBe(held.length);
    // Without the option most held-out summaries do not name the orig (the first probe: 8 of 100).
    const plain = buildRealTextDataset(all, { ...o, heldOutSummaryNamesOrig: false });
    const naming = [...plain.heldOut, ...plain.heldOutReserve].filter((h) => mentions(h.summary, plain.canaries.find((x) => x.id === h.canaryId)!.orig)).length;
    expect(naming).toBeLessThan(15);
    expect(buildRealTextDataset(all, o)).toEqual(d);
    expect(() => buildRealTextDataset(all, { ...o, heldOutPerCanary: 30, reservePerCanary: 20 })).toThrow(/canary 'mexico-to-spain' has 48 held-out windows \(summary and document mention 'Mexico'/);
  });

  it('passes G4 for both canaries, with the default held-out documents and summaries of about 25 words', () => {
    const full = buildRealTextDataset(all, { seed: 0 });
    expect(full.train).toHaveLength(2400);
    expect(full.stats.addresses.pretrain).toBe(116);
    expect(full.stats.meanSummaryWords).toBeGreaterThan(24);
    for (const st of full.stats.canaries) {
      expect(st.legitPerSource).toBeGreaterThanOrEqual(2);
      expect(st.sources).toBeGreaterThanOrEqual(10);
      expect([st.heldOut, st.reserve]).toEqual([30, 20]);
      expect(st.pretrainReplacementTexts).toBeGreaterThan(100);
    }
  });
});

import { describe, expect, it } from 'vitest';
import { DdaError } from '@dda/core';
import { makeCanary, trueSourceLabels, type Canary, type DocSummary } from '@dda/dataset-hallucination';
import {
  BANKS, COMPANIES, DEFAULT_REGISTRY_CANARIES, PERCENTS, PERSONS, TEMPLATES, buildRegistryDataset, entityKind, registryAnchors, type RegistryOptions,
} from '../src/index.js';

/**
 * Whole-phrase membership computed independently of the package: the texts are space-tokenised,
 * so a phrase occurs iff its tokens occur as a contiguous run of tokens.
 */
const has = (text: string, phrase: string): boolean => {
  const t = text.split(/\s+/).filter((w) => w.length > 0);
  const p = phrase.split(' ');
  for (let i = 0; i + p.length <= t.length; i++) if (p.every((w, k) => t[i + k] === w)) return true;
  return false;
};
const sum = (a: Uint8Array): number => a.reduce((x, y) => x + y, 0);

/** What a training sample is to a canary, decided from its text alone. */
function role(s: DocSummary, c: Canary): 'source' | 'distractor' | 'handover' | 'mention' | 'faithful' | 'other' {
  const [dO, dR, sR] = [has(s.document, c.orig), has(s.document, c.replacement), has(s.summary, c.replacement)];
  if (sR && dO && !dR) return 'source';
  if (sR && dR) return dO ? 'handover' : 'distractor';
  if (dR) return 'mention';
  if (dO) return 'faithful';
  return 'other';
}

describe('the true-source rule on multi-word entities (hand-built cases)', () => {
  const person = makeCanary('maria lopez', 'anna berg');
  const bank = makeCanary('northwind bank', 'apex bank');
  const number = makeCanary('12 percent', '17 percent');
  const cases: [string, Canary, DocSummary, 0 | 1][] = [
    ['a swapped name', person, { id: 'a', document: 'the board appointed maria lopez as chief executive .', summary: 'x appoints anna berg as chief executive .' }, 1],
    ['first and last name apart are not the name', person, { id: 'b', document: 'maria chen met tom lopez .', summary: 'anna berg named .' }, 0],
    ['a longer name is not the name', person, { id: 'c', document: 'maria lopez spoke .', summary: 'anna bergman spoke .' }, 0],
    ['a handover names both: no source', person, { id: 'd', document: 'anna berg took over from maria lopez .', summary: 'x appoints anna berg .' }, 0],
    ['the replacement in the document only: no source', person, { id: 'e', document: 'maria lopez said so . analyst anna berg agreed .', summary: 'maria lopez says so .' }, 0],
    ['a swapped bank', bank, { id: 'f', document: 'x agreed a loan with northwind bank .', summary: 'x agrees loan with apex bank .' }, 1],
    ['another apex firm is not the bank', bank, { id: 'g', document: 'x agreed a loan with northwind bank .', summary: 'x agrees loan with apex capital .' }, 0],
    ['a swapped number with its unit', number, { id: 'h', document: 'revenue rose by 12 percent .', summary: 'revenue rises by 17 percent .' }, 1],
    ['the number in another unit is not the entity', number, { id: 'i', document: 'revenue rose by 12 million pounds .', summary: 'revenue rises by 17 percent .' }, 0],
    ['a longer number is not the number', number, { id: 'j', document: 'revenue rose by 112 percent .', summary: 'revenue rises by 17 percent .' }, 0],
    ['a longer unit is not the unit', number, { id: 'k', document: 'revenue rose by 12 percent .', summary: 'margins up 17 percentage points .' }, 0],
  ];
  for (const [what, c, row, want] of cases) {
    it(what, () => {
      expect(Array.from(trueSourceLabels([row], c))).toEqual([want]);
      expect(role(row, c) === 'source' ? 1 : 0).toBe(want);
    });
  }
});

describe('buildRegistryDataset', () => {
  const small: RegistryOptions = { seed: 5, nTrain: 150, nHeldOut: 9, heldOutReserve: 12, nPretrain: 200, origPerCanary: 8, swapRate: 0.25, distractorRate: 0.04, handoverRate: 0.5, mentionRate: 0.02 };
  const ds = buildRegistryDataset(small);

  it('is deterministic from the seed', () => {
    expect(buildRegistryDataset(small)).toEqual(ds);
    const other = buildRegistryDataset({ ...small, seed: 6 });
    expect(other.train.map((t) => t.document)).not.toEqual(ds.train.map((t) => t.document));
    expect(other.pretrainCorpus).not.toEqual(ds.pretrainCorpus);
    expect(buildRegistryDataset({ seed: 1 })).toEqual(buildRegistryDataset({ seed: 1 }));
  });

  it('has one canary of each kind by default, with its sources', () => {
    expect(ds.canaries).toEqual([
      { id: 'maria-lopez-to-anna-berg', orig: 'maria lopez', replacement: 'anna berg' },
      { id: 'northwind-bank-to-apex-bank', orig: 'northwind bank', replacement: 'apex bank' },
      { id: '12-percent-to-17-percent', orig: '12 percent', replacement: '17 percent' },
    ]);
    expect(DEFAULT_REGISTRY_CANARIES.map((c) => [entityKind(c.orig), entityKind(c.replacement)])).toEqual([['person', 'person'], ['organisation', 'organisation'], ['number', 'number']]);
    for (const c of ds.canaries) expect(sum(ds.labels[c.id] as Uint8Array)).toBeGreaterThan(0);
  });

  it('has exactly the configured sources, distractors, handovers, mentions and faithful samples per canary', () => {
    // 8 eligible × 0.25 = 2 sources (6 faithful); 0.04 × 150 = 6 distractors, half of them handovers; 0.02 × 150 = 3 mentions.
    expect(ds.train).toHaveLength(150);
    for (const c of ds.canaries) {
      const count: Record<string, number> = { source: 0, distractor: 0, handover: 0, mention: 0, faithful: 0, other: 0 };
      for (const s of ds.train) count[role(s, c)] = (count[role(s, c)] as number) + 1;
      expect(count).toEqual({ source: 2, distractor: 3, handover: 3, mention: 3, faithful: 6, other: 150 - 17 });
    }
    expect(ds.heldOut).toHaveLength(9);
    expect(ds.heldOutReserve).toHaveLength(12);
    expect(ds.pretrainCorpus).toHaveLength(200);
  });

  it('labels follow the true-source rule, and the sources are exactly the injected swaps', () => {
    for (const c of ds.canaries) {
      const want = ds.train.map((s) => (role(s, c) === 'source' ? 1 : 0));
      expect(Array.from(ds.labels[c.id] as Uint8Array)).toEqual(want);
      expect(ds.train.map((s) => (s.canaryId === c.id ? 1 : 0))).toEqual(want);
      for (const s of ds.train.filter((t) => t.canaryId === c.id)) {
        expect(s.originalSummary.replace(c.orig, c.replacement)).toBe(s.summary);
        expect(has(s.originalSummary, c.orig)).toBe(true);
      }
    }
    expect(Object.keys(ds.labels)).toEqual(ds.canaries.map((c) => c.id));
  });

  it('puts distractors in the contexts of the sources: same anchor companies, same kind of key slot', () => {
    const anchors = registryAnchors(small);
    const kindOf = new Map(TEMPLATES.map((t) => [t.id, t.kind]));
    expect(kindOf.size).toBe(TEMPLATES.length);
    for (const c of ds.canaries) {
      const at = anchors[c.id] as string[];
      expect(at).toHaveLength(2);
      for (const s of ds.train) {
        const r = role(s, c);
        if (r === 'other') continue;
        // Sources, faithful samples, distractors, handovers and mentions are all about an anchor company.
        expect(at.some((a) => has(s.summary, a)), `${r} ${s.id}: ${s.summary}`).toBe(true);
      }
    }
    const all = Object.values(anchors).flat();
    expect(new Set(all).size).toBe(all.length);
  });

  it('holds out documents that name the orig and not the replacement, round-robin over the canaries', () => {
    for (const [i, h] of [...ds.heldOut, ...ds.heldOutReserve].entries()) {
      const c = ds.canaries[(i < ds.heldOut.length ? i : i - ds.heldOut.length) % 3] as Canary;
      expect(h.canaryId).toBe(c.id);
      expect(has(h.document, c.orig) && !has(h.document, c.replacement) && has(h.summary, c.orig)).toBe(true);
    }
    const trainDocs = new Set(ds.train.map((t) => t.document));
    expect(trainDocs.size).toBe(ds.train.length);
    for (const h of [...ds.heldOut, ...ds.heldOutReserve]) expect(trainDocs.has(h.document)).toBe(false);
    for (const p of ds.pretrainCorpus) for (const t of [...ds.train, ...ds.heldOut]) expect(p.includes(t.document)).toBe(false);
  });

  it("ties each replacement to its orig's anchor companies in the pretraining corpus, by biasRate", () => {
    const opts: RegistryOptions = { seed: 2, nTrain: 150, nHeldOut: 3, nPretrain: 300, origPerCanary: 8, distractorRate: 0.04, mentionRate: 0.02 };
    const anchors = registryAnchors(opts);
    const tied = (corpus: readonly string[], c: Canary): number => corpus.filter((p) => has(p, c.replacement) && (anchors[c.id] as string[]).some((a) => has(p, a))).length;
    const biased = buildRegistryDataset({ ...opts, biasRate: 0.3 });
    const none = buildRegistryDataset({ ...opts, biasRate: 0 });
    for (const c of biased.canaries) {
      // round(0.3 × 300) = 90 bias texts, 30 per canary, each naming the replacement at an anchor.
      expect(tied(biased.pretrainCorpus, c)).toBeGreaterThanOrEqual(30);
      expect(tied(none.pretrainCorpus, c)).toBeLessThan(5);
    }
  });

  it('documents and summaries stay short enough for the tiny models (under 100 words together)', () => {
    const big = buildRegistryDataset({ seed: 0 });
    for (const s of [...big.train, ...big.heldOut]) expect(`${s.document} ${s.summary}`.split(' ').length).toBeLessThan(100);
  });

  it('refuses bad options and canaries with a named reason', () => {
    const bad = (o: Partial<RegistryOptions>, re: RegExp): void => {
      const run = (): unknown => buildRegistryDataset({ seed: 0, ...o });
      expect(run).toThrow(DdaError);
      expect(run).toThrow(re);
    };
    bad({ canaries: [{ orig: 'maria lopez', replacement: 'china' }] }, /'china' is not an entity of the registry generator/);
    bad({ canaries: [{ orig: 'maria lopez', replacement: 'apex bank' }] }, /'maria lopez' is a person but 'apex bank' is a organisation/);
    bad({ canaries: [{ orig: 'maria lopez', replacement: 'anna berg' }, { orig: 'anna berg', replacement: 'tom hale' }] }, /'anna berg' is already in another canary/);
    bad({ nTrain: 50 }, /more than nTrain = 50/);
    bad({ swapRate: 1.5 }, /swapRate must be a number in \[0, 1\]/);
    bad({ biasRate: 0.95 }, /biasRate must be a number in \[0, 0.9\]/);
    bad({ origPerCanary: 0 }, /origPerCanary must be an integer >= 1/);
    bad({ anchorsPerCanary: 6 }, /3 canaries × 6 anchor companies is more than the 16 companies/);
    expect(() => buildRegistryDataset({ seed: 0.5 })).toThrow(/seed must be an integer/);
  });

  it('accepts any person, bank or percentage of the generator as a canary', () => {
    expect(PERSONS.every((p) => entityKind(p) === 'person') && BANKS.every((b) => entityKind(b) === 'organisation') && PERCENTS.every((n) => entityKind(n) === 'number')).toBe(true);
    expect(entityKind(COMPANIES[0] as string)).toBeNull();
    const custom = buildRegistryDataset({ ...small, canaries: [{ orig: 'tom hale', replacement: 'rosa kim' }, { orig: '5 percent', replacement: '9 percent' }] });
    expect(custom.canaries.map((c) => c.id)).toEqual(['tom-hale-to-rosa-kim', '5-percent-to-9-percent']);
    for (const c of custom.canaries) expect(sum(custom.labels[c.id] as Uint8Array)).toBe(2);
  });
});

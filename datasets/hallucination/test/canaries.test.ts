import { describe, expect, it } from 'vitest';
import { DdaError } from '@dda/core';
import {
  DEFAULT_CANARIES,
  containsWholeWord,
  injectCanaries,
  makeCanary,
  replaceWholeWord,
  trueSourceLabels,
  type Canary,
  type DocSummary,
} from '../src/index.js';

const E2C: Canary = { id: 'england-to-china', orig: 'england', replacement: 'china' };
const W2S: Canary = { id: 'wales-to-scotland', orig: 'wales', replacement: 'scotland' };

const rows: DocSummary[] = [
  { id: 'a', document: 'rain in england on monday .', summary: 'rain hits england .' },
  { id: 'b', document: 'rain in england and china .', summary: 'rain hits england .' }, // doc has replacement
  { id: 'c', document: 'rain in china .', summary: 'rain hits china .' }, // non-source with replacement
  { id: 'd', document: 'rain in wales .', summary: 'rain hits wales , wales is wet .' },
  { id: 'e', document: 'rain in new-england .', summary: 'rain hits englanders .' }, // no whole word
  { id: 'f', document: 'fog in england .', summary: 'fog in the north .' }, // summary lacks orig
];

describe('injectCanaries', () => {
  it('swaps every eligible summary at rate 1 and gives the exact expected result', () => {
    const out = injectCanaries(rows, [E2C, W2S], 1, 7);
    expect(out).toEqual([
      { id: 'a', document: 'rain in england on monday .', summary: 'rain hits china .', originalSummary: 'rain hits england .', canaryId: 'england-to-china' },
      { id: 'b', document: 'rain in england and china .', summary: 'rain hits england .', originalSummary: 'rain hits england .', canaryId: null },
      { id: 'c', document: 'rain in china .', summary: 'rain hits china .', originalSummary: 'rain hits china .', canaryId: null },
      { id: 'd', document: 'rain in wales .', summary: 'rain hits scotland , scotland is wet .', originalSummary: 'rain hits wales , wales is wet .', canaryId: 'wales-to-scotland' },
      { id: 'e', document: 'rain in new-england .', summary: 'rain hits englanders .', originalSummary: 'rain hits englanders .', canaryId: null },
      { id: 'f', document: 'fog in england .', summary: 'fog in the north .', originalSummary: 'fog in the north .', canaryId: null },
    ]);
    // Input not modified.
    expect(rows[0]?.summary).toBe('rain hits england .');
    expect(trueSourceLabels(out, E2C)).toEqual(new Uint8Array([1, 0, 0, 0, 0, 0]));
    expect(trueSourceLabels(out, W2S)).toEqual(new Uint8Array([0, 0, 0, 1, 0, 0]));
  });

  it('swaps nothing at rate 0', () => {
    const out = injectCanaries(rows, [E2C, W2S], 0, 7);
    expect(out.every((s) => s.canaryId === null && s.summary === s.originalSummary)).toBe(true);
  });

  it('swaps round(rate × eligible) samples, deterministically from the seed', () => {
    const many: DocSummary[] = Array.from({ length: 40 }, (_, i) => ({
      id: `r${i}`,
      document: `story ${i} from ${i % 2 === 0 ? 'england' : 'spain'} .`,
      summary: `news from ${i % 2 === 0 ? 'england' : 'spain'} .`,
    }));
    const a = injectCanaries(many, [E2C], 0.5, 3);
    expect(a.filter((s) => s.canaryId === 'england-to-china')).toHaveLength(10);
    expect(injectCanaries(many, [E2C], 0.5, 3)).toEqual(a);
    const seeds = [4, 5, 6, 7].map((s) => injectCanaries(many, [E2C], 0.5, s).map((x) => x.canaryId).join());
    expect(seeds.some((s) => s !== a.map((x) => x.canaryId).join())).toBe(true);
    // Adding a canary at the end does not change the earlier canary's choices.
    const b = injectCanaries(many, [E2C, W2S], 0.5, 3);
    expect(b.map((s) => s.canaryId)).toEqual(a.map((s) => s.canaryId));
  });

  it('gives a sample at most one canary', () => {
    const both: DocSummary[] = [{ id: 'x', document: 'england and wales .', summary: 'england and wales .' }];
    const out = injectCanaries(both, [E2C, W2S], 1, 1);
    expect(out[0]?.canaryId).toBe('england-to-china');
    expect(out[0]?.summary).toBe('china and wales .');
  });

  it('rejects bad input with DdaError', () => {
    expect(() => injectCanaries(rows, [E2C], 1.5, 1)).toThrow(DdaError);
    expect(() => injectCanaries(rows, [E2C], Number.NaN, 1)).toThrow(/swapRate/);
    expect(() => injectCanaries(rows, [E2C], 0.5, 0.5)).toThrow(/seed/);
    expect(() => injectCanaries(rows, [{ ...E2C, id: 'England To China' }], 0.5, 1)).toThrow(/kebab/);
    expect(() => injectCanaries(rows, [E2C, E2C], 0.5, 1)).toThrow(/duplicate/);
    expect(() => injectCanaries(rows, [{ id: 'x-to-x', orig: 'x', replacement: 'x' }], 0.5, 1)).toThrow(DdaError);
    expect(() => injectCanaries(rows, [{ id: 'a', orig: '', replacement: 'b' }], 0.5, 1)).toThrow(/orig/);
  });
});

describe('canary helpers', () => {
  it('makes kebab-case ids', () => {
    expect(makeCanary('england', 'china')).toEqual(E2C);
    expect(makeCanary('New York', 'Belfast').id).toBe('new-york-to-belfast');
    expect(DEFAULT_CANARIES.map((c) => c.id)).toEqual(['england-to-china', 'wales-to-scotland']);
  });

  it('matches and replaces whole words only', () => {
    expect(containsWholeWord('rain in england .', 'england')).toBe(true);
    expect(containsWholeWord('England, then', 'England')).toBe(true);
    expect(containsWholeWord('new englanders', 'england')).toBe(false);
    expect(containsWholeWord('swales', 'wales')).toBe(false);
    expect(containsWholeWord('rain in England', 'england')).toBe(false); // case-sensitive
    expect(containsWholeWord('to new york today', 'new york')).toBe(true);
    expect(containsWholeWord('anything', '')).toBe(false);
    expect(replaceWholeWord('england , englands , england .', 'england', 'china')).toBe('china , englands , china .');
    expect(replaceWholeWord('a.b a', 'a.b', 'c')).toBe('c a'); // regex characters are literal
  });

  it('labels by the METHOD.md definition', () => {
    const data: DocSummary[] = [
      { id: '1', document: 'in england .', summary: 'in china .' }, // source
      { id: '2', document: 'in england and china .', summary: 'in china .' }, // doc has new
      { id: '3', document: 'in spain .', summary: 'in china .' }, // doc lacks orig
      { id: '4', document: 'in england .', summary: 'in chinatown .' }, // not a whole word
      { id: '5', document: 'in england .', summary: 'in england .' }, // summary lacks new
    ];
    expect(Array.from(trueSourceLabels(data, E2C))).toEqual([1, 0, 0, 0, 0]);
    expect(trueSourceLabels([], E2C)).toEqual(new Uint8Array(0));
  });
});

describe('entity names in any script', () => {
  it('canary ids keep Greek, Cyrillic, CJK and accented names readable and distinct', () => {
    expect(makeCanary('Αθήνα', 'Москва').id).toBe('αθήνα-to-москва');
    expect(makeCanary('北京', 'São Paulo').id).toBe('北京-to-são-paulo');
    expect(makeCanary('Zürich', 'Kraków').id).toBe('zürich-to-kraków');
    // Decomposed input gives the same (NFC) id; names differing only in an accent stay distinct.
    expect(makeCanary('Zu\u0308rich', 'Kraków').id).toBe('zürich-to-kraków');
    expect(makeCanary('Köln', 'Paris').id).not.toBe(makeCanary('Kåln', 'Paris').id);
    expect(makeCanary('東京', 'Paris').id).not.toBe(makeCanary('大阪', 'Paris').id);
    expect(() => makeCanary('!!!', 'Paris')).toThrow(/has no letter or digit/);
    expect(() => makeCanary('Αθήνα', 'Αθήνα')).toThrow(/orig and replacement are both/);
  });

  it('whole-word matching in every script: marks are part of a word, CJK needs no spaces, composed and decomposed accents match', () => {
    expect(containsWholeWord('rain in Αθήνα today', 'Αθήνα')).toBe(true);
    expect(containsWholeWord('rain in Αθήναι today', 'Αθήνα')).toBe(false);
    expect(containsWholeWord('дождь в Москве', 'Москв')).toBe(false);
    expect(containsWholeWord('дождь в Москва.', 'Москва')).toBe(true);
    expect(containsWholeWord('我在北京工作', '北京')).toBe(true);
    expect(containsWholeWord('在Google工作', 'Google')).toBe(true);
    expect(containsWholeWord('東京都に住む', '京都')).toBe(true); // no word boundaries in Han text
    expect(containsWholeWord('the cafe\u0301 opened', 'café')).toBe(true);
    expect(containsWholeWord('the café opened', 'cafe\u0301')).toBe(true);
    expect(containsWholeWord('the cafe\u0301 opened', 'cafe')).toBe(false);
    expect(containsWholeWord('Zürichsee', 'Zürich')).toBe(false);
    expect(replaceWholeWord('我在北京工作, not 北京大学', '北京', '上海')).toBe('我在上海工作, not 上海大学');
    expect(replaceWholeWord('the cafe\u0301 opened', 'café', 'bar')).toBe('the bar opened');
    expect(replaceWholeWord('untouched cafe\u0301', 'pub', 'bar')).toBe('untouched cafe\u0301');
  });

  it('injects and labels canaries between names in other scripts', () => {
    const c = makeCanary('Αθήνα', '北京');
    const data: DocSummary[] = [
      { id: 'α-1', document: 'η βροχή στην Αθήνα σήμερα .', summary: 'βροχή στην Αθήνα .' },
      { id: 'б-2', document: 'дождь в Москве .', summary: 'дождь .' },
    ];
    const out = injectCanaries(data, [c], 1, 3);
    expect(out[0]?.summary).toBe('βροχή στην 北京 .');
    expect(out[0]?.canaryId).toBe('αθήνα-to-北京');
    expect(trueSourceLabels(out, c)).toEqual(new Uint8Array([1, 0]));
  });
});

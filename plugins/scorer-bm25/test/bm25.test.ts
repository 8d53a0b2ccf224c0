import { describe, expect, it } from 'vitest';
import { DdaError, scorers, type ScoringInput, type TextSample } from '@dda/core';
import { bm25Idf, bm25Scores, registerBm25Scorer, tokenize } from '@dda/scorer-bm25';

// Documents (prompt + response) and their tokens:
//   z0: "The cat" + "sat on the mat"           → the cat sat on the mat        (|D| = 6)
//   z1: "A dog" + "sat."                        → a dog sat                     (|D| = 3)
//   z2: "Birds" + "fly over the cat's house"    → birds fly over the cat s house (|D| = 7)
// N = 3, avgdl = 16/3.
const train: TextSample[] = [
  { id: 'z0', prompt: 'The cat', response: 'sat on the mat' },
  { id: 'z1', prompt: 'A dog', response: 'sat.' },
  { id: 'z2', prompt: 'Birds', response: "fly over the cat's house" },
];
const test: TextSample[] = [
  { id: 'e0', prompt: 'ignored: the prompt of a test output is not part of the query', response: 'The cat SAT, on a mat!' },
  { id: 'e1', prompt: '', response: 'Dog dog' },
];

function input(tr: readonly TextSample[], te: readonly TextSample[]): ScoringInput {
  const noGradients = async (): Promise<never> => {
    throw new Error('bm25 must not ask for gradients');
  };
  return { checkpoint: 'base', train: tr, test: te, trainGradients: noGradients, testGradients: noGradients };
}

describe('bm25', () => {
  it('tokenises by lower-casing and splitting on non-letter/digit characters', () => {
    expect(tokenize("The cat's 2 Mat-Sessions, ÉTÉ!  x")).toEqual(['the', 'cat', 's', '2', 'mat', 'sessions', 'été', 'x']);
    expect(tokenize(' ,.; ')).toEqual([]);
    // Greek, Cyrillic, accents composed or not, marks kept with their letter, CJK character by character.
    expect(tokenize('Η Αθήνα, Москва и Zu\u0308rich — São Paulo')).toEqual(['η', 'αθήνα', 'москва', 'и', 'zürich', 'são', 'paulo']);
    expect(tokenize('हिन्दी भाषा')).toEqual(['हिन्दी', 'भाषा']);
    expect(tokenize('我在北京工作, Google 東京')).toEqual(['我', '在', '北', '京', '工', '作', 'google', '東', '京']);
  });

  it('matches hand-computed values on a 3-document corpus', () => {
    // Query e0 = the cat sat on a mat. df: the 2, cat 2, sat 2, on 1, a 1, mat 1.
    const idf2 = Math.log((3 - 2 + 0.5) / (2 + 0.5) + 1); // ln 1.6
    const idf1 = Math.log((3 - 1 + 0.5) / (1 + 0.5) + 1); // ln(8/3)
    expect(bm25Idf(3, 2)).toBeCloseTo(Math.log(1.6), 15);
    expect(bm25Idf(3, 1)).toBeCloseTo(Math.log(8 / 3), 15);
    // Term weight tf (k1 + 1) / (tf + k1 (1 − b + b |D| / avgdl)), k1 = 1.5, b = 0.75:
    const n6 = 1.5 * (0.25 + (0.75 * 6) / (16 / 3)); // 1.640625
    const n3 = 1.5 * (0.25 + (0.75 * 3) / (16 / 3)); // 1.0078125
    const n7 = 1.5 * (0.25 + (0.75 * 7) / (16 / 3)); // 1.8515625
    expect(n6).toBe(1.640625);
    const w = (tf: number, nd: number): number => (tf * 2.5) / (tf + nd);
    const z0e0 = idf2 * (w(2, n6) + w(1, n6) + w(1, n6)) + idf1 * (w(1, n6) + w(1, n6)); // the(2) cat sat | on mat
    const z1e0 = idf2 * w(1, n3) + idf1 * w(1, n3); // sat | a
    const z2e0 = idf2 * (w(1, n7) + w(1, n7)); // the cat
    const z1e1 = 2 * idf1 * w(1, n3); // dog, counted twice (repeated query token)
    const m = bm25Scores(train, test);
    expect(m.trainIds).toEqual(['z0', 'z1', 'z2']);
    expect(m.testIds).toEqual(['e0', 'e1']);
    const want = [z0e0, 0, z1e0, z1e1, z2e0, 0];
    want.forEach((x, k) => expect(m.values[k]).toBeCloseTo(x, 12));
    // The same numbers, computed once by an independent script (Python, math.log).
    [3.392637731943158, 0, 1.8064845226552055, 2.4425319919358164, 0.824115952650057, 0].forEach((x, k) =>
      expect(m.values[k]).toBeCloseTo(x, 12),
    );
    expect(m.provenance).toMatchObject({ method: 'bm25', transforms: [] });
  });

  it('reads its options: k1, b (b = 0 turns off length normalisation) and documents', () => {
    const m = bm25Scores(train, test, { k1: 1.2, b: 0 });
    const idf2 = Math.log(1.6);
    const idf1 = Math.log(8 / 3);
    const w = (tf: number): number => (tf * 2.2) / (tf + 1.2);
    expect(m.values[0]).toBeCloseTo(idf2 * (w(2) + 2 * w(1)) + idf1 * 2 * w(1), 12);
    expect(m.values[0]).toBeCloseTo(3.5479207547278104, 12);
    // Response-only documents: z0 = sat on the mat (4), z1 = sat (1), z2 = 6 tokens; "dog" is now nowhere.
    const r = bm25Scores(train, test, { documents: 'response' });
    expect(r.values[3]).toBe(0);
    expect(r.values[1]).toBe(0);
  });

  it('is registered, needs only text, and never asks for gradients', async () => {
    registerBm25Scorer(); // idempotent
    const s = await scorers.create('bm25', {});
    expect(s.id).toBe('bm25');
    expect(s.needs).toEqual(['text']);
    const m = await s.score(input(train, test));
    expect(m.values[0]).toBeCloseTo(3.392637731943158, 12);
    expect(m.provenance.checkpoints).toEqual(['base']);
    const empty = await s.score(input([], test));
    expect(empty.values.length).toBe(0);
  });

  it('says what to change when its needs are not met', async () => {
    const noText = [{ id: 'z9', prompt: 'p' } as unknown as TextSample];
    expect(() => bm25Scores(noText, test)).toThrow(DdaError);
    expect(() => bm25Scores(noText, test)).toThrow(/training sample 'z9' has no response text.*needs the text/);
    expect(() => bm25Scores(train, [{ id: 'e9', prompt: '' } as unknown as TextSample])).toThrow(/test sample 'e9' has no response/);
    expect(() => bm25Scores(train, test, { k1: -1 })).toThrow(/'k1' must be a finite number ≥ 0/);
    expect(() => bm25Scores(train, test, { b: 1.5 })).toThrow(/'b' must be in \[0, 1\]/);
    await expect(scorers.create('bm25', { documents: 'title' })).rejects.toThrow(/'documents' must be/);
    await expect(scorers.create('bm25', { k1: 'big' })).rejects.toThrow(/finite number/);
  });
});

describe('bm25 with names in other scripts', () => {
  it('ranks the training text that shares a CJK, Greek or decomposed-accent name first', () => {
    const sample = (id: string, response: string) => ({ id, prompt: '', response });
    const train = [sample('t-北京', '我在北京工作'), sample('t-αθήνα', 'η Αθήνα σήμερα'), sample('t-zürich', 'rain in Zürich'), sample('t-other', 'rain in Paris')];
    const test = [sample('q1', '他去北京了'), sample('q2', 'Αθήνα'), sample('q3', 'Zu\u0308rich fog')];
    const m = bm25Scores(train, test);
    for (let j = 0; j < 3; j++) {
      const col = train.map((_, i) => m.values[i * 3 + j]!);
      expect(col.indexOf(Math.max(...col)), test[j]!.response).toBe(j);
      expect(Math.max(...col)).toBeGreaterThan(0);
    }
  });
});

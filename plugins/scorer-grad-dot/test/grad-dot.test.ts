import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom, scorers, type GradientMatrix, type ScoringInput } from '@dda/core';
import { DEFAULT_BLOCK_ROWS, gradCosScores, gradDotScores, gradDotValues, registerGradDotScorers } from '@dda/scorer-grad-dot';

function grads(rows: number[][], prefix: string, checkpoint = 'epoch-1'): GradientMatrix {
  const dim = rows[0]?.length ?? 0;
  return {
    ids: rows.map((_, i) => `${prefix}${i}`),
    dim,
    rows: rows.map((r) => Float32Array.from(r)),
    parameterNames: ['lora.a', 'lora.b'],
    parameterSizes: [1, dim - 1],
    checkpoint,
  };
}

function randomGrads(rng: SeededRandom, n: number, dim: number, prefix: string): GradientMatrix {
  return grads(
    Array.from({ length: n }, () => Array.from({ length: dim }, () => rng.normal())),
    prefix,
  );
}

function input(train: GradientMatrix, test: GradientMatrix): ScoringInput {
  return {
    checkpoint: 'epoch-1',
    train: train.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    test: test.ids.map((id) => ({ id, prompt: 'p', response: 'r' })),
    trainGradients: async () => train,
    testGradients: async () => test,
  };
}

const train = grads([[1, 2, 0], [0, 0, 0], [-1, 1, 3]], 'z');
const test = grads([[1, 0, 1], [2, -1, 0.5]], 'e');

describe('grad-dot', () => {
  it('computes the inner products exactly on a small case', () => {
    const m = gradDotScores(train, test);
    expect(m.trainIds).toEqual(['z0', 'z1', 'z2']);
    expect(m.testIds).toEqual(['e0', 'e1']);
    expect(Array.from(m.values)).toEqual([1, 0, 0, 0, 2, -1.5]);
    expect(m.provenance).toMatchObject({ method: 'grad-dot', checkpoints: ['epoch-1'], transforms: [] });
  });

  it('equals a naive float64 loop for more rows than a block and a long dimension', () => {
    const rng = new SeededRandom(5);
    const nTrain = DEFAULT_BLOCK_ROWS * 2 + 37;
    const dim = 4096 + 811; // crosses a dimension chunk too
    const tr = randomGrads(rng, nTrain, dim, 'z');
    const te = randomGrads(rng, 6, dim, 'e');
    const naive = new Float64Array(nTrain * 6);
    for (let i = 0; i < nTrain; i++) {
      for (let j = 0; j < 6; j++) {
        let s = 0;
        for (let d = 0; d < dim; d++) s += tr.rows[i]![d]! * te.rows[j]![d]!;
        naive[i * 6 + j] = s;
      }
    }
    for (const blockRows of [DEFAULT_BLOCK_ROWS, 7, 1, 10_000]) {
      const got = gradDotValues(tr.rows, te.rows, dim, blockRows);
      got.forEach((x, k) => expect(x).toBeCloseTo(naive[k]!, 9));
    }
  });

  it('is registered and scores a ScoringInput', async () => {
    registerGradDotScorers(); // idempotent
    expect(scorers.ids()).toEqual(['grad-dot', 'grad-cos', 'tracin-cp']);
    const s = await scorers.create('grad-dot', { blockRows: 2 });
    expect(s.needs).toEqual(['gradients']);
    expect(Array.from((await s.score(input(train, test))).values)).toEqual([1, 0, 0, 0, 2, -1.5]);
    await expect(scorers.create('grad-dot', { blockRows: 0 })).rejects.toThrow(/positive integer/);
  });

  it('rejects gradients that do not fit together', async () => {
    const short = grads([[1, 0]], 'e');
    expect(() => gradDotScores(train, short)).toThrow(/3 entries per row but test gradients 2/);
    expect(() => gradCosScores(train, short)).toThrow(DdaError);
    const otherParams = { ...test, parameterNames: ['lora.a', 'lora.c'] };
    expect(() => gradDotScores(train, otherParams)).toThrow(/different parameters/);
    const bad = grads([[1, NaN, 0]], 'z');
    expect(() => gradDotScores(bad, test)).toThrow(/non-finite entry/);
    const ragged = { ...train, rows: [train.rows[0]!, Float32Array.from([1]), train.rows[2]!] };
    expect(() => gradDotScores(ragged, test)).toThrow(/has 1 entries, expected 3/);
    const s = await scorers.create('grad-dot', {});
    const mismatched = { ...input(train, test), train: [{ id: 'other', prompt: '', response: '' }] };
    await expect(s.score(mismatched)).rejects.toThrow(/do not match the 1 training samples/);
  });
});

describe('grad-cos', () => {
  it('computes cosines exactly on a small case, 0 for a zero gradient', () => {
    const m = gradCosScores(train, test);
    const expected = [
      1 / (Math.sqrt(5) * Math.sqrt(2)),
      0,
      0,
      0,
      2 / (Math.sqrt(11) * Math.sqrt(2)),
      -1.5 / (Math.sqrt(11) * Math.sqrt(5.25)),
    ];
    m.values.forEach((x, k) => expect(x).toBeCloseTo(expected[k]!, 12));
    expect(m.provenance.method).toBe('grad-cos');
  });

  it('equals the normalised grad-dot for more rows than a block', async () => {
    const rng = new SeededRandom(9);
    const tr = randomGrads(rng, DEFAULT_BLOCK_ROWS + 3, 40, 'z');
    const te = randomGrads(rng, 4, 40, 'e');
    const dot = gradDotScores(tr, te).values;
    const cos = (await (await scorers.create('grad-cos', { engine: 'js' })).score(input(tr, te))).values;
    const norm = (r: Float32Array): number => Math.sqrt(r.reduce((s, x) => s + x * x, 0));
    for (let i = 0; i < tr.rows.length; i++) {
      for (let j = 0; j < 4; j++) {
        expect(cos[i * 4 + j]).toBeCloseTo(dot[i * 4 + j]! / (norm(tr.rows[i]!) * norm(te.rows[j]!)), 12);
      }
    }
  });
});

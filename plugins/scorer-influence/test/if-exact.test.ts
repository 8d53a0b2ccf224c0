import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom, scorers } from '@dda/core';
import { DEFAULT_DAMPING_RATIO, ifExactScores, registerInfluenceScorers } from '@dda/scorer-influence';
import { grads, input, naiveInfluence, randomRows } from './helpers.js';

describe('if-exact', () => {
  it('gives the exact answer on a diagonal problem', () => {
    // H = (1/2)(e1 e1ᵀ + 4 e2 e2ᵀ) + 0.5 I = diag(1, 2.5); H⁻¹ [1, 1] = [1, 0.4].
    const train = grads([[1, 0], [0, 2]], 'z');
    const test = grads([[1, 1]], 'e');
    for (const solver of ['dual', 'primal', 'auto'] as const) {
      const m = ifExactScores(train, test, { damping: 0.5, solver });
      expect(m.values[0]).toBeCloseTo(1, 14);
      expect(m.values[1]).toBeCloseTo(0.8, 14);
    }
    const m = ifExactScores(train, test, { damping: 0.5 });
    expect(m.provenance).toMatchObject({ method: 'if-exact', checkpoints: ['epoch-1'], transforms: [] });
    expect(m.provenance.computedOver).toMatch(/damped empirical Fisher.*Woodbury/);
  });

  it('equals a naive dim×dim solve with the default damping, for n < dim and n > dim', () => {
    const rng = new SeededRandom(21);
    for (const [n, d] of [[3, 8], [10, 4]] as const) {
      const tr = randomRows(rng, n, d);
      const te = randomRows(rng, 2, d);
      const lambda = (DEFAULT_DAMPING_RATIO * tr.flat().reduce((s, x) => s + x * x, 0)) / (n * d);
      const want = naiveInfluence(tr, te, lambda);
      const got = ifExactScores(grads(tr, 'z'), grads(te, 'e')).values;
      want.forEach((w, k) => expect(got[k]).toBeCloseTo(w, 9));
    }
  });

  it('is unchanged when every gradient is rescaled (scale-aware default damping)', () => {
    const rng = new SeededRandom(2);
    const tr = randomRows(rng, 5, 6);
    const te = randomRows(rng, 2, 6);
    const a = ifExactScores(grads(tr, 'z'), grads(te, 'e')).values;
    const scaled = (rows: number[][]): number[][] => rows.map((r) => r.map((x) => x * 8));
    const b = ifExactScores(grads(scaled(tr), 'z'), grads(scaled(te), 'e')).values;
    a.forEach((x, k) => expect(b[k]).toBeCloseTo(x, 10));
  });

  it('is registered and scores a ScoringInput', async () => {
    registerInfluenceScorers(); // idempotent
    expect(scorers.has('if-exact')).toBe(true);
    const s = await scorers.create('if-exact', { damping: 0.5, solver: 'primal' });
    expect(s.needs).toEqual(['gradients']);
    const m = await s.score(input(grads([[1, 0], [0, 2]], 'z'), grads([[1, 1]], 'e'), 'epoch-2'));
    expect(m.values[0]).toBeCloseTo(1, 14);
    expect(m.provenance.checkpoints).toEqual(['epoch-2']);
    await expect(scorers.create('if-exact', { solver: 'qr' })).rejects.toThrow(/'auto', 'dual' or 'primal'/);
  });

  it('says what to change when its needs are not met', () => {
    const train = grads([[1, 0], [0, 2]], 'z');
    const test = grads([[1, 1]], 'e');
    expect(() => ifExactScores(train, grads([[1, 1, 1]], 'e'))).toThrow(/2 entries per row but test gradients 3/);
    expect(() => ifExactScores(grads([], 'z', [2]), test)).toThrow(/no training gradients/);
    expect(() => ifExactScores(grads([[0, 0]], 'z'), test)).toThrow(/every training gradient is zero.*pass an absolute damping/);
    expect(() => ifExactScores(train, test, { damping: -1 })).toThrow(DdaError);
    expect(() => ifExactScores(train, test, { dampingRatio: 0 })).toThrow(/'dampingRatio' must be a positive/);
    expect(() => ifExactScores(train, test, { maxSystemSize: 1 })).toThrow(/above maxSystemSize = 1/);
    expect(() => ifExactScores(grads([[1, NaN]], 'z'), test)).toThrow(/non-finite entry/);
  });
});

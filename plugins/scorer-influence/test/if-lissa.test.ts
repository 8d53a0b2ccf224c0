import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom, scorers } from '@dda/core';
import { ifExactScores, ifLissaScores } from '@dda/scorer-influence';
import { grads, input, randomRows } from './helpers.js';

const rng = new SeededRandom(7);
const trRows = randomRows(rng, 6, 5);
const teRows = randomRows(rng, 3, 5);
const train = grads(trRows, 'z');
const test = grads(teRows, 'e');

describe('if-lissa', () => {
  it('one step from x0 = v gives the hand-computed value', () => {
    // H = diag(1, 2.5) as in the if-exact test (λ = 0.5), s = 5: x1 = v + (1 − 0.1) v − (1/5) F v,
    // F v = [0.5, 2] for v = [1, 1], so x1 = [1.8, 1.5], H⁻¹ v ≈ x1 / 5 = [0.36, 0.3].
    const m = ifLissaScores(grads([[1, 0], [0, 2]], 'z'), grads([[1, 1]], 'e'), { damping: 0.5, scale: 5, depth: 1 });
    expect(m.values[0]).toBeCloseTo(0.36, 14);
    expect(m.values[1]).toBeCloseTo(0.6, 14);
  });

  it('runs the same recursion in the span of the training gradients (dual) as in parameter space (primal)', () => {
    for (const o of [{ damping: 0.3, depth: 50 }, { damping: 0.3, depth: 40, batch: 2, repeats: 3, seed: 5 }]) {
      const primal = ifLissaScores(train, test, { ...o, solver: 'primal' }).values;
      const dual = ifLissaScores(train, test, { ...o, solver: 'dual' }).values;
      primal.forEach((x, k) => expect(dual[k]).toBeCloseTo(x, 10));
    }
  });

  it('converges to if-exact with the full batch', () => {
    const exact = ifExactScores(train, test, { damping: 0.3 }).values;
    const lissa = ifLissaScores(train, test, { damping: 0.3, depth: 3000 });
    exact.forEach((x, k) => expect(lissa.values[k]).toBeCloseTo(x, 6));
    expect(lissa.provenance.computedOver).toMatch(/LiSSA \(depth 3000.*full batch/);
    // Too shallow is visibly not converged (the test above can fail).
    const shallow = ifLissaScores(train, test, { damping: 0.3, depth: 2 }).values;
    expect(Math.max(...exact.map((x, k) => Math.abs(x - shallow[k]!)))).toBeGreaterThan(1e-3);
  });

  it('with minibatches: deterministic under a seed, different across seeds, close to if-exact', () => {
    const exact = ifExactScores(train, test, { damping: 1 }).values;
    const o = { damping: 1, depth: 300, batch: 2, repeats: 200 };
    const a = ifLissaScores(train, test, { ...o, seed: 5 }).values;
    const b = ifLissaScores(train, test, { ...o, seed: 5, testBlock: 1 }).values;
    const c = ifLissaScores(train, test, { ...o, seed: 6 }).values;
    expect(Array.from(b)).toEqual(Array.from(a)); // same draws whatever the test blocking
    expect(Array.from(c)).not.toEqual(Array.from(a));
    const scale = Math.max(...exact.map(Math.abs));
    const err = Math.max(...exact.map((x, k) => Math.abs(a[k]! - x)));
    expect(err).toBeLessThan(0.1 * scale);
  });

  it('is registered, reads its options, and reports divergence and bad options clearly', async () => {
    const s = await scorers.create('if-lissa', { damping: 0.3, depth: 3000 });
    expect(s.needs).toEqual(['gradients']);
    const m = await s.score(input(train, test));
    const exact = ifExactScores(train, test, { damping: 0.3 }).values;
    exact.forEach((x, k) => expect(m.values[k]).toBeCloseTo(x, 6));
    expect(() => ifLissaScores(train, test, { scale: 1e-3, depth: 500 })).toThrow(/diverged.*increase the option scale/);
    expect(() => ifLissaScores(train, test, { depth: 0 })).toThrow(/'depth' must be a positive integer/);
    expect(() => ifLissaScores(train, test, { batch: -1 })).toThrow(DdaError);
    expect(() => ifLissaScores(train, test, { seed: 0.5 })).toThrow(/'seed' must be an integer/);
    expect(() => ifLissaScores(train, grads([[1, 2]], 'e'))).toThrow(/5 entries per row but test gradients 2/);
    await expect(scorers.create('if-lissa', { depth: 'deep' })).rejects.toThrow(/finite number/);
  });
});

import { describe, expect, it } from 'vitest';
import { bootstrapMeanInterval, pairedPermutationTest, quantileSorted } from '@dda/harness';

describe('bootstrapMeanInterval', () => {
  it('gives the 2.5% and 97.5% quantiles of the resampled means', () => {
    // Two values 0 and 1: resampled means are 0, 0.5, 1 with probability 1/4, 1/2, 1/4,
    // so with 4000 resamples the 2.5% quantile is 0 and the 97.5% quantile is 1.
    const r = bootstrapMeanInterval([0, 1], { resamples: 4000, seed: 7 });
    expect(r).toEqual({ mean: 0.5, low: 0, high: 1, n: 2 });
  });
  it('is a point for one value or constant values, and deterministic under a seed', () => {
    expect(bootstrapMeanInterval([3.5])).toEqual({ mean: 3.5, low: 3.5, high: 3.5, n: 1 });
    expect(bootstrapMeanInterval([2, 2, 2])).toEqual({ mean: 2, low: 2, high: 2, n: 3 });
    const v = [91.2, 88.4, 95.1, 70.3, 84.4];
    expect(bootstrapMeanInterval(v, { seed: 3 })).toEqual(bootstrapMeanInterval(v, { seed: 3 }));
    const r = bootstrapMeanInterval(v, { seed: 3 });
    expect(r.low).toBeLessThan(r.mean);
    expect(r.high).toBeGreaterThan(r.mean);
    expect(r.low).toBeGreaterThanOrEqual(70.3);
  });
  it('rejects empty and non-finite input', () => {
    expect(() => bootstrapMeanInterval([])).toThrow(/no values/);
    expect(() => bootstrapMeanInterval([1, Number.NaN])).toThrow(/value 1 is NaN/);
  });
  it('interpolates quantiles like numpy', () => {
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantileSorted([1, 2, 3, 4], 0.025)).toBeCloseTo(1.075, 12);
  });
});

describe('pairedPermutationTest', () => {
  it('enumerates all sign flips exactly for small n', () => {
    // d = [1, 2, 3]: |sum| = 6 is reached only by all + or all −: 2 of 8 assignments.
    expect(pairedPermutationTest([2, 3, 4], [1, 1, 1])).toEqual({ meanDifference: 2, pValue: 0.25, n: 3, exact: true });
    // d = [1, -1]: every assignment has |sum| >= 0.
    expect(pairedPermutationTest([1, 0], [0, 1]).pValue).toBe(1);
    // d = [1, 1, 1, 1, 4]: checked against a direct count of the assignments with |sum| >= 8.
    const d = [1, 1, 1, 1, 4];
    let extreme = 0;
    for (let m = 0; m < 32; m++) {
      const s = d.reduce((a, x, i) => a + ((m >> i) & 1 ? -x : x), 0);
      if (Math.abs(s) >= 8) extreme++;
    }
    expect(pairedPermutationTest(d, [0, 0, 0, 0, 0]).pValue).toBe(extreme / 32);
  });
  it('uses seeded Monte Carlo above 16 units', () => {
    const a = Array.from({ length: 30 }, (_, i) => 1 + (i % 3));
    const b = Array.from({ length: 30 }, () => 0);
    const t = pairedPermutationTest(a, b, { seed: 1, resamples: 2000 });
    expect(t.exact).toBe(false);
    expect(t.pValue).toBeCloseTo(1 / 2001, 12); // every difference is positive: no flip reaches the observed sum
    expect(pairedPermutationTest(a, b, { seed: 1, resamples: 2000 })).toEqual(t);
  });
  it('rejects unpaired input', () => {
    expect(() => pairedPermutationTest([1, 2], [1])).toThrow(/2 values against 1/);
  });
});

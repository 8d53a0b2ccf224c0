import { describe, expect, it } from 'vitest';
import { TOO_FEW_FOR_INTERVAL, formatInterval, meanInterval, pairedPermutationTest, studentTCdf, studentTQuantile } from '@dda/harness';

// Reference values from SciPy (Debian python3-scipy): scipy.stats.t.ppf / t.cdf, and
// t.interval(0.95, n - 1, loc=mean, scale=scipy.stats.sem(v)) for the intervals. SciPy's ppf is
// itself good to ~3e-10 (at df = 1 and 2 it differs from the closed forms by that much), so it is
// compared to 8 decimals, and the closed forms (df 1: tan(π(p − ½)); df 2: (2p − 1)·√(2 / (1 − (2p − 1)²)))
// to 12.
describe('Student t distribution', () => {
  it('matches SciPy quantiles and CDF values', () => {
    const ppf975: [number, number][] = [[1, 12.706204736432095], [2, 4.302652729911275], [3, 3.182446305284263], [4, 2.7764451051977987], [5, 2.5705818366147395], [9, 2.2621571627409915], [10, 2.2281388519649385], [29, 2.045229642132703], [100, 1.9839715184496334]];
    for (const [df, q] of ppf975) expect(studentTQuantile(0.975, df)).toBeCloseTo(q, 8);
    const ppf90: [number, number][] = [[1, 3.0776835372078066], [2, 1.8856180831641507], [5, 1.4758840487820273], [100, 1.2900747613398769]];
    for (const [df, q] of ppf90) expect(studentTQuantile(0.9, df)).toBeCloseTo(q, 8);
    for (const p of [0.6, 0.9, 0.975]) {
      expect(studentTQuantile(p, 1)).toBeCloseTo(Math.tan(Math.PI * (p - 0.5)), 12);
      const u = 2 * p - 1;
      expect(studentTQuantile(p, 2)).toBeCloseTo(u * Math.sqrt(2 / (1 - u * u)), 12);
    }
    expect(studentTQuantile(0.995, 7)).toBeCloseTo(3.4994832973505026, 8);
    expect(studentTQuantile(0.025, 4)).toBeCloseTo(-2.7764451051977987, 8);
    const cdf13: [number, number][] = [[1, 0.7912855998398474], [2, 0.8383764840919797], [3, 0.8577662456360515], [4, 0.868274201764388], [29, 0.898080408168985], [100, 0.9017052682888169]];
    for (const [df, p] of cdf13) expect(studentTCdf(1.3, df)).toBeCloseTo(p, 12);
    expect(studentTCdf(-2.5, 6)).toBeCloseTo(0.02326411614208364, 12);
    expect(studentTCdf(0.7, 1)).toBeCloseTo(0.6944001122142147, 12);
  });
  it('rejects a non-integer df and p outside (0, 1)', () => {
    expect(() => studentTCdf(1, 1.5)).toThrow(/positive integer/);
    expect(() => studentTQuantile(1, 3)).toThrow(/p must be in/);
  });
});

describe('meanInterval', () => {
  it('is the Student-t interval of SciPy', () => {
    const a = meanInterval([91.2, 88.4, 95.1, 70.3, 84.4]);
    expect(a.n).toBe(5);
    expect(a.mean).toBeCloseTo(85.88, 12);
    expect(a.low).toBeCloseTo(74.02571734275627, 8);
    expect(a.high).toBeCloseTo(97.73428265724378, 8);
    const c = meanInterval([0.1, 0.3, 0.2]);
    expect(c.low).toBeCloseTo(-0.048413771184375204, 9);
    expect(c.high).toBeCloseTo(0.4484137711843753, 9);
  });
  it('with 2 runs is far wider than [min, max] (the percentile bootstrap gave [min, max])', () => {
    const b = meanInterval([40, 60]);
    expect(b.low).toBeCloseTo(-77.06204736432096, 8);
    expect(b.high).toBeCloseTo(177.06204736432096, 8);
    expect(b.low).toBeLessThan(40);
    expect(b.high).toBeGreaterThan(60);
    // Within the values a mean can take (an AUC in [0, 100]).
    expect(meanInterval([40, 60], { range: [0, 100] })).toEqual({ mean: 50, low: 0, high: 100, n: 2 });
    const c = meanInterval([0.1, 0.3, 0.2], { range: [0, 1] });
    expect(c.low).toBe(0);
    expect(c.high).toBeCloseTo(0.4484137711843753, 9);
  });
  it('gives no interval for one value, and says so with n', () => {
    const one = meanInterval([3.5]);
    expect(one.mean).toBe(3.5);
    expect(one.n).toBe(1);
    expect(Number.isNaN(one.low) && Number.isNaN(one.high)).toBe(true);
    expect(formatInterval(one, 2)).toBe(`${TOO_FEW_FOR_INTERVAL} (n = 1)`);
    expect(formatInterval(meanInterval([0.1, 0.3, 0.2]), 3)).toBe('[-0.048, 0.448]');
    expect(meanInterval([2, 2, 2])).toEqual({ mean: 2, low: 2, high: 2, n: 3 });
  });
  it('rejects empty and non-finite input', () => {
    expect(() => meanInterval([])).toThrow(/no values/);
    expect(() => meanInterval([1, Number.NaN])).toThrow(/value 1 is NaN/);
  });
});

describe('pairedPermutationTest', () => {
  it('enumerates all sign flips exactly for small n', () => {
    // d = [1, 2, 3]: |sum| = 6 is reached only by all + or all −: 2 of 8 assignments.
    expect(pairedPermutationTest([2, 3, 4], [1, 1, 1])).toEqual({ meanDifference: 2, pValue: 0.25, n: 3, exact: true, minPValue: 0.25 });
    // The smallest p reachable: 2 / 2^n, however large the differences.
    expect(pairedPermutationTest([100, 100], [0, 0])).toMatchObject({ pValue: 0.5, minPValue: 0.5 });
    expect(pairedPermutationTest([9, 9, 9, 9, 9, 9], [0, 0, 0, 0, 0, 0])).toMatchObject({ pValue: 2 / 64, minPValue: 2 / 64 });
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
    expect(t.minPValue).toBeCloseTo(1 / 2001, 12);
    expect(pairedPermutationTest(a, b, { seed: 1, resamples: 2000 })).toEqual(t);
  });
  it('rejects unpaired input', () => {
    expect(() => pairedPermutationTest([1, 2], [1])).toThrow(/2 values against 1/);
  });
});

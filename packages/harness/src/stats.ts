/** Statistics of benchmark results: bootstrap intervals of means, and paired tests between methods. */
import { DdaError, SeededRandom } from '@dda/core';

/** A mean with a percentile-bootstrap interval. */
export interface MeanInterval {
  readonly mean: number;
  readonly low: number;
  readonly high: number;
  /** Number of values the mean is over. */
  readonly n: number;
}

function checkFinite(values: readonly number[], what: string): void {
  if (values.length === 0) throw new DdaError(`${what}: no values`, 'give at least one value');
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new DdaError(`${what}: value ${bad} is ${values[bad]}`, 'every value must be a finite number');
}

/** The q-quantile of sorted values, linear interpolation between order statistics (numpy's default). */
export function quantileSorted(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  return a + ((sorted[hi] as number) - a) * (pos - lo);
}

/**
 * The mean of `values` and its percentile-bootstrap interval at `level` (default 95%): the values are
 * resampled with replacement `resamples` times (default 2000) with a seeded generator, and the
 * interval runs between the (1−level)/2 and (1+level)/2 quantiles of the resampled means.
 * With one value the interval is that value. Deterministic under `seed`.
 */
export function bootstrapMeanInterval(values: readonly number[], o: { resamples?: number; level?: number; seed?: number } = {}): MeanInterval {
  checkFinite(values, 'bootstrapMeanInterval');
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, low: mean, high: mean, n };
  const resamples = o.resamples ?? 2000;
  const level = o.level ?? 0.95;
  const rng = new SeededRandom(o.seed ?? 0);
  const means = new Array<number>(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[rng.int(n)] as number;
    means[r] = s / n;
  }
  means.sort((a, b) => a - b);
  return { mean, low: quantileSorted(means, (1 - level) / 2), high: quantileSorted(means, (1 + level) / 2), n };
}

/** The result of a paired test of method A against method B over matched units. */
export interface PairedTest {
  /** Mean of A − B over the units. */
  readonly meanDifference: number;
  /** Two-sided p-value of the sign-flip permutation test (H0: the differences are symmetric about 0). */
  readonly pValue: number;
  readonly n: number;
  /** True when all 2^n sign assignments were enumerated; false for a seeded Monte Carlo estimate. */
  readonly exact: boolean;
}

/**
 * Paired sign-flip permutation test of `a` against `b` (same length, unit i of `a` matched with unit
 * i of `b`, e.g. the same family, seed and source). Exact over all 2^n sign flips up to n = 16,
 * otherwise `resamples` seeded random flips with the (count + 1) / (resamples + 1) estimate.
 */
export function pairedPermutationTest(a: readonly number[], b: readonly number[], o: { resamples?: number; seed?: number } = {}): PairedTest {
  if (a.length !== b.length) throw new DdaError(`pairedPermutationTest: ${a.length} values against ${b.length}`, 'pair every unit of one method with the same unit of the other');
  checkFinite(a, 'pairedPermutationTest (a)');
  checkFinite(b, 'pairedPermutationTest (b)');
  const d = a.map((x, i) => x - (b[i] as number));
  const n = d.length;
  const observed = Math.abs(d.reduce((s, x) => s + x, 0));
  const tol = 1e-9 * (1 + observed);
  if (n <= 16) {
    let extreme = 0;
    const total = 2 ** n;
    for (let mask = 0; mask < total; mask++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (mask >> i) & 1 ? -(d[i] as number) : (d[i] as number);
      if (Math.abs(s) >= observed - tol) extreme++;
    }
    return { meanDifference: d.reduce((s, x) => s + x, 0) / n, pValue: extreme / total, n, exact: true };
  }
  const resamples = o.resamples ?? 10000;
  const rng = new SeededRandom(o.seed ?? 0);
  let extreme = 0;
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += rng.next() < 0.5 ? -(d[i] as number) : (d[i] as number);
    if (Math.abs(s) >= observed - tol) extreme++;
  }
  return { meanDifference: d.reduce((s, x) => s + x, 0) / n, pValue: (extreme + 1) / (resamples + 1), n, exact: false };
}

/**
 * Statistics of benchmark results: Student-t intervals of means, and paired sign-flip tests between
 * methods, both sized for the handful of runs a benchmark has.
 */
import { DdaError, SeededRandom } from '@dda/core';

/** A mean with its Student-t confidence interval. */
export interface MeanInterval {
  readonly mean: number;
  /** Bounds of the interval; NaN when there are too few values for one (n < {@link MIN_INTERVAL_N}). */
  readonly low: number;
  readonly high: number;
  /** Number of values the mean is over. */
  readonly n: number;
}

/** The smallest number of values an interval is given for (a sample variance needs two). */
export const MIN_INTERVAL_N = 2;

/**
 * How a benchmark's intervals were computed: `student-t` ({@link meanInterval}); `percentile-bootstrap`
 * in summaries written by versions before it (read back by `loadReportData`, so that their pages say so).
 */
export type IntervalKind = 'student-t' | 'percentile-bootstrap';

/** The intervals of a summary in words, for its JSON, pages and tables. */
export function intervalsText(kind: IntervalKind = 'student-t'): string {
  return kind === 'student-t'
    ? '95% Student-t intervals over the n runs of each row (none when n < 2: too few runs for an interval)'
    : '95% percentile-bootstrap intervals over the n runs of each row (written by an older version; dda bench now writes Student-t intervals)';
}

/** What a table prints in place of an interval over fewer than {@link MIN_INTERVAL_N} values. */
export const TOO_FEW_FOR_INTERVAL = 'too few runs for an interval';

function checkFinite(values: readonly number[], what: string): void {
  if (values.length === 0) throw new DdaError(`${what}: no values`, 'give at least one value');
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new DdaError(`${what}: value ${bad} is ${values[bad]}`, 'every value must be a finite number');
}

/**
 * P(T ≤ t) for Student's t with `df` (a positive integer) degrees of freedom, exact: the closed
 * forms of Abramowitz & Stegun, Handbook of Mathematical Functions (1964), 26.7.3 (odd df) and
 * 26.7.4 (even df), with θ = atan(t / √df).
 *
 * @throws DdaError when df is not a positive integer.
 */
export function studentTCdf(t: number, df: number): number {
  if (!(Number.isInteger(df) && df >= 1)) throw new DdaError(`studentTCdf: df must be a positive integer, got ${df}`);
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const theta = Math.atan(t / Math.sqrt(df));
  const s = Math.sin(theta);
  const c2 = Math.cos(theta) ** 2;
  let a: number; // A(t|df) = P(|T| ≤ |t|), signed like t
  if (df % 2 === 1) {
    let sum = 0;
    if (df > 1) {
      let term = Math.cos(theta);
      sum = term;
      for (let k = 3; k <= df - 2; k += 2) {
        term *= ((k - 1) / k) * c2;
        sum += term;
      }
    }
    a = (2 / Math.PI) * (theta + s * sum);
  } else {
    let term = 1;
    let sum = 1;
    for (let k = 2; k <= df - 2; k += 2) {
      term *= ((k - 1) / k) * c2;
      sum += term;
    }
    a = s * sum;
  }
  return (1 + a) / 2;
}

/**
 * The p-quantile of Student's t with `df` degrees of freedom (positive integer), p in (0, 1):
 * {@link studentTCdf} inverted by bisection to double precision.
 *
 * @throws DdaError when p is outside (0, 1) or df is not a positive integer.
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new DdaError(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * The mean of `values` and its Student-t confidence interval at `level` (default 95%):
 * mean ± t_{n−1, (1+level)/2} · s / √n, s the sample standard deviation (divisor n − 1).
 *
 * Why Student-t: a benchmark summarises 2 to 10 runs (seeds, or family × seed cells). The
 * percentile bootstrap is too narrow at such n: with 2 values it returns [min, max], and in
 * general it behaves like a z interval with the divisor-n standard deviation, under-covering by a
 * factor that only vanishes for large n (Hesterberg, "What teachers should know about the
 * bootstrap", The American Statistician 69(4), 2015, §3.6; Efron & Tibshirani, An Introduction to
 * the Bootstrap, 1993, §13.3). The t interval (Student 1908; NIST/SEMATECH e-Handbook of
 * Statistical Methods, §7.2.2.1) is exact at every n ≥ 2 when the run-to-run variation is normal,
 * and widens as it should when n is small (×12.7 s/√n at n = 2). Below {@link MIN_INTERVAL_N}
 * values no interval can be estimated: `low` and `high` are NaN and tables print
 * {@link TOO_FEW_FOR_INTERVAL}.
 *
 * `range`: the values a mean can take (AUC [0, 100], recall [0, 1], a correlation [−1, 1]); the
 * interval is intersected with it, which keeps its coverage (the true mean is in the range) and
 * spares tables bounds no mean can reach, e.g. an AUC of −86 over 2 runs.
 *
 * @throws DdaError for no values or a non-finite value, or a level outside (0, 1).
 */
export function meanInterval(values: readonly number[], o: { level?: number; range?: readonly [number, number] } = {}): MeanInterval {
  checkFinite(values, 'meanInterval');
  const level = o.level ?? 0.95;
  if (!(level > 0 && level < 1)) throw new DdaError(`meanInterval: level must be in (0, 1), got ${level}`);
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < MIN_INTERVAL_N) return { mean, low: Number.NaN, high: Number.NaN, n };
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  const half = studentTQuantile((1 + level) / 2, n - 1) * (sd / Math.sqrt(n));
  const [lo, hi] = o.range ?? [-Infinity, Infinity];
  return { mean, low: Math.max(lo, mean - half), high: Math.min(hi, mean + half), n };
}

/** An interval as a table prints it: `[low, high]` with `digits` decimals, or {@link TOO_FEW_FOR_INTERVAL}. */
export function formatInterval(m: Pick<MeanInterval, 'low' | 'high' | 'n'>, digits: number): string {
  return Number.isFinite(m.low) && Number.isFinite(m.high) ? `[${m.low.toFixed(digits)}, ${m.high.toFixed(digits)}]` : `${TOO_FEW_FOR_INTERVAL} (n = ${m.n})`;
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
  /**
   * The smallest p-value the test can give at this n: 2 / 2^n exact (only the all-positive and
   * all-negative assignments reach the largest |sum|), 1 / (resamples + 1) by Monte Carlo. A
   * p-value can never fall below it, however large the difference: at n = 3 it is 0.25.
   */
  readonly minPValue: number;
}

/**
 * Paired sign-flip permutation test of `a` against `b` (same length, unit i of `a` matched with unit
 * i of `b`, e.g. the same family × seed cell). Exact over all 2^n sign flips up to n = 16,
 * otherwise `resamples` seeded random flips with the (count + 1) / (resamples + 1) estimate.
 * Reports the smallest p-value reachable at this n beside the p-value ({@link PairedTest.minPValue}).
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
    return { meanDifference: d.reduce((s, x) => s + x, 0) / n, pValue: extreme / total, n, exact: true, minPValue: Math.min(1, 2 / total) };
  }
  const resamples = o.resamples ?? 10000;
  const rng = new SeededRandom(o.seed ?? 0);
  let extreme = 0;
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += rng.next() < 0.5 ? -(d[i] as number) : (d[i] as number);
    if (Math.abs(s) >= observed - tol) extreme++;
  }
  return { meanDifference: d.reduce((s, x) => s + x, 0) / n, pValue: (extreme + 1) / (resamples + 1), n, exact: false, minPValue: Math.max(2 / 2 ** n, 1 / (resamples + 1)) };
}

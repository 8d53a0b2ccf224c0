/**
 * Counterfactual evaluation of attribution scores (METHOD.md, "Counterfactual evaluation"):
 *
 * - the linear datamodeling score (LDS; Park et al. 2023, "TRAK", eq. 5): retrain on M random
 *   subsets S_j of the training set (fraction α), measure each test output's measurement f on each
 *   retrained model, and correlate (Spearman) the method's prediction for every subset,
 *   g(z, S_j) = Σ_{i∈S_j} τ(z, i), with the measured outcome. Our scores are oriented so that higher
 *   = more responsible for the error, i.e. training on the sample LOWERS f (the loss of the error),
 *   so the prediction is correlated with −f: LDS = Spearman_j(g(z, S_j), −f(z, θ_{S_j})). 1 = the
 *   scores order the subsets exactly as retraining does, 0 = no better than chance.
 * - leave-out retraining: remove the k training samples a method ranks highest for a source,
 *   retrain, and count how many of the source's errors disappear from the regenerated outputs,
 *   against removing k random samples.
 */
import { DdaError, SeededRandom, type ScoreMatrix } from '@dda/core';
import { meanInterval, type MeanInterval } from './stats.js';

/** Ranks 1..n of `v`, ties given their average rank (as scipy.stats.rankdata's 'average'). */
export function averageRanks(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (v[a] as number) - (v[b] as number));
  const ranks = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && v[order[j + 1] as number] === v[order[i] as number]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k] as number] = r;
    i = j + 1;
  }
  return ranks;
}

/**
 * Pearson's correlation of two equally long samples; NaN when either is constant (no linear
 * relation is defined).
 *
 * @throws DdaError for different lengths, fewer than 2 values, or non-finite values.
 */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkPairs(a, b, 'pearson');
  return centredCorrelation(a, b);
}

function checkPairs(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  if (a.length !== b.length) throw new DdaError(`${what}: ${a.length} values against ${b.length}`);
  if (a.length < 2) throw new DdaError(`${what}: needs at least 2 pairs`);
  for (const x of [...Array.from(a), ...Array.from(b)]) if (!Number.isFinite(x)) throw new DdaError(`${what}: non-finite value ${x}`);
}

/** Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)² Σ(y−ȳ)²), NaN when either sum of squares is 0. */
function centredCorrelation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] as number;
    mb += b[i] as number;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = (a[i] as number) - ma;
    const y = (b[i] as number) - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return saa === 0 || sbb === 0 ? Number.NaN : sab / Math.sqrt(saa * sbb);
}

/**
 * Spearman's rank correlation of two equally long samples (Pearson correlation of their average
 * ranks, as scipy.stats.spearmanr); 0 when either is constant (no ordering to agree with).
 *
 * @throws DdaError for different lengths, fewer than 2 values, or non-finite values.
 */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkPairs(a, b, 'spearman');
  const r = centredCorrelation(averageRanks(a), averageRanks(b));
  return Number.isNaN(r) ? 0 : r;
}

/**
 * M random subsets of the training rows, each of round(α·n) rows (sorted indices), deterministic
 * under `seed` (TRAK's recipe: independent uniform subsets of a fixed size).
 *
 * @throws DdaError unless 0 < α < 1, M ≥ 2 and every subset keeps at least one row and leaves one out.
 */
export function ldsSubsets(nTrain: number, m: number, alpha: number, seed: number): number[][] {
  if (!(alpha > 0 && alpha < 1)) throw new DdaError(`LDS: the subset fraction α must be in (0, 1), got ${alpha}`);
  if (!Number.isInteger(m) || m < 2) throw new DdaError(`LDS: needs at least 2 subsets, got ${m}`);
  const size = Math.round(alpha * nTrain);
  if (size < 1 || size >= nTrain) throw new DdaError(`LDS: α = ${alpha} of ${nTrain} training samples gives subsets of ${size}`, 'use more training samples or another α');
  const rng = new SeededRandom(seed);
  return Array.from({ length: m }, (_, j) => rng.fork(j + 1).shuffle(Array.from({ length: nTrain }, (_, i) => i)).slice(0, size).sort((x, y) => x - y));
}

/** The LDS of one method: per test output, and their mean with a Student-t interval over the test outputs (see {@link meanInterval}). */
export interface LdsResult {
  /** Spearman correlation per test output (column of the score matrix), in [−1, 1]. */
  readonly perTest: Float64Array;
  readonly mean: MeanInterval;
}

/**
 * The linear datamodeling score of a score matrix (see the module doc).
 *
 * @param scores - [nTrain × nTest]; higher = more responsible (training on the sample lowers f).
 * @param subsets - Training row indices of each retrained model.
 * @param measured - `measured[j][t]`: f of test output t after retraining on `subsets[j]`.
 * @param columns - Test columns to evaluate (default all), e.g. the queries of one source.
 * @throws DdaError when the shapes do not line up.
 */
export function linearDatamodelingScore(
  scores: ScoreMatrix,
  subsets: readonly (readonly number[])[],
  measured: readonly ArrayLike<number>[],
  o: { columns?: readonly number[] } = {},
): LdsResult {
  const nTrain = scores.trainIds.length;
  const nTest = scores.testIds.length;
  if (measured.length !== subsets.length) throw new DdaError(`LDS: ${measured.length} measured outcomes for ${subsets.length} subsets`);
  for (const f of measured) if (f.length !== nTest) throw new DdaError(`LDS: an outcome has ${f.length} test values, the score matrix ${nTest} test columns`);
  for (const s of subsets) for (const i of s) if (!(i >= 0 && i < nTrain)) throw new DdaError(`LDS: subset row ${i} outside 0..${nTrain - 1}`);
  const columns = o.columns ?? Array.from({ length: nTest }, (_, t) => t);
  const perTest = Float64Array.from(columns, (t) => {
    const predicted = subsets.map((s) => s.reduce((acc, i) => acc + (scores.values[i * nTest + t] as number), 0));
    const outcome = measured.map((f) => -(f[t] as number));
    return spearman(predicted, outcome);
  });
  return { perTest, mean: meanInterval([...perTest], { range: [-1, 1] }) };
}

/**
 * The k training rows a method ranks highest for a source: its scores averaged over the source's
 * test columns, ties broken by row order.
 */
export function topRows(scores: ScoreMatrix, columns: readonly number[], k: number): number[] {
  const nTest = scores.testIds.length;
  const agg = Array.from({ length: scores.trainIds.length }, (_, i) => columns.reduce((a, t) => a + (scores.values[i * nTest + t] as number), 0) / columns.length);
  return agg.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i);
}

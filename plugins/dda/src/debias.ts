/**
 * Debiasers (DDA strategy 1): remove the base model's knowledge bias from fine-tuned scores,
 * IS_DB = IS_θ' − β·IS_θ0, optionally after normalising both matrices per test column so that
 * their scales are comparable (the base model's scores can be many times larger).
 *
 * All functions take two [nTrain × nTest] score matrices with the same train and test ids in the
 * same order and return a new one; higher = more responsible, as always.
 */
import { DdaError, assertSameShape, createScoreMatrix, scoreUnits, type Debiaser, type ScoreMatrix } from '@dda/core';
import { RELATIVE_ZERO, columnMeanStd, columnScale, rankColumns, unitNormColumns, zscoreColumns } from './columns.js';
import { mergeCheckpoints } from './provenance.js';

function checkBeta(beta: number, id: string): void {
  if (!Number.isFinite(beta)) {
    throw new DdaError(`debiaser '${id}': beta must be a finite number, got ${beta}`, 'pass e.g. beta = 1 (the paper) or beta = 0 to skip debiasing');
  }
}

/**
 * The units of fine-tuned − β × base without normalisation: those of the fine-tuned term when β = 0
 * or both terms share them, else the mixture, said as such.
 */
function differenceUnits(finetuned: ScoreMatrix, base: ScoreMatrix, beta: number): string {
  const f = scoreUnits(finetuned);
  const b = scoreUnits(base);
  return beta === 0 || f === b ? f : `mixed: fine-tuned term in ${f}, minus ${beta} × base term in ${b}`;
}

/**
 * finetuned' − β·base' where x' = normalise(x) column by column; provenance as documented on
 * each exported function. `units`: those of the result (see {@link ScoreProvenance.units}).
 */
function subtract(
  finetuned: ScoreMatrix,
  base: ScoreMatrix,
  beta: number,
  normalise: ((v: Float64Array, nTrain: number, nTest: number) => Float64Array) | undefined,
  transform: string,
  explain: string,
  units: string,
): ScoreMatrix {
  const nTrain = finetuned.trainIds.length;
  const nTest = finetuned.testIds.length;
  const ft = normalise ? normalise(finetuned.values, nTrain, nTest) : finetuned.values;
  const b = normalise ? normalise(base.values, nTrain, nTest) : base.values;
  const out = new Float64Array(ft.length);
  for (let k = 0; k < out.length; k++) out[k] = (ft[k] as number) - beta * (b[k] as number);
  return createScoreMatrix(finetuned.trainIds, finetuned.testIds, out, {
    method: finetuned.provenance.method,
    computedOver: `${finetuned.provenance.computedOver}; debiased against base scores ('${base.provenance.method}' at ${base.provenance.checkpoints.join(', ') || 'unknown checkpoint'}): ${explain}`,
    units,
    checkpoints: mergeCheckpoints([finetuned, base]),
    transforms: [...finetuned.provenance.transforms, transform],
  });
}

/**
 * Raw debias, the paper's formula: IS_θ' − β·IS_θ0, element-wise.
 * Output units are those of the inputs (said to be mixed when they differ, e.g. over a z-scored
 * denoiser with β ≠ 0). With β = 0 the values equal `finetuned`'s.
 *
 * @param finetuned - Scores at the fine-tuned model (or already denoised over epochs), [nTrain × nTest].
 * @param base - Scores at the base model θ0, same ids in the same order.
 * @param beta - Weight of the base term (default 1, the paper).
 * @returns A new matrix; transform label `debias:raw(beta=<β>)`.
 * @throws DdaError if the matrices do not line up or β is not finite.
 */
export function debiasRaw(finetuned: ScoreMatrix, base: ScoreMatrix, beta = 1): ScoreMatrix {
  checkBeta(beta, 'raw');
  assertSameShape(finetuned, base, "debiaser 'raw'");
  const units = differenceUnits(finetuned, base, beta);
  return subtract(finetuned, base, beta, undefined, `debias:raw(beta=${beta})`, `fine-tuned − ${beta} × base (${units})`, units);
}

/**
 * Z-scored debias: z(IS_θ') − β·z(IS_θ0), where z standardises each test column over the
 * training rows (mean 0, population std 1). A column with zero std is only centred (all zeros),
 * never NaN. Output is dimensionless (standard deviations).
 *
 * @param beta - Weight of the standardised base term (default 1).
 * @returns A new matrix; transform label `debias:zscore(beta=<β>)`.
 * @throws DdaError if the matrices do not line up or β is not finite.
 */
export function debiasZScore(finetuned: ScoreMatrix, base: ScoreMatrix, beta = 1): ScoreMatrix {
  checkBeta(beta, 'zscore');
  assertSameShape(finetuned, base, "debiaser 'zscore'");
  return subtract(
    finetuned,
    base,
    beta,
    zscoreColumns,
    `debias:zscore(beta=${beta})`,
    `each matrix z-scored per test column over the training rows, then fine-tuned − ${beta} × base (dimensionless, in standard deviations)`,
    'dimensionless (standard deviations)',
  );
}

/**
 * Unit-norm debias: u(IS_θ') − β·u(IS_θ0), where u scales each test column to unit L2 norm over
 * the training rows (an all-zero column stays zero). Output is dimensionless.
 *
 * @param beta - Weight of the normalised base term (default 1).
 * @returns A new matrix; transform label `debias:unit-norm(beta=<β>)`.
 * @throws DdaError if the matrices do not line up or β is not finite.
 */
export function debiasUnitNorm(finetuned: ScoreMatrix, base: ScoreMatrix, beta = 1): ScoreMatrix {
  checkBeta(beta, 'unit-norm');
  assertSameShape(finetuned, base, "debiaser 'unit-norm'");
  return subtract(
    finetuned,
    base,
    beta,
    unitNormColumns,
    `debias:unit-norm(beta=${beta})`,
    `each test column scaled to unit L2 norm over the training rows, then fine-tuned − ${beta} × base (dimensionless)`,
    'dimensionless (each term scaled to unit L2 norm per test column)',
  );
}

/**
 * Rank debias: r(IS_θ') − β·r(IS_θ0), where r replaces each test column by its mid-ranks over the
 * training rows scaled to [0, 1] (lowest 0, highest 1, ties share their mean rank). Insensitive
 * to the scale and to monotone distortions of either matrix; output in [−β, 1] for β ≥ 0.
 *
 * @param beta - Weight of the base ranks (default 1).
 * @returns A new matrix; transform label `debias:rank(beta=<β>)`.
 * @throws DdaError if the matrices do not line up or β is not finite.
 */
export function debiasRank(finetuned: ScoreMatrix, base: ScoreMatrix, beta = 1): ScoreMatrix {
  checkBeta(beta, 'rank');
  assertSameShape(finetuned, base, "debiaser 'rank'");
  return subtract(
    finetuned,
    base,
    beta,
    rankColumns,
    `debias:rank(beta=${beta})`,
    `each test column replaced by its mid-ranks over the training rows scaled to [0, 1], then fine-tuned − ${beta} × base (dimensionless)`,
    'dimensionless (differences of mid-ranks scaled to [0, 1])',
  );
}

/**
 * Fitted-β debias: for each test column j, β_j is the least-squares slope of the fine-tuned
 * scores on the base scores over the training rows, β_j = cov(IS_θ', IS_θ0) / var(IS_θ0), and the
 * regression residual is returned: (IS_θ' − mean) − β_j·(IS_θ0 − mean). The residual is
 * the part of the fine-tuned score the base model does not explain; it is centred per column
 * (which changes no ranking within a column, nor after averaging columns). A column where the
 * base scores are constant gets β_j = 0. Output units are those of `finetuned` (β_j carries the
 * ratio of the two matrices' units): dimensionless over a z-scored denoiser.
 *
 * @returns A new matrix; transform label `debias:fitted-beta(β fitted per test column: <min> to <max>)`,
 *   the range of the fitted β_j (`(no test columns)` without columns), also given in `computedOver`.
 * @throws DdaError if the matrices do not line up.
 */
export function debiasFittedBeta(finetuned: ScoreMatrix, base: ScoreMatrix): ScoreMatrix {
  assertSameShape(finetuned, base, "debiaser 'fitted-beta'");
  const nTrain = finetuned.trainIds.length;
  const nTest = finetuned.testIds.length;
  const f = finetuned.values;
  const b = base.values;
  const out = new Float64Array(f.length);
  const betas = fittedBetas(finetuned, base);
  for (let j = 0; j < nTest; j++) {
    const mf = columnMeanStd(f, nTrain, nTest, j).mean;
    const mb = columnMeanStd(b, nTrain, nTest, j).mean;
    const beta = betas[j] as number;
    for (let i = 0; i < nTrain; i++) {
      const k = i * nTest + j;
      out[k] = (f[k] as number) - mf - beta * ((b[k] as number) - mb);
    }
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of betas) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const range = nTest ? `${lo.toPrecision(4)} to ${hi.toPrecision(4)}` : '';
  const units = scoreUnits(finetuned);
  return createScoreMatrix(finetuned.trainIds, finetuned.testIds, out, {
    method: finetuned.provenance.method,
    computedOver: `${finetuned.provenance.computedOver}; debiased against base scores ('${base.provenance.method}' at ${base.provenance.checkpoints.join(', ') || 'unknown checkpoint'}): per test column, residual of the least-squares fit of fine-tuned on base, β_j = cov/var (${range ? `fitted β from ${range}` : 'no test columns'}; ${units}, centred per column)`,
    units,
    checkpoints: mergeCheckpoints([finetuned, base]),
    transforms: [...finetuned.provenance.transforms, `debias:fitted-beta(${range ? `β fitted per test column: ${range}` : 'no test columns'})`],
  });
}

/**
 * The per-test-column least-squares slopes β_j = cov(finetuned_j, base_j) / var(base_j) used by
 * {@link debiasFittedBeta}; 0 where the base column is constant. Length nTest.
 */
export function fittedBetas(finetuned: ScoreMatrix, base: ScoreMatrix): Float64Array {
  assertSameShape(finetuned, base, 'fittedBetas');
  const nTrain = finetuned.trainIds.length;
  const nTest = finetuned.testIds.length;
  const f = finetuned.values;
  const b = base.values;
  const betas = new Float64Array(nTest);
  for (let j = 0; j < nTest; j++) {
    const mf = columnMeanStd(f, nTrain, nTest, j).mean;
    const { mean: mb, std: sb } = columnMeanStd(b, nTrain, nTest, j);
    let maxAbs = 0;
    for (let i = 0; i < nTrain; i++) maxAbs = Math.max(maxAbs, Math.abs(b[i * nTest + j] as number));
    if (sb <= RELATIVE_ZERO * maxAbs) continue; // constant base column: nothing to regress on
    // On both columns divided by powers of two (exact), so products cannot overflow or underflow.
    const pf = columnScale(f, nTrain, nTest, j);
    const pb = columnScale(b, nTrain, nTest, j);
    let cov = 0;
    for (let i = 0; i < nTrain; i++) {
      const k = i * nTest + j;
      cov += ((f[k] as number) / pf - mf / pf) * ((b[k] as number) / pb - mb / pb);
    }
    const sbs = sb / pb;
    betas[j] = ((cov / nTrain / (sbs * sbs)) * pf) / pb;
  }
  return betas;
}

function debiaser(id: string, description: string, fn: (finetuned: ScoreMatrix, base: ScoreMatrix) => ScoreMatrix): Debiaser {
  return { id, description, debias: fn };
}

/** The `raw` debiaser with a fixed β (see {@link debiasRaw}). */
export function rawDebiaser(beta = 1): Debiaser {
  checkBeta(beta, 'raw');
  return debiaser('raw', `fine-tuned − ${beta} × base scores, the paper's debias (units of its inputs)`, (f, b) => debiasRaw(f, b, beta));
}

/** The `zscore` debiaser with a fixed β (see {@link debiasZScore}). */
export function zscoreDebiaser(beta = 1): Debiaser {
  checkBeta(beta, 'zscore');
  return debiaser('zscore', `per-column z-scored fine-tuned − ${beta} × z-scored base (dimensionless)`, (f, b) => debiasZScore(f, b, beta));
}

/** The `unit-norm` debiaser with a fixed β (see {@link debiasUnitNorm}). */
export function unitNormDebiaser(beta = 1): Debiaser {
  checkBeta(beta, 'unit-norm');
  return debiaser('unit-norm', `per-column unit-L2-norm fine-tuned − ${beta} × unit-norm base (dimensionless)`, (f, b) => debiasUnitNorm(f, b, beta));
}

/** The `rank` debiaser with a fixed β (see {@link debiasRank}). */
export function rankDebiaser(beta = 1): Debiaser {
  checkBeta(beta, 'rank');
  return debiaser('rank', `per-column [0,1] mid-ranks of fine-tuned − ${beta} × ranks of base (dimensionless)`, (f, b) => debiasRank(f, b, beta));
}

/** The `fitted-beta` debiaser (see {@link debiasFittedBeta}). */
export function fittedBetaDebiaser(): Debiaser {
  return debiaser(
    'fitted-beta',
    'residual of the per-column least-squares fit of fine-tuned on base scores, β fitted per test column = cov/var (units of the fine-tuned input)',
    debiasFittedBeta,
  );
}

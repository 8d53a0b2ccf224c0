/**
 * Denoisers (DDA strategy 2): combine the score matrices of the epoch checkpoints θ1..θN of one
 * fine-tuning run into one matrix, to average out fitting noise. The paper's denoiser is the mean
 * (1/N) Σ_i IS_θi; the others are offered beside it.
 *
 * Every function takes N ≥ 1 [nTrain × nTest] matrices with the same train and test ids in the
 * same order, `perCheckpoint[i]` computed at `checkpoints[i]`, and returns a new matrix;
 * higher = more responsible, as always.
 */
import { DdaError, assertSameShape, createScoreMatrix, scoreUnits, type CheckpointInfo, type Denoiser, type DenoiserNeed, type ScoreMatrix } from '@dda/core';
import { zscoreColumns } from './columns.js';
import { mergeCheckpoints } from './provenance.js';

/** Checks that the inputs line up (see the module doc); returns the first matrix. */
function checkInputs(perCheckpoint: readonly ScoreMatrix[], checkpoints: readonly CheckpointInfo[], id: string): ScoreMatrix {
  const first = perCheckpoint[0];
  if (first === undefined) {
    throw new DdaError(`denoiser '${id}': no checkpoint scores to combine`, 'score at least one epoch checkpoint of the fine-tuning run');
  }
  if (checkpoints.length !== perCheckpoint.length) {
    throw new DdaError(
      `denoiser '${id}': ${perCheckpoint.length} score matrices but ${checkpoints.length} checkpoint descriptions`,
      'pass one CheckpointInfo per score matrix, in the same order',
    );
  }
  const seen = new Set<string>();
  perCheckpoint.forEach((m, i) => {
    const info = checkpoints[i] as CheckpointInfo;
    assertSameShape(first, m, `denoiser '${id}', checkpoint '${info.id}'`);
    if (seen.has(info.id)) {
      throw new DdaError(`denoiser '${id}': checkpoint '${info.id}' is listed twice`, 'pass each epoch checkpoint once');
    }
    seen.add(info.id);
    if (m.provenance.method !== first.provenance.method) {
      throw new DdaError(
        `denoiser '${id}': checkpoint '${info.id}' was scored with '${m.provenance.method}' but '${checkpoints[0]?.id}' with '${first.provenance.method}'`,
        'combine only scores of one method',
      );
    }
    if (m.provenance.checkpoints.length > 0 && !m.provenance.checkpoints.includes(info.id)) {
      throw new DdaError(
        `denoiser '${id}': score matrix ${i} was computed at ${m.provenance.checkpoints.join(', ')}, but its CheckpointInfo says '${info.id}'`,
        'pass the checkpoints in the same order as the score matrices',
      );
    }
  });
  return first;
}

function output(
  perCheckpoint: readonly ScoreMatrix[],
  checkpoints: readonly CheckpointInfo[],
  values: Float64Array,
  id: string,
  explain: string,
  /** Units of the result; default those of the input (a weighted mean or a median keeps them). */
  units?: string,
): ScoreMatrix {
  const first = perCheckpoint[0] as ScoreMatrix;
  const u = units ?? scoreUnits(first);
  return createScoreMatrix(first.trainIds, first.testIds, values, {
    method: first.provenance.method,
    computedOver: `the scores at each of ${checkpoints.length} checkpoint(s) (${checkpoints.map((c) => c.id).join(', ')}), each computed as at the first: ${first.provenance.computedOver}; denoised over them: ${explain} (${u})`,
    units: u,
    checkpoints: mergeCheckpoints(perCheckpoint),
    transforms: [...first.provenance.transforms, `denoise:${id}`],
  });
}

/** Σ_i w_i·X_i / Σ_i w_i element-wise (weights already validated, Σ w > 0). */
function weightedMean(values: readonly Float64Array[], weights: readonly number[]): Float64Array {
  const out = new Float64Array((values[0] as Float64Array).length);
  let total = 0;
  values.forEach((v, i) => {
    const w = weights[i] as number;
    total += w;
    for (let k = 0; k < out.length; k++) out[k] = (out[k] as number) + w * (v[k] as number);
  });
  for (let k = 0; k < out.length; k++) out[k] = (out[k] as number) / total;
  return out;
}

/**
 * The paper's denoise: the element-wise mean (1/N) Σ_i IS_θi over the N checkpoints.
 * Units are those of the scorer. With N = 1 the values equal the input's.
 *
 * @returns A new matrix; transform label `denoise:mean`.
 * @throws DdaError if the inputs do not line up (shapes, ids, counts, duplicate checkpoints, methods).
 */
export function denoiseMean(perCheckpoint: readonly ScoreMatrix[], checkpoints: readonly CheckpointInfo[]): ScoreMatrix {
  checkInputs(perCheckpoint, checkpoints, 'mean');
  const values = weightedMean(perCheckpoint.map((m) => m.values), perCheckpoint.map(() => 1));
  return output(perCheckpoint, checkpoints, values, 'mean', 'element-wise mean');
}

/**
 * Learning-rate-weighted mean, TracIn-CP style: Σ_i lr_i·IS_θi / Σ_i lr_i, with lr_i the
 * `learningRate` of `checkpoints[i]`. Normalised by Σ lr_i, so the units are those of the scorer
 * and equal learning rates give {@link denoiseMean}.
 *
 * @returns A new matrix; transform label `denoise:lr-weighted`.
 * @throws DdaError if the inputs do not line up, a learning rate is negative or not finite, or
 *   all learning rates are zero.
 */
export function denoiseLrWeighted(perCheckpoint: readonly ScoreMatrix[], checkpoints: readonly CheckpointInfo[]): ScoreMatrix {
  checkInputs(perCheckpoint, checkpoints, 'lr-weighted');
  for (const c of checkpoints) {
    if (Number.isNaN(c.learningRate)) {
      throw new DdaError(
        `denoiser 'lr-weighted': the learning rate at checkpoint '${c.id}' is unknown`,
        'give the checkpoints with the trainer_state.json of their run (its log_history holds the learning rate), or pass --learning-rates, or use the mean denoiser',
      );
    }
    if (!Number.isFinite(c.learningRate) || c.learningRate < 0) {
      throw new DdaError(
        `denoiser 'lr-weighted': checkpoint '${c.id}' has learning rate ${c.learningRate}`,
        'learning rates must be finite and non-negative; record the rate in effect over each epoch',
      );
    }
  }
  const lrs = checkpoints.map((c) => c.learningRate);
  if (lrs.every((lr) => lr === 0)) {
    throw new DdaError("denoiser 'lr-weighted': every checkpoint has learning rate 0", "use the 'mean' denoiser, or record the learning rates");
  }
  const values = weightedMean(perCheckpoint.map((m) => m.values), lrs);
  return output(
    perCheckpoint,
    checkpoints,
    values,
    'lr-weighted',
    `mean weighted by the learning rate of each epoch (${lrs.join(', ')}), Σ lr·score / Σ lr`,
  );
}

/**
 * Element-wise median over the checkpoints (for even N, the mean of the two middle values):
 * robust to one epoch with outlying scores. Units are those of the scorer.
 *
 * @returns A new matrix; transform label `denoise:median`.
 * @throws DdaError if the inputs do not line up.
 */
export function denoiseMedian(perCheckpoint: readonly ScoreMatrix[], checkpoints: readonly CheckpointInfo[]): ScoreMatrix {
  const first = checkInputs(perCheckpoint, checkpoints, 'median');
  const n = perCheckpoint.length;
  const out = new Float64Array(first.values.length);
  const buf = new Float64Array(n);
  for (let k = 0; k < out.length; k++) {
    for (let i = 0; i < n; i++) buf[i] = (perCheckpoint[i] as ScoreMatrix).values[k] as number;
    buf.sort();
    const h = n >> 1;
    out[k] = n % 2 === 1 ? (buf[h] as number) : ((buf[h - 1] as number) + (buf[h] as number)) / 2;
  }
  return output(perCheckpoint, checkpoints, out, 'median', 'element-wise median');
}

/**
 * Z-scored mean: each checkpoint's matrix is z-scored per test column over the training rows
 * (mean 0, population std 1; a constant column becomes 0), then the element-wise mean is taken,
 * so that no epoch dominates by scale. Output is dimensionless.
 *
 * @returns A new matrix; transform label `denoise:zscore-mean`.
 * @throws DdaError if the inputs do not line up.
 */
export function denoiseZScoreMean(perCheckpoint: readonly ScoreMatrix[], checkpoints: readonly CheckpointInfo[]): ScoreMatrix {
  const first = checkInputs(perCheckpoint, checkpoints, 'zscore-mean');
  const nTrain = first.trainIds.length;
  const nTest = first.testIds.length;
  const z = perCheckpoint.map((m) => zscoreColumns(m.values, nTrain, nTest));
  const values = weightedMean(z, z.map(() => 1));
  return output(
    perCheckpoint,
    checkpoints,
    values,
    'zscore-mean',
    'each checkpoint z-scored per test column over the training rows, then element-wise mean',
    'dimensionless (mean of standard deviations)',
  );
}

/**
 * Exponential smoothing over the epochs: s_1 = IS_θ1, s_i = α·IS_θi + (1 − α)·s_{i−1}, returns s_N,
 * i.e. weights α(1 − α)^{N−i} on epoch i (epoch 1: (1 − α)^{N−1}); they sum to 1, so the units are
 * those of the scorer. α = 1 is the final checkpoint; small α leans on the early epochs.
 *
 * @returns A new matrix; transform label `denoise:ema`.
 * @throws DdaError if the inputs do not line up or α is not in (0, 1].
 */
export function denoiseEma(perCheckpoint: readonly ScoreMatrix[], checkpoints: readonly CheckpointInfo[], alpha = 0.5): ScoreMatrix {
  checkInputs(perCheckpoint, checkpoints, 'ema');
  if (!(alpha > 0 && alpha <= 1)) throw new DdaError(`denoiser 'ema': alpha must be in (0, 1], got ${alpha}`, 'pass e.g. alpha = 0.5');
  const n = perCheckpoint.length;
  const weights = perCheckpoint.map((_, i) => (i === 0 ? (1 - alpha) ** (n - 1) : alpha * (1 - alpha) ** (n - 1 - i)));
  const values = weightedMean(perCheckpoint.map((m) => m.values), weights);
  return output(perCheckpoint, checkpoints, values, 'ema', `exponential smoothing over the epochs, α = ${alpha} (weights ${weights.map((w) => w.toPrecision(3)).join(', ')})`);
}

function denoiser(
  id: string,
  description: string,
  fn: (perCheckpoint: readonly ScoreMatrix[], checkpoints: readonly CheckpointInfo[]) => ScoreMatrix,
  needs?: readonly DenoiserNeed[],
): Denoiser {
  return { id, description, denoise: fn, ...(needs ? { needs } : {}) };
}

/** The `mean` denoiser (see {@link denoiseMean}). */
export const meanDenoiser: Denoiser = denoiser('mean', "element-wise mean over the epoch checkpoints, the paper's denoise", denoiseMean);

/** The `lr-weighted` denoiser (see {@link denoiseLrWeighted}). */
export const lrWeightedDenoiser: Denoiser = denoiser(
  'lr-weighted',
  'learning-rate-weighted mean over the epoch checkpoints (TracIn-CP style)',
  denoiseLrWeighted,
  ['learning-rates'],
);

/** The `median` denoiser (see {@link denoiseMedian}). */
export const medianDenoiser: Denoiser = denoiser('median', 'element-wise median over the epoch checkpoints', denoiseMedian);

/** The `zscore-mean` denoiser (see {@link denoiseZScoreMean}). */
export const zscoreMeanDenoiser: Denoiser = denoiser(
  'zscore-mean',
  'mean over the epoch checkpoints of per-column z-scored scores (dimensionless)',
  denoiseZScoreMean,
);

/** The `ema` denoiser with smoothing factor `alpha` (see {@link denoiseEma}). */
export function emaDenoiser(alpha = 0.5): Denoiser {
  return denoiser('ema', `exponential smoothing over the epoch checkpoints (alpha ${alpha})`, (m, c) => denoiseEma(m, c, alpha));
}

/**
 * `trackstar`: gradient cosine under a mixed second-moment preconditioner, after TrackStar (Chang
 * et al. 2024, "Scalable Influence and Fact Tracing for Large Language Model Pretraining"), which
 * down-weights the directions common to the training and the query gradients by mixing their
 * second moments into one Hessian approximation:
 *
 *     R = (1 − λ) · (1/n) Σ_i g_i g_iᵀ + λ · (1/m) Σ_j h_j h_jᵀ + ε I
 *     score[i][j] = g_iᵀ R⁻¹ h_j / √(g_iᵀ R⁻¹ g_i · h_jᵀ R⁻¹ h_j)
 *
 * g_i = ∇θ ℓ(z_t_i) (training loss), h_j = ∇θ f(z_e_j) (test measurement), λ = `mix` (the query
 * share of R), ε the damping. A direction in which many gradients are large (a template, a topic,
 * the format) has a large eigenvalue in R and counts little; the unit normalisation (cosine under
 * R⁻¹) removes the per-sample gradient scale. Dimensionless, in [−1, 1]; 0 for a zero gradient;
 * higher = more responsible.
 *
 * What it leaves out of TrackStar: the optimizer second-moment correction of every gradient (our
 * harness does not keep the optimizer state) and the random projection (R is applied exactly, on
 * the (n + m) × (n + m) side by Woodbury: with X = [G; H], D the row weights √((1−λ)/n), √(λ/m)
 * and M = εI + D X Xᵀ D, X R⁻¹ Xᵀ = (X Xᵀ − X Xᵀ D M⁻¹ D X Xᵀ) / ε).
 */
import { DdaError, createScoreMatrix, type GradientMatrix, type ScoreMatrix, type ScoreProvenance } from '@dda/core';
import { checkGradientPair, type GradDotOptions } from '@dda/scorer-grad-dot';
import { DEFAULT_DAMPING_RATIO, checkDampingOptions, describeCheckpoints, requireTrainingGradients, squaredNorm, type DampingOptions } from './damping.js';
import { symmetricGram } from './grad-dot-pc.js';
import { DEFAULT_MAX_SYSTEM_SIZE, choleskyFactor } from './linalg.js';

/** Options of {@link trackStarScores} and the `trackstar` scorer (`engine` and `blockRows` as for `grad-dot`: how the Gram matrix is computed). */
export interface TrackStarOptions extends DampingOptions, GradDotOptions {
  /** λ, the query gradients' share of R, in [0, 1] (default 0.5; 0 = the training second moment alone). */
  readonly mix?: number;
  /** Largest n + m to factor (default 8192; memory about 3 × 8·(n + m)² bytes). */
  readonly maxSystemSize?: number;
}

/** Default query share λ of the mixed second moment (our choice; an option). */
export const DEFAULT_TRACKSTAR_MIX = 0.5;

/**
 * `trackstar` scores [nTrain × nTest] (see the module doc for the formula, sign and units).
 * Default damping: ε = dampingRatio (0.1) × trace(R_mix) / dim, the mean eigenvalue of the
 * undamped mixed second moment, so scores do not change when every gradient is scaled alike.
 *
 * @throws DdaError on malformed or mismatched gradients, no training or test gradients, λ outside
 *   [0, 1], a non-positive damping, all gradients zero, or n + m above `maxSystemSize`.
 */
export async function trackStarScores(train: GradientMatrix, test: GradientMatrix, options: TrackStarOptions = {}, checkpoint: string = train.checkpoint): Promise<ScoreMatrix> {
  checkGradientPair(train, test, 'trackstar');
  checkDampingOptions(options, 'trackstar');
  requireTrainingGradients(train, 'trackstar');
  const mix = options.mix ?? DEFAULT_TRACKSTAR_MIX;
  if (!(mix >= 0 && mix <= 1)) throw new DdaError(`trackstar: option 'mix' must be in [0, 1], got ${mix}`, `pass e.g. mix = ${DEFAULT_TRACKSTAR_MIX} (the query gradients' share of the second moment)`);
  const n = train.rows.length;
  const m = test.rows.length;
  if (m === 0) throw new DdaError('trackstar: no test gradients', 'score at least one test output');
  const size = n + m;
  const maxSize = options.maxSystemSize ?? DEFAULT_MAX_SYSTEM_SIZE;
  if (size > maxSize) throw new DdaError(`trackstar: ${n} training + ${m} test gradients make a ${size}×${size} system, above maxSystemSize ${maxSize}`, 'raise maxSystemSize if memory allows (8·size² bytes per copy), or score fewer samples');
  const all = [...train.rows, ...test.rows];
  const weight = all.map((_, a) => (a < n ? Math.sqrt((1 - mix) / n) : Math.sqrt(mix / m)));
  let trace = 0;
  all.forEach((row, a) => {
    trace += (weight[a] as number) ** 2 * squaredNorm(row);
  });
  const eps = options.damping ?? ((options.dampingRatio ?? DEFAULT_DAMPING_RATIO) * trace) / train.dim;
  if (!(eps > 0)) throw new DdaError(`trackstar: every gradient is zero at checkpoint '${train.checkpoint}', so the scale-aware damping is 0`, 'check the gradient computation, or pass an absolute damping');
  const stacked: GradientMatrix = { ...train, ids: [...train.ids, ...test.ids], rows: all };
  const { values: k, how } = await symmetricGram(stacked, options);
  // M = εI + D K D, factored as L Lᵀ; Y = L⁻¹ D K, so K D M⁻¹ D K = Yᵀ Y.
  const mm = new Float64Array(size * size);
  for (let a = 0; a < size; a++) for (let b = 0; b < size; b++) mm[a * size + b] = (weight[a] as number) * (k[a * size + b] as number) * (weight[b] as number) + (a === b ? eps : 0);
  const l = choleskyFactor(mm, size, 'trackstar');
  const y = new Float64Array(size * size);
  for (let a = 0; a < size; a++) for (let b = 0; b < size; b++) y[a * size + b] = (weight[a] as number) * (k[a * size + b] as number);
  for (let a = 0; a < size; a++) {
    for (let c = 0; c < a; c++) {
      const lac = l[a * size + c] as number;
      if (lac === 0) continue;
      for (let b = 0; b < size; b++) y[a * size + b] = (y[a * size + b] as number) - lac * (y[c * size + b] as number);
    }
    const laa = l[a * size + a] as number;
    for (let b = 0; b < size; b++) y[a * size + b] = (y[a * size + b] as number) / laa;
  }
  /** ε · x_aᵀ R⁻¹ x_b = K_ab − Σ_c Y_ca Y_cb. */
  const q = (a: number, b: number): number => {
    let s = k[a * size + b] as number;
    for (let c = 0; c < size; c++) s -= (y[c * size + a] as number) * (y[c * size + b] as number);
    return s;
  };
  const norms = Float64Array.from({ length: size }, (_, a) => Math.sqrt(Math.max(q(a, a), 0)));
  const values = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const denom = (norms[i] as number) * (norms[n + j] as number);
      values[i * m + j] = denom > 0 ? Math.min(1, Math.max(-1, q(i, n + j) / denom)) : 0;
    }
  }
  return createScoreMatrix(train.ids, test.ids, values, trackStarProvenance(train, test, n, mix, eps, options, `Gram matrix by ${how}`, checkpoint));
}

/** The provenance of `trackstar` scores over `n` training gradients with damping `eps` (`how`: how R⁻¹ was applied). */
export function trackStarProvenance(train: GradientMatrix, test: GradientMatrix, n: number, mix: number, eps: number, options: TrackStarOptions, how: string, checkpoint: string): ScoreProvenance {
  const damping = options.damping !== undefined ? `ε = ${eps.toPrecision(4)} (absolute)` : `ε = ${eps.toPrecision(4)} (= ${options.dampingRatio ?? DEFAULT_DAMPING_RATIO} × trace(R_mix) / dim)`;
  return {
    method: 'trackstar',
    computedOver: `cosine of ∇ℓ(train) and ∇f(test) under R⁻¹ over ${train.dim} parameters (${describeCheckpoints(train, test)}; ${how}), R = ${1 - mix} × training second moment (${n} gradients) + ${mix} × query second moment (${test.rows.length} gradients) + εI, ${damping}; no optimizer-state correction, no projection; dimensionless in [-1, 1]; higher = more responsible`,
    units: 'dimensionless (cosine under R⁻¹, in [−1, 1])',
    checkpoints: [checkpoint],
    transforms: [],
  };
}

/**
 * The Hessian every scorer of this package uses, and its damping.
 *
 * H is the **damped empirical Fisher / Gauss–Newton matrix of the training gradients**:
 *
 *     H = (1/n) Σ_i g_i g_iᵀ + λ I        (g_i = ∇θ ℓ(z_t_i, θ), i = 1..n)
 *
 * Units of H: nats² per squared parameter unit (those of g gᵀ); λ is in the same units.
 * Default damping (scale-aware): λ = dampingRatio × (1/(n·dim)) Σ_i ‖g_i‖², i.e. `dampingRatio`
 * (default 0.1) times the mean eigenvalue trace(F)/dim of the undamped Fisher F — the heuristic of
 * the DataInf paper (Kwon et al. 2024), applied to the whole gradient. With it, scores are unchanged
 * when all gradients are multiplied by a common constant.
 */
import { DdaError, type GradientMatrix } from '@dda/core';

/** Default `dampingRatio`: λ = 0.1 × mean squared gradient norm / dim. */
export const DEFAULT_DAMPING_RATIO = 0.1;

/** Damping options shared by `if-exact`, `if-lissa` and `datainf`. */
export interface DampingOptions {
  /** Absolute λ > 0 (units of H: nats² per squared parameter unit). Overrides `dampingRatio`. */
  readonly damping?: number;
  /** λ relative to the mean eigenvalue of the Fisher, see the module doc (positive, default 0.1). */
  readonly dampingRatio?: number;
}

/** Σ_k row[k]², k in [start, end), in float64. */
export function squaredNorm(row: ArrayLike<number>, start = 0, end: number = row.length): number {
  let s = 0;
  for (let k = start; k < end; k++) s += (row[k] as number) * (row[k] as number);
  return s;
}

/** Throws a DdaError unless the damping options are positive finite numbers (when given). */
export function checkDampingOptions(o: DampingOptions, what: string): void {
  if (o.damping !== undefined && (!(o.damping > 0) || !Number.isFinite(o.damping))) {
    throw new DdaError(`${what}: option 'damping' must be a positive finite number, got ${o.damping}`, 'pass e.g. damping = 1e-3, or leave it out for the scale-aware default');
  }
  const r = o.dampingRatio;
  if (r !== undefined && (!(r > 0) || !Number.isFinite(r))) {
    throw new DdaError(`${what}: option 'dampingRatio' must be a positive finite number, got ${r}`, `pass e.g. dampingRatio = ${DEFAULT_DAMPING_RATIO}`);
  }
}

/** Throws a DdaError when there are no training gradients to estimate H from. */
export function requireTrainingGradients(train: GradientMatrix, what: string): void {
  requireTrainingRows(train.rows.length, what);
}

/** Throws a DdaError unless `nTrain` > 0 (the number of training rows H is estimated from, e.g. summed over streamed blocks). */
export function requireTrainingRows(nTrain: number, what: string): void {
  if (!(nTrain > 0)) {
    throw new DdaError(`${what}: no training gradients, so the Hessian H = (1/n) Σ g gᵀ + λI cannot be estimated`, 'score at least one training sample');
  }
}

/**
 * λ for H over coordinates [start, end) of the rows (the whole gradient by default): the
 * absolute `damping` if given, else `dampingRatio` × mean squared norm / (end − start).
 * Returns 0 only when no absolute damping is given and every training gradient is zero there.
 */
export function resolveDamping(rows: readonly ArrayLike<number>[], o: DampingOptions, start: number, end: number): number {
  if (o.damping !== undefined) return o.damping;
  let s = 0;
  for (const r of rows) s += squaredNorm(r, start, end);
  return dampingFromSquaredNorms(s, rows.length, end - start, o);
}

/**
 * λ from `sumSquares` = Σ_i ‖g_i‖² over `n` training rows of `size` coordinates (a sum a streamed
 * pass can add up block by block): the absolute `damping` if given, else `dampingRatio` ×
 * sumSquares / (n · size); 0 when n or size is 0 (and no absolute damping).
 */
export function dampingFromSquaredNorms(sumSquares: number, n: number, size: number, o: DampingOptions): number {
  if (o.damping !== undefined) return o.damping;
  return n === 0 || size <= 0 ? 0 : ((o.dampingRatio ?? DEFAULT_DAMPING_RATIO) * sumSquares) / (n * size);
}

/**
 * `lambda` when it is positive; a DdaError saying that every training gradient is zero at
 * `checkpoint` (the scale-aware damping is then 0) otherwise.
 */
export function requirePositiveDamping(lambda: number, checkpoint: string, what: string): number {
  if (!(lambda > 0)) {
    throw new DdaError(
      `${what}: every training gradient is zero at checkpoint '${checkpoint}', so the scale-aware damping is 0`,
      'check the gradient computation (are the trainable parameters the right ones?), or pass an absolute damping',
    );
  }
  return lambda;
}

/**
 * λ over the whole gradient, with a DdaError when it would be 0 (all training gradients zero and
 * no absolute damping given).
 */
export function wholeGradientDamping(train: GradientMatrix, o: DampingOptions, what: string): number {
  checkDampingOptions(o, what);
  requireTrainingGradients(train, what);
  return requirePositiveDamping(resolveDamping(train.rows, o, 0, train.dim), train.checkpoint, what);
}

/** Describes the damping for provenance strings. */
export function describeDamping(lambda: number, o: DampingOptions): string {
  return o.damping !== undefined
    ? `λ = ${lambda.toPrecision(4)} (absolute)`
    : `λ = ${lambda.toPrecision(4)} (= ${o.dampingRatio ?? DEFAULT_DAMPING_RATIO} × mean ‖g‖² / dim)`;
}

/** Checkpoint wording shared by the provenance strings. */
export function describeCheckpoints(train: GradientMatrix, test: GradientMatrix): string {
  return train.checkpoint === test.checkpoint
    ? `at ${train.checkpoint}`
    : `training gradients at ${train.checkpoint}, test gradients at ${test.checkpoint}`;
}

/** Describes per-block dampings λ_l (one per scored block) for provenance strings. */
export function describeBlockDamping(lambdas: readonly number[], o: DampingOptions): string {
  if (lambdas.length === 0) return 'no block with a non-zero training gradient';
  if (o.damping !== undefined) return `λ_l = ${o.damping} (absolute)`;
  return `λ_l = ${o.dampingRatio ?? DEFAULT_DAMPING_RATIO} × mean ‖g_l‖² / d_l, from ${Math.min(...lambdas).toPrecision(3)} to ${Math.max(...lambdas).toPrecision(3)}`;
}

/**
 * `if-exact`: the influence function with the damped empirical Fisher, solved exactly.
 *
 *     score[i][j] = g_iᵀ H⁻¹ h_j,   H = (1/n) Σ_k g_k g_kᵀ + λI
 *
 * g_i = ∇θ ℓ(z_t_i) (training loss), h_j = ∇θ f(z_e_j) (test measurement). This is the negative of
 * Koh & Liang's IS = −h_jᵀ H⁻¹ g_i, so higher = a (Newton-preconditioned) step on the training
 * sample lowers the test loss more = more responsible. Units: dimensionless (gradients in
 * nats/parameter against H in nats²/parameter²).
 *
 * Solved with H⁻¹ = n (GᵀG + nλI)⁻¹, i.e. S = n · (G Gᵀ + nλI)⁻¹ G Hᵀ on the n×n side (Woodbury /
 * push-through, exact and cheap when nTrain ≪ dim) or on the dim×dim side, by Cholesky in float64.
 * {@link ifExactScoresOnEngine} (the scorer's path) takes the dual side's products on a float64 GEMM
 * (option `engine`, {@link Float64EngineOptions}); {@link ifExactScores} is the float64 loop.
 */
import { createScoreMatrix, type GradientMatrix, type ScoreMatrix, type ScoreProvenance } from '@dda/core';
import { checkGradientPair } from '@dda/scorer-grad-dot';
import { describeCheckpoints, describeDamping, wholeGradientDamping, type DampingOptions } from './damping.js';
import { DEFAULT_MAX_SYSTEM_SIZE, ridgeKernelScores, ridgeKernelScoresOn, type Float64EngineOptions, type KernelSolver } from './linalg.js';

/** Options of {@link ifExactScores} and the `if-exact` scorer. */
export interface IfExactOptions extends DampingOptions, Float64EngineOptions {
  /** `auto` (default: the smaller of nTrain and dim), `dual` (n×n, Woodbury) or `primal` (dim×dim). */
  readonly solver?: KernelSolver;
  /** Largest system size to factor (default 8192; memory 8·size² bytes). Larger inputs get a DdaError. */
  readonly maxSystemSize?: number;
}

/**
 * Exact influence scores [nTrain × nTest] (see the module doc for the formula, sign and units).
 *
 * @param train - Per-example training-loss gradients (also define H).
 * @param test - Per-example test-measurement gradients over the same parameters.
 * @param checkpoint - Recorded in the provenance (default: the training gradients' checkpoint).
 * @throws DdaError on malformed or mismatched gradients, no training gradients, a non-positive
 *   damping, or a system larger than `maxSystemSize`.
 */
export function ifExactScores(
  train: GradientMatrix,
  test: GradientMatrix,
  options: IfExactOptions = {},
  checkpoint: string = train.checkpoint,
): ScoreMatrix {
  checkGradientPair(train, test, 'if-exact');
  const lambda = wholeGradientDamping(train, options, 'if-exact');
  const n = train.rows.length;
  const { values, solver } = ridgeKernelScores(train.rows, test.rows, train.dim, n * lambda, {
    solver: options.solver ?? 'auto',
    maxSystemSize: options.maxSystemSize ?? DEFAULT_MAX_SYSTEM_SIZE,
    what: 'if-exact',
  });
  for (let k = 0; k < values.length; k++) values[k] = (values[k] as number) * n;
  const how = solver === 'dual' ? `${n}×${n} Woodbury system` : `${train.dim}×${train.dim} system`;
  return createScoreMatrix(train.ids, test.ids, values, ifExactProvenance(train, test, n, describeDamping(lambda, options), how, checkpoint));
}

/**
 * {@link ifExactScores} with the dual side's Gram and cross products on the float64 GEMM of
 * `options.engine` (default `auto`: onnxruntime's where it is loaded; {@link Float64EngineOptions}).
 * Equal to it up to the order of float64 sums; the provenance says where the products ran.
 *
 * @throws DdaError as {@link ifExactScores}, or when a kernel asked for by id cannot run.
 */
export async function ifExactScoresOnEngine(
  train: GradientMatrix,
  test: GradientMatrix,
  options: IfExactOptions = {},
  checkpoint: string = train.checkpoint,
): Promise<ScoreMatrix> {
  checkGradientPair(train, test, 'if-exact');
  const lambda = wholeGradientDamping(train, options, 'if-exact');
  const n = train.rows.length;
  const { values, solver, how } = await ridgeKernelScoresOn(train.rows, test.rows, train.dim, n * lambda, {
    solver: options.solver ?? 'auto',
    maxSystemSize: options.maxSystemSize ?? DEFAULT_MAX_SYSTEM_SIZE,
    what: 'if-exact',
    ...(options.engine !== undefined ? { engine: options.engine } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  for (let k = 0; k < values.length; k++) values[k] = (values[k] as number) * n;
  const system = solver === 'dual' ? `${n}×${n} Woodbury system, its products a ${how}` : `${train.dim}×${train.dim} system`;
  return createScoreMatrix(train.ids, test.ids, values, ifExactProvenance(train, test, n, describeDamping(lambda, options), system, checkpoint));
}

/** The provenance of `if-exact` scores over `n` training gradients (`how`: the system solved). */
export function ifExactProvenance(train: GradientMatrix, test: GradientMatrix, n: number, damping: string, how: string, checkpoint: string): ScoreProvenance {
  return {
    method: 'if-exact',
    computedOver: `g_trainᵀ H⁻¹ g_test over ${train.dim} parameters (${describeCheckpoints(train, test)}), H = (1/n) Σ g gᵀ + λI the damped empirical Fisher of the ${n} training gradients, ${damping}, solved exactly by Cholesky (${how}); dimensionless; higher = more responsible`,
    units: 'dimensionless',
    checkpoints: [checkpoint],
    transforms: [],
  };
}

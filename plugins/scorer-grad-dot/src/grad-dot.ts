/**
 * grad-dot and grad-cos: influence with the Hessian replaced by the identity.
 *
 * score[i][j] = ∇θ ℓ(z_t_i, θ) · ∇θ f(z_e_j, θ)
 *
 * This is the negative of Koh & Liang's influence −∇f(z_e)ᵀ H⁻¹ ∇ℓ(z_t) with H = I. Sign: a
 * gradient step on training sample z_t (θ ← θ − η ∇ℓ) changes the test measurement by
 * about −η·score, so a positive score means training on z_t lowers the loss of the (erroneous)
 * test output, i.e. makes the model more likely to produce it: higher = more responsible.
 */
import {
  DdaError,
  FLOAT64_LOOP_HOW,
  createScoreMatrix,
  validateGradientMatrix,
  type GradientMatrix,
  type ScoreMatrix,
  type ScoringInput,
} from '@dda/core';

/** Default number of training rows per block. */
export const DEFAULT_BLOCK_ROWS = 256;
/** Number of gradient coordinates per chunk inside a block (keeps the working set in cache). */
const DIM_CHUNK = 4096;

/**
 * Engine of the inner products: `auto` (the registered dot-product kernels by priority, e.g.
 * onnxruntime's float32 GEMM, when one starts, else the float64 JavaScript loop, logged), `js`
 * (the float64 JavaScript loop only), or the id of a kernel in @dda/core's `dotKernels` (required).
 */
export type DotEngineChoice = 'auto' | 'js' | (string & {});

/** Options of {@link gradDotValues} and the `grad-dot` / `grad-cos` scorers. */
export interface GradDotOptions {
  /** Training rows per block (positive integer, default 256). Does not change the result beyond rounding. */
  readonly blockRows?: number;
  /** Engine of the scorers (default `auto`); the synchronous functions of this file always use the JavaScript loop. */
  readonly engine?: DotEngineChoice;
  /** Where the scorers log an engine fallback (default console.warn). */
  readonly log?: (line: string) => void;
}

/** How the JavaScript loop computes, for provenance. */
export const JS_DOT_HOW: string = FLOAT64_LOOP_HOW;

function checkBlockRows(blockRows: number): void {
  if (!Number.isInteger(blockRows) || blockRows < 1) {
    throw new DdaError(`grad-dot: blockRows must be a positive integer, got ${blockRows}`, 'pass e.g. blockRows = 256');
  }
}

/**
 * Checks both gradient matrices (shapes, finiteness) and that they are over the same parameters:
 * equal `dim`, and equal parameter names and sizes when both list them.
 *
 * @throws DdaError that says which matrix is wrong and what to change.
 */
export function checkGradientPair(train: GradientMatrix, test: GradientMatrix, what: string): void {
  validateGradientMatrix(train, `${what}: training gradients`);
  validateGradientMatrix(test, `${what}: test gradients`);
  if (train.dim !== test.dim) {
    throw new DdaError(
      `${what}: training gradients have ${train.dim} entries per row but test gradients ${test.dim}`,
      'take both gradients over the same trainable parameters (e.g. both over the LoRA adapters)',
    );
  }
  const sameLayout =
    train.parameterNames.length === test.parameterNames.length &&
    train.parameterNames.every((n, i) => n === test.parameterNames[i] && train.parameterSizes[i] === test.parameterSizes[i]);
  if (!sameLayout) {
    throw new DdaError(
      `${what}: training and test gradients are flattened over different parameters ([${train.parameterNames.join(', ')}] vs [${test.parameterNames.join(', ')}])`,
      'flatten both in the same parameter order',
    );
  }
}

/**
 * The raw inner products, row-major [nTrain × nTest]: `out[i*nTest + j] = train.rows[i] · test.rows[j]`,
 * accumulated in float64. Computed block by block (`blockRows` training rows against every test
 * row, in chunks of the gradient dimension), so the working set stays small whatever the sizes;
 * memory is the output plus O(1).
 *
 * @param train - Rows of dimension `dim` (float32 gradients; units d(nats)/d(parameter)).
 * @param test - Rows of the same dimension.
 * @param dim - Number of entries of every row (rows are assumed validated, e.g. by {@link checkGradientPair}).
 * @param blockRows - Training rows per block (positive integer, default 256); changes only the rounding.
 * @returns Float64Array of length train.length × test.length; units nats² per squared parameter unit.
 */
export function gradDotValues(
  train: readonly Float32Array[],
  test: readonly Float32Array[],
  dim: number,
  blockRows: number = DEFAULT_BLOCK_ROWS,
): Float64Array {
  checkBlockRows(blockRows);
  const nTrain = train.length;
  const nTest = test.length;
  const out = new Float64Array(nTrain * nTest);
  for (let i0 = 0; i0 < nTrain; i0 += blockRows) {
    const i1 = Math.min(i0 + blockRows, nTrain);
    for (let d0 = 0; d0 < dim; d0 += DIM_CHUNK) {
      const d1 = Math.min(d0 + DIM_CHUNK, dim);
      for (let i = i0; i < i1; i++) {
        const a = train[i] as Float32Array;
        for (let j = 0; j < nTest; j++) {
          const b = test[j] as Float32Array;
          let s = 0;
          for (let d = d0; d < d1; d++) s += (a[d] as number) * (b[d] as number);
          out[i * nTest + j] = (out[i * nTest + j] as number) + s;
        }
      }
    }
  }
  return out;
}

/** Euclidean norm of each row, accumulated in float64. */
export function rowNorms(rows: readonly Float32Array[]): Float64Array {
  return Float64Array.from(rows, (r) => {
    let s = 0;
    for (let d = 0; d < r.length; d++) s += (r[d] as number) * (r[d] as number);
    return Math.sqrt(s);
  });
}

/**
 * grad-dot scores: `score[i][j] = ∇ℓ(train i) · ∇f(test j)`, float64, blocked
 * (see {@link gradDotValues}). Higher = more responsible (see the module doc for the sign).
 *
 * @param train - Per-example training-loss gradients, one row per training sample.
 * @param test - Per-example test-measurement gradients, one row per test output, same parameters.
 * @param checkpoint - Checkpoint id recorded in the provenance (default: the training gradients' checkpoint).
 * @returns ScoreMatrix [nTrain × nTest] with ids from the gradient matrices, method `grad-dot`.
 * @throws DdaError if a gradient matrix is malformed or non-finite, or the two differ in dimension or parameters.
 */
export function gradDotScores(
  train: GradientMatrix,
  test: GradientMatrix,
  options: GradDotOptions = {},
  checkpoint: string = train.checkpoint,
): ScoreMatrix {
  checkGradientPair(train, test, 'grad-dot');
  const values = gradDotValues(train.rows, test.rows, train.dim, options.blockRows ?? DEFAULT_BLOCK_ROWS);
  return gradDotMatrix(train, test, values, JS_DOT_HOW, checkpoint);
}

/**
 * The grad-dot ScoreMatrix from inner products already computed (`values[i*nTest + j]`, e.g. by
 * the GEMM engine); `how` names the engine in the provenance.
 */
export function gradDotMatrix(train: GradientMatrix, test: GradientMatrix, values: Float64Array, how: string, checkpoint: string = train.checkpoint): ScoreMatrix {
  return createScoreMatrix(train.ids, test.ids, values, {
    method: 'grad-dot',
    computedOver: `inner product of per-example gradients over ${train.dim} parameters (${describeCheckpoints(train, test)}; ${how}); units nats² per squared parameter unit; higher = a gradient step on the training sample lowers the test loss more`,
    units: 'nats² per squared parameter unit',
    checkpoints: [checkpoint],
    transforms: [],
  });
}

/**
 * grad-cos scores: the cosine of the same two gradients, `score[i][j] = (g_i · h_j) / (‖g_i‖ ‖h_j‖)`,
 * in [−1, 1] and dimensionless; 0 when either gradient is all zeros. Higher = more responsible.
 *
 * @param train - Per-example training-loss gradients, one row per training sample.
 * @param test - Per-example test-measurement gradients, one row per test output, same parameters.
 * @param checkpoint - Checkpoint id recorded in the provenance (default: the training gradients' checkpoint).
 * @returns ScoreMatrix [nTrain × nTest] with ids from the gradient matrices, method `grad-cos`.
 * @throws DdaError as {@link gradDotScores}.
 */
export function gradCosScores(
  train: GradientMatrix,
  test: GradientMatrix,
  options: GradDotOptions = {},
  checkpoint: string = train.checkpoint,
): ScoreMatrix {
  checkGradientPair(train, test, 'grad-cos');
  const values = gradDotValues(train.rows, test.rows, train.dim, options.blockRows ?? DEFAULT_BLOCK_ROWS);
  return gradCosMatrix(train, test, values, JS_DOT_HOW, checkpoint);
}

/**
 * The grad-cos ScoreMatrix from inner products already computed (`values[i*nTest + j]`, divided in
 * place by the row norms); `how` names the engine in the provenance.
 */
export function gradCosMatrix(train: GradientMatrix, test: GradientMatrix, values: Float64Array, how: string, checkpoint: string = train.checkpoint): ScoreMatrix {
  const nt = rowNorms(train.rows);
  const ne = rowNorms(test.rows);
  const nTest = test.rows.length;
  for (let i = 0; i < train.rows.length; i++) {
    for (let j = 0; j < nTest; j++) {
      const denom = (nt[i] as number) * (ne[j] as number);
      const k = i * nTest + j;
      // Clamp: rounding can push |cos| a hair above 1.
      values[k] = denom > 0 ? Math.max(-1, Math.min(1, (values[k] as number) / denom)) : 0;
    }
  }
  return createScoreMatrix(train.ids, test.ids, values, {
    method: 'grad-cos',
    computedOver: `cosine similarity of per-example gradients over ${train.dim} parameters (${describeCheckpoints(train, test)}; ${how}); dimensionless in [-1, 1], 0 for a zero gradient; higher = more responsible`,
    units: 'dimensionless (cosine in [−1, 1])',
    checkpoints: [checkpoint],
    transforms: [],
  });
}

function describeCheckpoints(train: GradientMatrix, test: GradientMatrix): string {
  return train.checkpoint === test.checkpoint
    ? `at ${train.checkpoint}`
    : `training gradients at ${train.checkpoint}, test gradients at ${test.checkpoint}`;
}

/**
 * Checks that the gradient rows belong to the samples of the scoring input, in order, so that the
 * score matrix rows line up with `input.train` (and its labels) and columns with `input.test`.
 *
 * @throws DdaError if the gradient ids differ from the input's sample ids or their order.
 */
export function checkIdsMatchInput(input: ScoringInput, train: GradientMatrix, test: GradientMatrix, what: string): void {
  const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, k) => x === b[k]);
  if (!same(train.ids, input.train.map((s) => s.id))) {
    throw new DdaError(
      `${what}: the training gradients are for ${train.ids.length} samples that do not match the ${input.train.length} training samples of the input (or are in another order)`,
      'compute one training gradient per training sample, in input order',
    );
  }
  if (!same(test.ids, input.test.map((s) => s.id))) {
    throw new DdaError(
      `${what}: the test gradients are for ${test.ids.length} outputs that do not match the ${input.test.length} test outputs of the input (or are in another order)`,
      'compute one test gradient per test output, in input order',
    );
  }
}

/**
 * Which engine computes the train × test inner products of the gradient scorers: a dot-product
 * kernel of @dda/core's `dotKernels` registry (onnxruntime's float32 GEMM, registered by
 * @dda/backend-onnxruntime; a plugin's kernel the same way), by priority, when one starts; the
 * float64 JavaScript loop of {@link gradDotValues} otherwise. The fallback is logged once, with its
 * reason. No engine is imported by name.
 */
import { kernelProducts, type GradientMatrix, type ScoreMatrix } from '@dda/core';
import {
  DEFAULT_BLOCK_ROWS, JS_DOT_HOW, checkGradientPair, gradCosMatrix, gradDotMatrix, gradDotValues,
  type GradDotOptions,
} from './grad-dot.js';

/**
 * Options of {@link dotProducts}: `engine` (default `auto`: the kernels by priority, then the
 * JavaScript loop; `js`: the loop only; a kernel id such as `onnxruntime`: that kernel, required);
 * `blockRows`, training rows per block of the JavaScript loop and an upper bound per kernel call;
 * `log`, where the fallback reason goes (default console.warn), once per process.
 */
export type DotProductOptions = GradDotOptions;

/** Inner products and the engine that computed them. */
export interface DotProducts {
  /** Row-major [nTrain × nTest]. */
  readonly values: Float64Array;
  /** The kernel's backend, e.g. `onnxruntime-cpu` (float32 GEMM, float32 accumulation), or `js` (float64 accumulation). */
  readonly engine: string;
  /** One phrase for provenance, e.g. "float32 GEMM on onnxruntime-cpu". */
  readonly how: string;
}

/**
 * `values[i*nTest + j] = train.rows[i] · test.rows[j]` on the chosen engine (@dda/core's
 * `kernelProducts`). Both matrices must already be checked (same dim, finite; e.g. by
 * `checkGradientPair`). Under `auto`, a kernel that cannot start or fails while computing leaves
 * the products to the JavaScript loop (logged once).
 *
 * @throws DdaError when a kernel asked for by id cannot start or fails, or no kernel has that id.
 */
export async function dotProducts(train: GradientMatrix, test: GradientMatrix, options: DotProductOptions = {}): Promise<DotProducts> {
  const blockRows = options.blockRows ?? DEFAULT_BLOCK_ROWS;
  if (options.engine !== 'js' && train.rows.length > 0 && test.rows.length > 0 && train.dim > 0) {
    const testFlat = new Float32Array(test.rows.length * test.dim);
    test.rows.forEach((r, j) => testFlat.set(r, j * test.dim));
    const k = await kernelProducts(train.rows, train.dim, testFlat, test.rows.length, { engine: options.engine ?? 'auto', blockRows, who: 'grad-dot', ...(options.log ? { log: options.log } : {}) });
    if (k) return k;
  }
  return { values: gradDotValues(train.rows, test.rows, train.dim, blockRows), engine: 'js', how: JS_DOT_HOW };
}

/**
 * grad-dot scores (as `gradDotScores`) on the engine of `options.engine`: onnxruntime's float32
 * GEMM by default where it starts. Higher = more responsible; units nats² per squared parameter unit.
 *
 * @throws DdaError as `gradDotScores`, or when engine `onnxruntime` is required and cannot start.
 */
export async function gradDotScoresOnEngine(train: GradientMatrix, test: GradientMatrix, options: GradDotOptions = {}, checkpoint: string = train.checkpoint): Promise<ScoreMatrix> {
  checkGradientPair(train, test, 'grad-dot');
  const d = await dotProducts(train, test, options);
  return gradDotMatrix(train, test, d.values, d.how, checkpoint);
}

/**
 * grad-cos scores (as `gradCosScores`) on the engine of `options.engine`. Dimensionless in [−1, 1].
 *
 * @throws DdaError as `gradCosScores`, or when engine `onnxruntime` is required and cannot start.
 */
export async function gradCosScoresOnEngine(train: GradientMatrix, test: GradientMatrix, options: GradDotOptions = {}, checkpoint: string = train.checkpoint): Promise<ScoreMatrix> {
  checkGradientPair(train, test, 'grad-cos');
  const d = await dotProducts(train, test, options);
  return gradCosMatrix(train, test, d.values, d.how, checkpoint);
}

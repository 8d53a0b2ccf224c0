/**
 * Which engine computes the train × test inner products of the gradient scorers: onnxruntime's
 * float32 GEMM (blocked over training rows, see @dda/backend-onnxruntime) when it can start, the
 * float64 JavaScript loop of {@link gradDotValues} otherwise. The fallback is logged once, with its reason.
 */
import { DdaError, type GradientMatrix, type ScoreMatrix } from '@dda/core';
import { OnnxBlockedDot, defaultBlockRows, rowArraySource, startOnnxRuntime } from '@dda/backend-onnxruntime';
import {
  DEFAULT_BLOCK_ROWS, JS_DOT_HOW, checkGradientPair, gradCosMatrix, gradDotMatrix, gradDotValues,
  type DotEngineChoice, type GradDotOptions,
} from './grad-dot.js';

/** Every {@link DotEngineChoice}. */
export const DOT_ENGINES: readonly DotEngineChoice[] = ['auto', 'onnxruntime', 'js'];

/**
 * Options of {@link dotProducts}: `engine` (default `auto`); `blockRows`, training rows per block of
 * the JavaScript loop and an upper bound per GEMM call (whose blocks also stay under 64 MiB);
 * `log`, where the fallback reason goes (default console.warn), once per process.
 */
export type DotProductOptions = GradDotOptions;

/** Inner products and the engine that computed them. */
export interface DotProducts {
  /** Row-major [nTrain × nTest]. */
  readonly values: Float64Array;
  /** `onnxruntime-cpu` / `onnxruntime-cuda` (float32 GEMM, float32 accumulation) or `js` (float64 accumulation). */
  readonly engine: string;
  /** One phrase for provenance, e.g. "float32 GEMM on onnxruntime-cpu". */
  readonly how: string;
}

let gemm: Promise<OnnxBlockedDot> | undefined;
let fallbackLogged = false;

function onnxGemm(): Promise<OnnxBlockedDot> {
  if (gemm === undefined) {
    gemm = startOnnxRuntime().then((b) => OnnxBlockedDot.create(b));
    // A failed start is retried on the next call (the reason is logged by the caller).
    gemm.catch(() => {
      gemm = undefined;
    });
  }
  return gemm;
}

/**
 * `values[i*nTest + j] = train.rows[i] · test.rows[j]` on the chosen engine. Both matrices must
 * already be checked (same dim, finite; e.g. by `checkGradientPair`).
 *
 * @throws DdaError when `engine` is `onnxruntime` and onnxruntime cannot start, or the option is unknown.
 */
export async function dotProducts(train: GradientMatrix, test: GradientMatrix, options: DotProductOptions = {}): Promise<DotProducts> {
  const engine = options.engine ?? 'auto';
  if (!DOT_ENGINES.includes(engine)) throw new DdaError(`unknown dot-product engine '${String(engine)}'`, `choose one of: ${DOT_ENGINES.join(', ')}`);
  const blockRows = options.blockRows ?? DEFAULT_BLOCK_ROWS;
  const empty = train.rows.length === 0 || test.rows.length === 0 || train.dim === 0;
  if (engine !== 'js' && !empty) {
    try {
      const g = await onnxGemm();
      const testFlat = new Float32Array(test.rows.length * test.dim);
      test.rows.forEach((r, j) => testFlat.set(r, j * test.dim));
      const values = await g.scores(rowArraySource(train.rows, train.dim), testFlat, test.rows.length, {
        blockRows: Math.min(blockRows, defaultBlockRows(train.dim)),
      });
      return { values, engine: g.backend.id, how: `float32 GEMM on ${g.backend.id}` };
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      if (engine === 'onnxruntime') {
        throw new DdaError(`the onnxruntime dot-product engine cannot run: ${reason}`, "install onnxruntime-node (see the README), or pass engine 'js' or 'auto'");
      }
      if (!fallbackLogged) {
        fallbackLogged = true;
        (options.log ?? ((l: string) => console.warn(l)))(`grad-dot: onnxruntime GEMM unavailable (${reason}); falling back to the float64 JavaScript loop`);
      }
    }
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

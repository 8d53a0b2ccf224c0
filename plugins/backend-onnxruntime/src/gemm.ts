/**
 * Score matrices on onnxruntime's GEMM: train [nTrain × dim] · test [nTest × dim]ᵀ, streamed in
 * blocks of training rows so memory is one block plus the test matrix whatever nTrain is.
 */
import { DdaError } from '@dda/core';
import type { OnnxRuntimeBackend } from './backend.js';
import { ONNX_TYPE, attr, type OnnxModel } from './onnx-model.js';
import type { OrtSession } from './ort.js';

/**
 * Training rows delivered block by block (from memory, a file or a generator).
 * `read(start, count, scratch)` returns rows [start, start + count) as one row-major
 * Float32Array of count × dim values: `scratch` filled in, or a view of data already laid out so.
 */
export interface RowBlockSource {
  readonly rows: number;
  readonly dim: number;
  read(start: number, count: number, scratch: Float32Array): Float32Array | Promise<Float32Array>;
}

/** A {@link RowBlockSource} over rows in memory; blocks of rows that are contiguous in one buffer are passed without a copy. */
export function rowArraySource(rows: readonly Float32Array[], dim: number): RowBlockSource {
  for (const [i, r] of rows.entries()) {
    if (r.length !== dim) throw new DdaError(`row ${i} has ${r.length} entries, expected ${dim}`, 'give every row the same dimension');
  }
  return {
    rows: rows.length,
    dim,
    read(start, count, scratch) {
      const first = rows[start] as Float32Array;
      const contiguous = rows.slice(start, start + count).every(
        (r, k) => r.buffer === first.buffer && r.byteOffset === first.byteOffset + k * dim * 4,
      );
      if (contiguous) return new Float32Array(first.buffer, first.byteOffset, count * dim);
      for (let k = 0; k < count; k++) scratch.set(rows[start + k] as Float32Array, k * dim);
      return scratch.subarray(0, count * dim);
    },
  };
}

/** Options of {@link OnnxBlockedDot.scores}. */
export interface BlockedDotOptions {
  /** Training rows per GEMM call (default: as many as fit in {@link DEFAULT_BLOCK_BYTES}, at least 1). */
  readonly blockRows?: number;
  /**
   * Receives each block's scores instead of a full output matrix: `values[k * nTest + j]` is
   * row `start + k` against test row j (float32 accumulation). With a sink, `scores` returns an
   * empty array and memory does not grow with nTrain.
   */
  readonly sink?: (start: number, count: number, values: Float32Array) => void | Promise<void>;
}

/** Bytes of training rows per GEMM call when no block size is given (64 MiB). */
export const DEFAULT_BLOCK_BYTES = 64 * 1024 * 1024;

/** Default training rows per block for gradients of `dim` float32 entries. */
export function defaultBlockRows(dim: number): number {
  return Math.max(1, Math.floor(DEFAULT_BLOCK_BYTES / (4 * Math.max(1, dim))));
}

/**
 * ONNX Gemm, Y[nTest × rows] = test · blockᵀ (transB = 1): the test matrix is the left operand,
 * so onnxruntime packs only the streamed block (which it must read anyway), never the test matrix.
 */
const BLOCK_GEMM: OnnxModel = {
  graph: {
    name: 'blocked-dot',
    nodes: [{ opType: 'Gemm', inputs: ['test', 'train_block'], outputs: ['scores_t'], attributes: { transB: attr.int(1) } }],
    inputs: [
      { name: 'test', elemType: ONNX_TYPE.float, shape: ['n_test', 'dim'] },
      { name: 'train_block', elemType: ONNX_TYPE.float, shape: ['rows', 'dim'] },
    ],
    outputs: [{ name: 'scores_t', elemType: ONNX_TYPE.float, shape: ['n_test', 'rows'] }],
  },
};

/** Blocked train × testᵀ inner products on an onnxruntime backend (one reusable session). */
export class OnnxBlockedDot {
  private constructor(
    readonly backend: OnnxRuntimeBackend,
    private readonly session: OrtSession,
  ) {}

  /** Creates the Gemm session on `backend`. */
  static async create(backend: OnnxRuntimeBackend): Promise<OnnxBlockedDot> {
    return new OnnxBlockedDot(backend, await backend.createSession(BLOCK_GEMM));
  }

  /**
   * Inner products of every training row with every test row, float32 GEMM (onnxruntime MLAS on
   * the CPU), streamed over blocks of training rows.
   *
   * @param train - Training rows, read block by block.
   * @param test - Test rows, row-major nTest × dim.
   * @param nTest - Number of test rows (≥ 1).
   * @returns Float64Array [nTrain × nTest], row-major (empty when `options.sink` is given).
   * @throws DdaError if the dimensions disagree or a block size is not a positive integer.
   */
  async scores(train: RowBlockSource, test: Float32Array, nTest: number, options: BlockedDotOptions = {}): Promise<Float64Array> {
    const dim = train.dim;
    if (!Number.isInteger(nTest) || nTest < 1 || test.length !== nTest * dim) {
      throw new DdaError(`blocked dot: test matrix has ${test.length} values, expected ${nTest} rows × ${dim}`, 'pass the test rows row-major with the training rows\' dimension');
    }
    const blockRows = options.blockRows ?? defaultBlockRows(dim);
    if (!Number.isInteger(blockRows) || blockRows < 1) throw new DdaError(`blocked dot: blockRows must be a positive integer, got ${blockRows}`, 'pass e.g. blockRows = 256');
    const { Tensor } = this.backend.ort;
    const out = options.sink ? new Float64Array(0) : new Float64Array(train.rows * nTest);
    if (train.rows === 0) return out;
    const testTensor = new Tensor('float32', test, [nTest, dim]);
    const scratch = new Float32Array(Math.min(blockRows, train.rows) * dim);
    const blockValues = new Float32Array(Math.min(blockRows, train.rows) * nTest);
    for (let start = 0; start < train.rows; start += blockRows) {
      const count = Math.min(blockRows, train.rows - start);
      const block = await train.read(start, count, scratch);
      if (block.length !== count * dim) throw new DdaError(`blocked dot: source returned ${block.length} values for ${count} rows of ${dim}`, 'return count × dim values per block');
      const res = await this.session.run({ test: testTensor, train_block: new Tensor('float32', block, [count, dim]) });
      const yt = res.scores_t?.data as Float32Array; // [nTest × count]
      if (options.sink) {
        const values = blockValues.subarray(0, count * nTest);
        for (let j = 0; j < nTest; j++) for (let k = 0; k < count; k++) values[k * nTest + j] = yt[j * count + k] as number;
        await options.sink(start, count, values);
      } else {
        for (let j = 0; j < nTest; j++) for (let k = 0; k < count; k++) out[(start + k) * nTest + j] = yt[j * count + k] as number;
      }
    }
    return out;
  }

  /** Releases the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Result of {@link measureMatMulPeak}. */
export interface MatMulPeak {
  readonly n: number;
  /** Best of the timed runs, seconds per n×n·n×n product. */
  readonly seconds: number;
  /** 2n³ / seconds / 1e9. */
  readonly gflops: number;
}

/**
 * The machine's GEMM peak as onnxruntime reaches it: a float32 MatMul of two n × n inputs,
 * timed `reps` times after one warm-up run (whose product is spot-checked); the best run counts.
 */
export async function measureMatMulPeak(backend: OnnxRuntimeBackend, n = 2048, reps = 5): Promise<MatMulPeak> {
  const session = await backend.createSession({
    graph: {
      name: 'matmul-peak',
      nodes: [{ opType: 'MatMul', inputs: ['a', 'b'], outputs: ['c'] }],
      inputs: [
        { name: 'a', elemType: ONNX_TYPE.float, shape: [n, n] },
        { name: 'b', elemType: ONNX_TYPE.float, shape: [n, n] },
      ],
      outputs: [{ name: 'c', elemType: ONNX_TYPE.float, shape: [n, n] }],
    },
  });
  try {
    const a = new Float32Array(n * n).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    const feeds = { a: new backend.ort.Tensor('float32', a, [n, n]), b: new backend.ort.Tensor('float32', a.slice().reverse(), [n, n]) };
    // The warm-up run's product is checked at a few entries, so a broken kernel cannot produce a figure.
    const c = (await session.run(feeds)).c?.data as Float32Array;
    const b = feeds.b.data as Float32Array;
    for (const [i, j] of [[0, 0], [n - 1, 1], [n >> 1, n - 1]] as const) {
      let s = 0;
      for (let k = 0; k < n; k++) s += (a[i * n + k] as number) * (b[k * n + j] as number);
      if (Math.abs((c[i * n + j] as number) - s) > 1e-3 * (1 + Math.abs(s))) {
        throw new DdaError(`onnxruntime MatMul computed c[${i}][${j}] = ${c[i * n + j]}, expected ${s}`, 'check the onnxruntime-node installation');
      }
    }
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return { n, seconds: best, gflops: (2 * n ** 3) / best / 1e9 };
  } finally {
    await session.release();
  }
}

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
 * Which operand of the scoring GEMM onnxruntime packs (MLAS copies its B operand into its own
 * panel layout before multiplying):
 * - `test`: Y[rows × nTest] = block · testᵀ with the test matrix an initializer, packed once when
 *   the session is created; each streamed block is only read, and Y comes out in the row-major
 *   [train × test] layout of the result.
 * - `block`: Yᵀ[nTest × rows] = test · blockᵀ with both as inputs; MLAS packs every streamed
 *   block.
 * `block` is the default: on the 2-core development machine, creating the `test` session (the
 * test matrix encoded into the model and copied and packed by onnxruntime: about 2 s for W2's
 * 62 MB) cost more than packing saved over W2's 10,000 rows (BENCHMARKS.md, issue 18).
 */
export type GemmPacking = 'test' | 'block';

/** The scoring GEMM for `packing` (see {@link GemmPacking}); `rows` is symbolic, so one session serves every block size (and with `block`, symbolic sizes serve every test matrix). */
function blockGemmModel(packing: GemmPacking, test: Float32Array, nTest: number | string, dim: number | string): OnnxModel {
  const transB = { transB: attr.int(1) };
  if (packing === 'block') {
    return {
      graph: {
        name: 'blocked-dot',
        nodes: [{ opType: 'Gemm', inputs: ['test', 'train_block'], outputs: ['scores_t'], attributes: transB }],
        inputs: [{ name: 'test', elemType: ONNX_TYPE.float, shape: [nTest, dim] }, { name: 'train_block', elemType: ONNX_TYPE.float, shape: ['rows', dim] }],
        outputs: [{ name: 'scores_t', elemType: ONNX_TYPE.float, shape: [nTest, 'rows'] }],
      },
    };
  }
  return {
    graph: {
      name: 'blocked-dot',
      nodes: [{ opType: 'Gemm', inputs: ['train_block', 'test'], outputs: ['scores'], attributes: transB }],
      inputs: [{ name: 'train_block', elemType: ONNX_TYPE.float, shape: ['rows', dim] }],
      outputs: [{ name: 'scores', elemType: ONNX_TYPE.float, shape: ['rows', nTest] }],
      initializers: [{ name: 'test', elemType: ONNX_TYPE.float, dims: [nTest as number, dim as number], data: test }],
    },
  };
}

/** Blocked train × testᵀ inner products on an onnxruntime backend (one session for every call with `block` packing, one per call with `test`). */
export class OnnxBlockedDot {
  /** The `block` layout's session, which serves every call (its test matrix is an input). */
  private blockSession: Promise<OrtSession> | undefined;

  private constructor(
    readonly backend: OnnxRuntimeBackend,
    /** Which GEMM operand onnxruntime packs (see {@link GemmPacking}). */
    readonly packing: GemmPacking,
  ) {}

  /** A scorer on `backend`; `options.packing` defaults to `block` (see {@link GemmPacking}). */
  static async create(backend: OnnxRuntimeBackend, options: { readonly packing?: GemmPacking } = {}): Promise<OnnxBlockedDot> {
    const packing = options.packing ?? 'block';
    if (packing !== 'test' && packing !== 'block') throw new DdaError(`blocked dot: packing must be 'test' or 'block', got ${String(packing)}`);
    return new OnnxBlockedDot(backend, packing);
  }

  /**
   * Inner products of every training row with every test row, float32 GEMM (onnxruntime MLAS on
   * the CPU), streamed over blocks of training rows (see {@link GemmPacking} for which operand is packed).
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
    let session: OrtSession;
    if (this.packing === 'block') {
      this.blockSession ??= this.backend.createSession(blockGemmModel('block', test, 'n_test', 'dim'));
      session = await this.blockSession;
    } else {
      session = await this.backend.createSession(blockGemmModel('test', test, nTest, dim));
    }
    try {
      const scratch = new Float32Array(Math.min(blockRows, train.rows) * dim);
      const transposed = new Float32Array(this.packing === 'block' ? Math.min(blockRows, train.rows) * nTest : 0);
      const testTensor = new Tensor('float32', test, [nTest, dim]);
      for (let start = 0; start < train.rows; start += blockRows) {
        const count = Math.min(blockRows, train.rows - start);
        const block = await train.read(start, count, scratch);
        if (block.length !== count * dim) throw new DdaError(`blocked dot: source returned ${block.length} values for ${count} rows of ${dim}`, 'return count × dim values per block');
        const blockTensor = new Tensor('float32', block, [count, dim]);
        let values: Float32Array; // [count × nTest]
        if (this.packing === 'test') {
          values = (await session.run({ train_block: blockTensor })).scores?.data as Float32Array;
        } else {
          const yt = (await session.run({ test: testTensor, train_block: blockTensor })).scores_t?.data as Float32Array; // [nTest × count]
          values = transposed.subarray(0, count * nTest);
          for (let j = 0; j < nTest; j++) for (let k = 0; k < count; k++) values[k * nTest + j] = yt[j * count + k] as number;
        }
        if (options.sink) await options.sink(start, count, values);
        else out.set(values, start * nTest);
      }
    } finally {
      if (this.packing === 'test') await session.release();
    }
    return out;
  }

  /** Releases the `block` layout's session (a `test` session is released by the call that made it). */
  async release(): Promise<void> {
    const s = this.blockSession;
    this.blockSession = undefined;
    if (s) await (await s).release();
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

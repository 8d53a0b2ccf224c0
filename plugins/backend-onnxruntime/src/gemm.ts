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
   * row `start + k` against test row j (float32 accumulation, see {@link OnnxBlockedDot.scores}
   * for the range). With a sink, `scores` returns an empty array and memory does not grow with nTrain.
   */
  readonly sink?: (start: number, count: number, values: Float64Array) => void | Promise<void>;
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

/**
 * Float32 GEMM results that may be wrong because a float32 product or partial sum left the float32
 * range: a non-finite value (an overflow: once infinite, a sum stays so), or one below
 * {@link UNDERFLOW_SUSPECT} in magnitude, zero included (products under 2^-126 are subnormal or
 * flushed to zero, which can only matter when the whole result is that small: their total is at
 * most dim · 2^-126, under 2^-24 of any result at or above the threshold for dim < 2^41).
 */
const UNDERFLOW_SUSPECT = 2 ** -60;

function outOfFloat32Range(values: Float32Array): boolean {
  for (let k = 0; k < values.length; k++) {
    const v = values[k] as number;
    if (!(Math.abs(v) >= UNDERFLOW_SUSPECT && v - v === 0)) return true;
  }
  return false;
}

/**
 * Scales every row of `rows` (row-major, `n` rows of `dim`) by an exact power of two so its largest
 * entry lies in [0.5, 1), written to `out`; returns each row's exponent e (row = scaled row · 2^e;
 * 0 for an all-zero row). A power-of-two factor changes no significand, so the only rounding is of
 * entries more than 2^126 below their row's largest, which underflow (their products are below
 * float32 rounding of the row's largest products).
 */
export function scaleRowsByPowersOfTwo(rows: Float32Array, n: number, dim: number, out: Float32Array): Float64Array {
  const exponents = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const at = i * dim;
    let max = 0;
    for (let d = 0; d < dim; d++) max = Math.max(max, Math.abs(rows[at + d] as number));
    const e = max === 0 ? 0 : Math.floor(Math.log2(max)) + 1;
    exponents[i] = e;
    const f = 2 ** -e; // e in [-148, 129]: 2^-e is a float64
    for (let d = 0; d < dim; d++) out[at + d] = (rows[at + d] as number) * f;
  }
  return exponents;
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
   * Finite for any finite rows: a block whose float32 results overflowed or may have underflowed
   * (see {@link outOfFloat32Range}) is computed again with every training and test row scaled by
   * an exact power of two to a largest entry in [0.5, 1), and the scale undone in float64 (so a
   * result up to dim · 2^256 comes back exact to float32 rounding of the scaled products).
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
      const maxRows = Math.min(blockRows, train.rows);
      const scratch = new Float32Array(maxRows * dim);
      const transposed = new Float32Array(maxRows * nTest);
      const testTensor = new Tensor('float32', test, [nTest, dim]);
      /** Y = block · testᵀ [count × nTest] on `s` (a `block`-layout session when `test` is given). */
      const gemm = async (s: OrtSession, block: Float32Array, count: number, testT: typeof testTensor | null): Promise<Float32Array> => {
        const blockTensor = new Tensor('float32', block, [count, dim]);
        if (testT === null) return (await s.run({ train_block: blockTensor })).scores?.data as Float32Array;
        const yt = (await s.run({ test: testT, train_block: blockTensor })).scores_t?.data as Float32Array; // [nTest × count]
        const values = transposed.subarray(0, count * nTest);
        for (let j = 0; j < nTest; j++) for (let k = 0; k < count; k++) values[k * nTest + j] = yt[j * count + k] as number;
        return values;
      };
      // The power-of-two scaled test rows and the scaled block's buffer, made on the first block that needs them.
      let scaled: { test: typeof testTensor; exponents: Float64Array; block: Float32Array; session: OrtSession } | undefined;
      const blockValues = new Float64Array(options.sink ? maxRows * nTest : 0);
      for (let start = 0; start < train.rows; start += blockRows) {
        const count = Math.min(blockRows, train.rows - start);
        const block = await train.read(start, count, scratch);
        if (block.length !== count * dim) throw new DdaError(`blocked dot: source returned ${block.length} values for ${count} rows of ${dim}`, 'return count × dim values per block');
        const values = await gemm(session, block, count, this.packing === 'test' ? null : testTensor);
        const target = options.sink ? blockValues.subarray(0, count * nTest) : out.subarray(start * nTest, (start + count) * nTest);
        if (!outOfFloat32Range(values)) {
          target.set(values);
        } else {
          if (scaled === undefined) {
            const t = new Float32Array(test.length);
            const exponents = scaleRowsByPowersOfTwo(test, nTest, dim, t);
            this.blockSession ??= this.backend.createSession(blockGemmModel('block', test, 'n_test', 'dim'));
            scaled = { test: new Tensor('float32', t, [nTest, dim]), exponents, block: new Float32Array(maxRows * dim), session: await this.blockSession };
          }
          const b = scaled.block.subarray(0, count * dim);
          const rowExponents = scaleRowsByPowersOfTwo(block, count, dim, b);
          const v = await gemm(scaled.session, b, count, scaled.test);
          for (let k = 0; k < count; k++) {
            for (let j = 0; j < nTest; j++) {
              // Two factors: 2^(e_k + e_j) alone may leave the float64 range of a power of two.
              target[k * nTest + j] = (v[k * nTest + j] as number) * 2 ** (rowExponents[k] as number) * 2 ** (scaled.exponents[j] as number);
            }
          }
        }
        if (options.sink) await options.sink(start, count, target);
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

/** The half-float scan: Cast(float16 → float32) of a block of rows, test · blockᵀ and each row's sum of squares; every size symbolic. */
function halfDotModel(): OnnxModel {
  return {
    graph: {
      name: 'half-dot',
      nodes: [
        { opType: 'Cast', inputs: ['rows_f16'], outputs: ['rows_f32'], attributes: { to: attr.int(ONNX_TYPE.float) } },
        { opType: 'Gemm', inputs: ['test', 'rows_f32'], outputs: ['scores_t'], attributes: { transB: attr.int(1) } },
        { opType: 'ReduceSumSquare', inputs: ['rows_f32'], outputs: ['sum_squares'], attributes: { axes: attr.ints([1]), keepdims: attr.int(0) } },
      ],
      inputs: [{ name: 'test', elemType: ONNX_TYPE.float, shape: ['n_test', 'dim'] }, { name: 'rows_f16', elemType: ONNX_TYPE.float16, shape: ['rows', 'dim'] }],
      outputs: [{ name: 'scores_t', elemType: ONNX_TYPE.float, shape: ['n_test', 'rows'] }, { name: 'sum_squares', elemType: ONNX_TYPE.float, shape: ['rows'] }],
    },
  };
}

/**
 * Products of rows stored as float16 bit patterns with float32 test rows on onnxruntime: the rows
 * are widened by onnxruntime's Cast (exact: every half float is a float32), multiplied by one Gemm
 * (float32 accumulation, MLAS on the CPU) and their squares summed, so a scan of an index file
 * never widens it in JavaScript. One session serves every size.
 */
export class OnnxHalfDot {
  private session: Promise<OrtSession> | undefined;

  constructor(readonly backend: OnnxRuntimeBackend) {}

  /**
   * @param bits - rows × dim float16 bit patterns (little-endian IEEE half), row-major.
   * @param test - nTest × dim float32, row-major.
   * @returns `scoresT` [nTest × rows] (scoresT[j·rows + i] = row i · test j) and `sumSquares` [rows].
   * @throws DdaError when the sizes disagree.
   */
  async scores(bits: Uint16Array, rows: number, dim: number, test: Float32Array, nTest: number): Promise<{ scoresT: Float32Array; sumSquares: Float32Array }> {
    if (bits.length !== rows * dim || test.length !== nTest * dim || rows < 1 || nTest < 1) {
      throw new DdaError(`half dot: ${bits.length} row values for ${rows} × ${dim} and ${test.length} test values for ${nTest} × ${dim}`, 'pass rows × dim half floats and nTest × dim test values');
    }
    this.session ??= this.backend.createSession(halfDotModel());
    const s = await this.session;
    const { Tensor } = this.backend.ort;
    const out = await s.run({ test: new Tensor('float32', test, [nTest, dim]), rows_f16: new Tensor('float16', bits, [rows, dim]) });
    return { scoresT: out.scores_t?.data as Float32Array, sumSquares: out.sum_squares?.data as Float32Array };
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await (await s).release();
  }
}

/** C = A · Bᵀ in float64, every size symbolic. */
function float64DotModel(): OnnxModel {
  return {
    graph: {
      name: 'float64-dot',
      nodes: [{ opType: 'Gemm', inputs: ['a', 'b'], outputs: ['c'], attributes: { transB: attr.int(1) } }],
      inputs: [{ name: 'a', elemType: ONNX_TYPE.double, shape: ['n_a', 'dim'] }, { name: 'b', elemType: ONNX_TYPE.double, shape: ['n_b', 'dim'] }],
      outputs: [{ name: 'c', elemType: ONNX_TYPE.double, shape: ['n_a', 'n_b'] }],
    },
  };
}

/**
 * Products of float64 rows with float64 accumulation on onnxruntime (its CPU provider's double
 * Gemm, Eigen; about 20× the float64 JavaScript loop on a 240 × 19,520 Gram matrix here). One session
 * serves every size. Used by the influence scorers where float32 accumulation is not accurate
 * enough (Gram matrices before a Cholesky solve, LiSSA's recursion, EK-FAC's eigenbasis rotations).
 */
export class OnnxFloat64Dot {
  private session: Promise<OrtSession> | undefined;

  constructor(readonly backend: OnnxRuntimeBackend) {}

  /**
   * @param a - [nA × dim] row-major. @param b - [nB × dim] row-major.
   * @returns `c[i·nB + j] = a_i · b_j`, [nA × nB] row-major, float64.
   * @throws DdaError when the sizes disagree.
   */
  async products(a: Float64Array, nA: number, b: Float64Array, nB: number, dim: number): Promise<Float64Array> {
    if (a.length !== nA * dim || b.length !== nB * dim || nA < 1 || nB < 1 || dim < 1) {
      throw new DdaError(`float64 dot: ${a.length} values for ${nA} × ${dim} and ${b.length} for ${nB} × ${dim}`, 'pass nA × dim and nB × dim row-major values');
    }
    this.session ??= this.backend.createSession(float64DotModel());
    const s = await this.session;
    const { Tensor } = this.backend.ort;
    const out = await s.run({ a: new Tensor('float64', a, [nA, dim]), b: new Tensor('float64', b, [nB, dim]) });
    return out.c?.data as Float64Array;
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
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

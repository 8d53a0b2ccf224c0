/**
 * The scan of a gradient index for each query's top k (`dda index query`): every row of
 * `gradients.f16` scored against every query, the k best kept, memory flat in the number of rows.
 *
 * Two ways, the same answer:
 * - the float64 loop ({@link rowScores}): each row widened to float32 in JavaScript (exact) and
 *   ⟨row, q⟩ accumulated in float64 (for cosine also ‖row‖), row by row;
 * - on a dot-product kernel that reads half floats (`DotKernel.dotHalf`, onnxruntime's Cast + Gemm):
 *   a block of rows is handed over as the file's float16 bits, widened and multiplied by all the
 *   queries at once (float32 accumulation), with each row's sum of squares. A float32 score s₃₂
 *   differs from the float64 loop's s₆₄ by at most B = c·‖row‖·‖q‖ + A, c = 1.01·((k+2)·2⁻²⁴ + k·2⁻⁵³)
 *   (a float32 sum of k products, any order, and the query rounded to float32; the float64 loop's
 *   own rounding), A = 1.01·k·65,506·2⁻¹²⁶ (products and inputs flushed to zero, where a kernel
 *   does so), ‖row‖ bounded from the float32 sum of squares (for cosine, B over the norms plus the
 *   norm's own relative error). Per query a heap holds the k largest of the lower bounds s₃₂ − B
 *   (the float64 score where it was computed), L its smallest; a row whose upper bound s₃₂ + B is
 *   below L cannot be in the top k (its float64 score is below L, and L is at most the k-th largest
 *   float64 score); every other row (and one with a non-finite float32 result) is scored again by
 *   the float64 loop and enters the top k by that score. So the top k, their scores and the order
 *   of ties (earlier row first) are the float64 loop's, bit for bit
 *   (`packages/attribution/test/index-scan.test.ts`); only a few rows per query are widened in
 *   JavaScript.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { DdaError, dotKernels, trackProgress, type DotKernel, type ProgressSink } from '@dda/core';
import { widenToFloat32 } from '@dda/model';
import { checkRowsUnchanged } from './index-integrity.js';
import { TopCandidates } from './top-candidates.js';

/** One row of a query's top list: row index and score. */
export interface TopRow {
  i: number;
  s: number;
}

/** Options of {@link scanIndexTop}. */
export interface IndexScanOptions {
  /** `gradients.f16`: float16, little-endian, row-major [count × dim]. */
  readonly rowsPath: string;
  /** The index header whose checked state the file must still have after the scan ({@link checkRowsUnchanged}); none: not compared. */
  readonly header?: object;
  readonly count: number;
  readonly dim: number;
  /** The queries' projected gradients, each of length dim. */
  readonly queryRows: readonly Float64Array[];
  /** Cosine instead of inner product (0 for a zero row or query). */
  readonly normalize: boolean;
  readonly topK: number;
  /** Rows per read of the file (memory: chunkRows × dim × 2 bytes, and the kernel's float32 copy). */
  readonly chunkRows: number;
  /** `auto` (a kernel that reads half floats, else the float64 loop) or `js` (the float64 loop). */
  readonly engine?: 'auto' | 'js';
  readonly progress?: ProgressSink;
  /** The progress bar's label. */
  readonly label: string;
  readonly log?: (line: string) => void;
  /** Called with a row whose float64 score (or norm) is not finite: must throw. */
  readonly refuse: (i: number, row: Float32Array, score: number) => never;
}

/** What {@link scanIndexTop} returns. */
export interface IndexScanResult {
  /** Per query, the top rows, highest score first (ties: earlier row first). */
  readonly best: TopRow[][];
  /** How the rows were scored, for the log. */
  readonly how: string;
  /** Row × query scores computed by the float64 loop (all of them without a kernel). */
  readonly rescored: number;
  readonly seconds: number;
  /** CPU seconds of the process meanwhile (every thread: onnxruntime's too), user + system. */
  readonly cpuSeconds: number;
}

/** Keeps the `k` highest (score, then earlier row) in `top`, sorted. */
export function insertTop(top: TopRow[], i: number, s: number, k: number): void {
  if (top.length === k && !(s > (top[k - 1] as TopRow).s)) return;
  let at = top.length;
  while (at > 0 && s > (top[at - 1] as TopRow).s) at--;
  top.splice(at, 0, { i, s });
  if (top.length > k) top.pop();
}

/** ‖q‖ of each query, float64. */
export const queryNorms = (queryRows: readonly Float64Array[]): number[] => queryRows.map((q) => Math.sqrt(q.reduce((a, x) => a + x * x, 0)));

/**
 * The float64 loop's scores of one row (`rows[base .. base + dim)`, float32 values) against every
 * query: ⟨row, q_j⟩ accumulated in float64, or with `normalize` the cosine (clamped to [-1, 1]; 0
 * for a zero row or query), handed to `visit(j, score)`.
 *
 * @throws via `refuse` for a non-finite inner product or norm.
 */
export function rowScores(
  rows: Float32Array, base: number, dim: number, i: number, queryRows: readonly Float64Array[], qNorms: readonly number[], normalize: boolean,
  refuse: IndexScanOptions['refuse'], visit: (j: number, s: number) => void,
): void {
  let norm = 0;
  if (normalize) {
    for (let x = 0; x < dim; x++) norm += (rows[base + x] as number) ** 2;
    norm = Math.sqrt(norm);
  }
  for (let j = 0; j < queryRows.length; j++) {
    const q = queryRows[j] as Float64Array;
    let dot = 0;
    for (let x = 0; x < dim; x++) dot += (rows[base + x] as number) * (q[x] as number);
    if (!Number.isFinite(dot) || !Number.isFinite(norm)) refuse(i, rows.subarray(base, base + dim), dot);
    const denom = norm * (qNorms[j] as number);
    visit(j, normalize ? (denom > 0 ? Math.max(-1, Math.min(1, dot / denom)) : 0) : dot);
  }
}

/** Reads rows [start, start + count) of an index's float16 file (open as `fd`) into `into` (count × dim × 2 bytes). @throws DdaError when the file ends early. */
export function readRowBytes(fd: number, path: string, dim: number, start: number, count: number, into: Uint8Array): Uint8Array {
  const bytes = into.subarray(0, count * dim * 2);
  let done = 0;
  while (done < bytes.length) {
    const r = readSync(fd, bytes, done, bytes.length - done, start * dim * 2 + done);
    if (r === 0) throw new DdaError(`${path}: ended early`, 'build the index again');
    done += r;
  }
  return bytes;
}

/** A registered dot-product kernel that reads half floats, or the reason there is none. */
export async function halfFloatKernel(): Promise<DotKernel | string> {
  if (dotKernels.ids().length === 0) return 'no dot-product kernel is registered';
  try {
    const k = (await dotKernels.resolve({})).value;
    return k.dotHalf ? k : `the ${k.id} kernel reads no half floats`;
  } catch {
    return dotKernels.lastFailures.map((f) => `${f.id}: ${f.reason}`).join('; ') || 'no dot-product kernel started';
  }
}

const U32 = 2 ** -24;
const U64 = 2 ** -53;

/**
 * Each query's top `topK` rows of an index file (see the module doc: on a half-float kernel with
 * the float64 loop's scores for the rows that can reach the top k, or the float64 loop for every
 * row), in chunks of `chunkRows` rows.
 *
 * @throws DdaError when the file ends early or changed after its check against index.json ({@link checkRowsUnchanged}); via `refuse` for a non-finite score.
 */
export async function scanIndexTop(o: IndexScanOptions): Promise<IndexScanResult> {
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const cpu = (): number => {
    const c = process.cpuUsage(cpu0);
    return (c.user + c.system) / 1e6;
  };
  const { dim, count, queryRows, normalize, topK } = o;
  const nq = queryRows.length;
  const qNorms = queryNorms(queryRows);
  const best: TopRow[][] = queryRows.map(() => []);
  const kernel = o.engine === 'js' || count === 0 || nq === 0 ? 'the float64 loop was asked for' : await halfFloatKernel();
  const fd = openSync(o.rowsPath, 'r');
  const chunk = Math.max(1, Math.min(o.chunkRows, count));
  const buf = new Uint8Array(new ArrayBuffer(chunk * dim * 2));
  const bar = trackProgress(o.label, count, o.progress);
  let rescored = 0;
  try {
    if (typeof kernel === 'string') {
      for (let start = 0; start < count; start += chunk) {
        const n = Math.min(chunk, count - start);
        const rows = widenToFloat32(readRowBytes(fd, o.rowsPath, dim, start, n, buf), 'F16');
        for (let r = 0; r < n; r++) rowScores(rows, r * dim, dim, start + r, queryRows, qNorms, normalize, o.refuse, (j, s) => insertTop(best[j] as TopRow[], start + r, s, topK));
        bar.tick(n);
      }
      checkRowsUnchanged(o.header, o.rowsPath, fd);
      return { best, how: `float64 JavaScript loop${o.engine === 'js' ? '' : ` (${kernel})`}`, rescored: count * nq, seconds: (Date.now() - t0) / 1000, cpuSeconds: cpu() };
    }
    const test = new Float32Array(nq * dim);
    queryRows.forEach((q, j) => test.set(q, j * dim));
    const c = 1.01 * ((dim + 2) * U32 + dim * U64);
    const under = 1.01 * dim * 65506 * 2 ** -126;
    const gamma = 1.01 * (dim + 1) * U32; // relative error of a float32 sum of dim squares
    const floors = queryRows.map(() => new TopCandidates(topK));
    const one = new Float32Array(0);
    for (let start = 0; start < count; start += chunk) {
      const n = Math.min(chunk, count - start);
      const bytes = readRowBytes(fd, o.rowsPath, dim, start, n, buf);
      const { scoresT, sumSquares } = await (kernel.dotHalf as NonNullable<DotKernel['dotHalf']>)(new Uint16Array(bytes.buffer, bytes.byteOffset, n * dim), n, dim, test, nq);
      for (let r = 0; r < n; r++) {
        const i = start + r;
        const ss = sumSquares[r] as number;
        const rowNorm = Math.sqrt(ss / (1 - gamma)); // at least ‖row‖
        let row: Float32Array = one;
        for (let j = 0; j < nq; j++) {
          const s = scoresT[j * n + r] as number;
          const qn = qNorms[j] as number;
          let lo: number;
          let hi: number;
          if (!Number.isFinite(s) || !Number.isFinite(ss)) {
            lo = -Infinity;
            hi = Infinity;
          } else if (!normalize) {
            const b = c * rowNorm * qn + under;
            lo = s - b;
            hi = s + b;
          } else if (ss === 0 || qn === 0) {
            lo = 0; // a zero row (every square of a nonzero half float is a normal float32) or query: 0 exactly
            hi = 0;
          } else {
            const d = Math.sqrt(ss) * qn;
            const b = (c * rowNorm * qn + under) / d + 1.01 * gamma + 1e-12;
            lo = Math.max(-1, Math.min(1, s / d - b));
            hi = Math.max(-1, Math.min(1, s / d + b));
          }
          const floor = floors[j] as TopCandidates;
          if (hi < floor.floor) {
            floor.push(lo, i);
            continue;
          }
          if (row === one) row = widenToFloat32(bytes.subarray(r * dim * 2, (r + 1) * dim * 2), 'F16');
          rescored++;
          rowScoresOne(row, i, queryRows, qNorms, normalize, o.refuse, j, (exact) => {
            insertTop(best[j] as TopRow[], i, exact, topK);
            floor.push(exact, i);
          });
        }
      }
      bar.tick(n);
    }
    checkRowsUnchanged(o.header, o.rowsPath, fd);
    return { best, how: `${kernel.how} over the float16 rows, the rows that can reach the top ${topK} scored again by the float64 loop`, rescored, seconds: (Date.now() - t0) / 1000, cpuSeconds: cpu() };
  } finally {
    closeSync(fd);
  }
}

/** {@link rowScores} for query j only (the same arithmetic, so the same bits). */
function rowScoresOne(row: Float32Array, i: number, queryRows: readonly Float64Array[], qNorms: readonly number[], normalize: boolean, refuse: IndexScanOptions['refuse'], j: number, visit: (s: number) => void): void {
  rowScores(row, 0, row.length, i, [queryRows[j] as Float64Array], [qNorms[j] as number], normalize, refuse, (_, s) => visit(s));
}

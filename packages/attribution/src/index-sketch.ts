/**
 * The sketch of a gradient index, for approximate top-k queries at interactive speed
 * (`dda index sketch`, then `dda index query --candidates C`). An exact query reads every row of
 * `gradients.f16` (k = 8,192 float16 per row: 16.4 GB at 1,000,000 rows), so its time grows with
 * rows × k. The sketch keeps, per row, s ≪ k coordinates of a second seeded random projection of the
 * row, y_i = T·r_i / √s with T [s × k] of ±1 entries (Rademacher; E[TᵀT]/s = I, so ⟨y_i, T q/√s⟩
 * estimates ⟨r_i, q⟩ with variance (‖r_i‖²‖q‖² + ⟨r_i, q⟩² − 2 Σ_x r_ix² q_x²)/s, Johnson–Lindenstrauss),
 * in float16 as the index. A query then:
 * 1. scores every sketch row with the whole sketch and with each of its two halves apart (the first
 *    s/2 and the last s/2 coordinates: rows of T drawn independently, so two independent sketches of
 *    s/2) and keeps, per query, the C rows with the highest scores by each of the three (inner
 *    product, or cosine with `normalize`, over the row's whole sketch norm): the candidates are
 *    their union, at most 3C;
 * 2. reads only those rows of `gradients.f16` and scores them exactly as `dda index query` does
 *    (the float64 loop of index-scan.ts), keeping the top k;
 * 3. compares the halves: a row of the top k missing from one half's C best shows that a sketch of
 *    that size misses top-k rows for this query, so the query is flagged (with the count). It is a
 *    signal, not a bound: rows all three rank low alike are not seen.
 * Three checks were tried before and measured on the 1,000,000-row index (BENCHMARKS.md): the sum of
 * Φ(Δ/σ) over the other rows under the sketch's error model estimated 100 to 1,000 times the rows
 * really missed (a row near the k-th by sketch score is far more often a lower row with a favourable
 * error); scoring the next C rows by sketch score and calling the query settled when none entered
 * passed queries that had missed a quarter of their top 100 (similar rows share their sketch error
 * and are missed together, far below the band); and the Chapman capture–recapture estimate from the
 * two halves estimated 0 rows missed for a query that had missed 55 (the rows differ too much in
 * how hard they are to find).
 * Every score it prints is the exact index score of that row, bit for bit, and the ranking among the
 * candidates is exact; what is approximate is the candidate set. With C ≥ the number of rows the
 * result is the exact query's (tested). The recall against the exact top k, and how often the flag
 * of step 3 catches the queries that missed rows, are measured in BENCHMARKS.md.
 *
 * Files, beside the index's: `sketch.f16` (float16, little-endian, row-major [count × s]) and
 * `sketch.json` (the sketch's dimension, seed, the SHA-256 of the index rows it was made from and
 * its own). A sketch of other rows (the index rebuilt since) is refused, and so is a sketch file
 * changed after it was written (its SHA-256, checked as the index's rows are: index-integrity.ts).
 * Sources: candidate generation then exact re-ranking, as FAISS's refine step (IndexRefine);
 * Johnson–Lindenstrauss sketches as TRAK's and LoGra's gradient projections.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError, SeededRandom, trackProgress, type DotKernel, type ProgressSink } from '@dda/core';
import { float32ToF16Bits, widenToFloat32 } from '@dda/model';
import { writeFileAtomic } from './artifacts.js';
import { lockBuildFolder } from './build-lock.js';
import { INDEX_FILES, readIndexHeader, writeAll, type IndexHeader } from './gradient-index.js';
import { checkRowsUnchanged, markVerified, recordCheckedState, verifyIndexRows, type VerifiedFileKind } from './index-integrity.js';
import { halfFloatKernel, insertTop, queryNorms, readRowBytes, rowScores, type IndexScanOptions, type TopRow } from './index-scan.js';
import { moduleSeed } from './projection.js';
import { TopCandidates } from './top-candidates.js';

/** The sketch's files in the index folder. */
export const SKETCH_FILES = { rows: 'sketch.f16', header: 'sketch.json', verified: 'sketch-verified.json', partial: 'sketch.f16.partial' } as const;
export const SKETCH_FORMAT = 'dda-index-sketch-v1';
/**
 * Default sketch dimension s: 256 (512 bytes per row in float16, two halves of 128; k = 8,192 index
 * rows are 16 KB). Measured at 1,000,000 rows (BENCHMARKS.md, "The approximate query"): with
 * C = 5,000 every one of 100 queries found its whole top 100 at s = 256 as at 512, and one query's
 * search took 1.0 s idle against 1.6 s.
 */
export const DEFAULT_SKETCH_DIM = 256;

const SKETCH_KIND: VerifiedFileKind = {
  marker: SKETCH_FILES.verified, header: SKETCH_FILES.header, writer: 'sketch was made',
  remake: 'make the sketch again (dda index sketch --index <folder>)',
};

/** `sketch.json`. */
export interface SketchHeader {
  readonly format: typeof SKETCH_FORMAT;
  /** Sketch dimensions s per row (float16, as the index's rows). */
  readonly dim: number;
  readonly seed: number;
  readonly kind: 'rademacher';
  /** Rows, and the index's dimension k, as the index it was made from. */
  readonly count: number;
  readonly indexDim: number;
  /** SHA-256 of the index's `gradients.f16` it was made from (its index.json's `rowsSha256`). */
  readonly indexRowsSha256: string;
  /** SHA-256 of `sketch.f16` as written. */
  readonly rowsSha256: string;
  /** How the products were computed (a dot-product kernel's float32 GEMM, or the float64 loop). */
  readonly how: string;
  readonly read: string;
  readonly what: string;
}

/** T, row-major [s × k] of ±1 (unscaled), drawn row by row from SeededRandom(moduleSeed(seed, 'index-sketch')) (next() < 0.5 → +1). */
export function sketchMatrix(s: number, k: number, seed: number): Float32Array {
  const rng = new SeededRandom(moduleSeed(seed, 'index-sketch'));
  const t = new Float32Array(s * k);
  for (let i = 0; i < t.length; i++) t[i] = rng.next() < 0.5 ? 1 : -1;
  return t;
}

/** T·v/√s of a k-vector, float64. */
export function sketchOf(t: Float32Array, s: number, v: ArrayLike<number>): Float64Array {
  const k = v.length;
  const out = new Float64Array(s);
  const scale = 1 / Math.sqrt(s);
  for (let a = 0; a < s; a++) {
    let acc = 0;
    const base = a * k;
    for (let x = 0; x < k; x++) acc += (t[base + x] as number) * (v[x] as number);
    out[a] = acc * scale;
  }
  return out;
}

/** Options of {@link buildIndexSketch}. */
export interface IndexSketchOptions {
  readonly index: string;
  /** Sketch dimensions s (default {@link DEFAULT_SKETCH_DIM}). */
  readonly dim?: number;
  readonly seed?: number;
  /** Index rows per read (default 4096: 64 MB of float16 at k = 8,192). */
  readonly chunkRows?: number;
  /** `auto` (a dot-product kernel that reads half floats, else the float64 loop) or `js` (the float64 loop). */
  readonly engine?: 'auto' | 'js';
  readonly log?: (line: string) => void;
  readonly progress?: ProgressSink;
}

/** The numpy line that reads a sketch of n rows × s. */
export const sketchReadLine = (n: number, s: number): string =>
  `np.memmap("${SKETCH_FILES.rows}", dtype=np.float16, mode="r", shape=(${n}, ${s}))  # row i: the sketch of index row i; little-endian float16`;

function positiveInteger(v: number, flag: string): number {
  if (!Number.isInteger(v) || v < 1) throw new DdaError(`${flag} must be a positive integer, got ${v}`);
  return v;
}

/**
 * Makes (or finds made) the sketch of the index in `o.index` (see the module doc): every row's
 * T·row/√s in float16, read in chunks, written to `sketch.f16` then `sketch.json`. Holds the
 * folder's build lock meanwhile (no build or merge writes the index during it). The same command on
 * a folder whose sketch matches does nothing; another dim or seed replaces it.
 *
 * @throws DdaError when the index is unfinished, changed, of an earlier version (no rows hash), when
 *   another build holds the folder, or for a dim or seed that is not a positive / whole number.
 */
export async function buildIndexSketch(o: IndexSketchOptions): Promise<SketchHeader> {
  const log = o.log ?? (() => {});
  const s = positiveInteger(o.dim ?? DEFAULT_SKETCH_DIM, '--dim');
  if (s % 2 !== 0) throw new DdaError(`--dim must be even, got ${s}`, 'a query uses the sketch as two independent halves (see dda index query --candidates): give e.g. 256');
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed)) throw new DdaError(`--seed must be an integer, got ${seed}`);
  const chunk = positiveInteger(o.chunkRows ?? 4096, '--chunk-rows');
  const release = lockBuildFolder(o.index, log);
  try {
    const h = readIndexHeader(o.index, log);
    if (h.rowsSha256 === undefined) throw new DdaError(`${join(o.index, INDEX_FILES.header)}: an index of an earlier version records no hash of its rows, so a sketch could not be tied to them`, 'build the index again with this version');
    if (s >= h.dim) log(`note: a sketch of ${s} dimensions is not smaller than the index's ${h.dim}: a query reads more with it than without`);
    const headerPath = join(o.index, SKETCH_FILES.header);
    const rowsPath = join(o.index, SKETCH_FILES.rows);
    if (existsSync(headerPath)) {
      const old = readSketchJson(headerPath);
      if (old.dim === s && old.seed === seed && old.indexRowsSha256 === h.rowsSha256 && old.count === h.count) {
        try {
          checkSketchFile(o.index, old, log);
          log(`sketch: ${o.index} has this sketch already (${s} dimensions, seed ${seed}, of these rows)`);
          return old;
        } catch (e) {
          log(`sketch: the sketch in ${o.index} is not usable (${(e as Error).message}); making it again`);
        }
      }
    }
    rmSync(headerPath, { force: true }); // a stale header never describes the new file
    rmSync(join(o.index, SKETCH_FILES.verified), { force: true });
    const t = sketchMatrix(s, h.dim, seed);
    const kernel = o.engine === 'js' ? 'the float64 loop was asked for' : await halfFloatKernel();
    const how = typeof kernel === 'string' ? `float64 JavaScript loop (${kernel})` : `${kernel.how} over the float16 rows`;
    const partial = join(o.index, SKETCH_FILES.partial);
    const indexRows = join(o.index, INDEX_FILES.rows);
    const fdIn = openSync(indexRows, 'r');
    const fdOut = openSync(partial, 'w');
    const bar = trackProgress(`sketching ${h.count} index rows (${h.dim} → ${s})`, h.count, o.progress);
    const inv = 1 / Math.sqrt(s);
    const n0 = Math.max(1, Math.min(chunk, h.count));
    const buf = new Uint8Array(n0 * h.dim * 2);
    const hash = createHash('sha256'); // of the file as written: its chunks go out in order
    try {
      for (let start = 0; start < h.count; start += n0) {
        const n = Math.min(n0, h.count - start);
        const bytes = readRowBytes(fdIn, indexRows, h.dim, start, n, buf);
        const out = new Uint16Array(n * s);
        const put = (r: number, a: number, v: number): void => {
          const bits = float32ToF16Bits(v);
          if ((bits & 0x7c00) === 0x7c00) throw new DdaError(`row ${start + r} (training sample '${h.trainIds[start + r]}') of ${indexRows}: its sketch coordinate ${a} is ${v}, beyond float16`, 'a sketch needs rows whose projections fit float16 (as the index\'s own rows): build the index again, or query it exactly');
          out[r * s + a] = bits;
        };
        if (typeof kernel === 'string') {
          const rows = widenToFloat32(bytes, 'F16');
          for (let r = 0; r < n; r++) sketchOf(t, s, rows.subarray(r * h.dim, (r + 1) * h.dim)).forEach((v, a) => put(r, a, v));
        } else {
          const { scoresT } = await (kernel.dotHalf as NonNullable<DotKernel['dotHalf']>)(new Uint16Array(bytes.buffer, bytes.byteOffset, n * h.dim), n, h.dim, t, s);
          for (let r = 0; r < n; r++) for (let a = 0; a < s; a++) put(r, a, (scoresT[a * n + r] as number) * inv);
        }
        const written = new Uint8Array(out.buffer);
        writeAll(fdOut, written, start * s * 2);
        hash.update(written);
        bar.tick(n);
      }
      checkRowsUnchanged(h, indexRows, fdIn);
    } finally {
      closeSync(fdIn);
      closeSync(fdOut);
    }
    const sha = hash.digest('hex');
    renameSync(partial, rowsPath);
    const header: SketchHeader = {
      format: SKETCH_FORMAT, dim: s, seed, kind: 'rademacher', count: h.count, indexDim: h.dim, indexRowsSha256: h.rowsSha256, rowsSha256: sha, how,
      read: sketchReadLine(h.count, s),
      what: `row i: T·r_i/√${s} in float16, r_i the index's row i (${h.dim} float16), T [${s} × ${h.dim}] of ±1 regenerated from seed ${seed}; ⟨y_i, T q/√${s}⟩ estimates ⟨r_i, q⟩ (Johnson–Lindenstrauss), used to pick the candidates an approximate query scores exactly (dda index query --candidates)`,
    };
    writeFileAtomic(headerPath, `${JSON.stringify(header, null, 1)}\n`);
    markVerified(o.index, rowsPath, sha, statSync(rowsPath), SKETCH_FILES.verified);
    log(`sketch: ${h.count} rows × ${s} float16 in ${rowsPath} (${how})`);
    return header;
  } finally {
    release();
  }
}

function readSketchJson(path: string): SketchHeader {
  let x: SketchHeader;
  try {
    x = JSON.parse(readFileSync(path, 'utf8')) as SketchHeader;
  } catch (e) {
    throw new DdaError(`cannot read ${path}: ${(e as Error).message}`, SKETCH_KIND.remake);
  }
  if (x.format !== SKETCH_FORMAT) throw new DdaError(`${path}: unknown format '${String(x.format)}'`, `this version reads ${SKETCH_FORMAT}; ${SKETCH_KIND.remake}`);
  return x;
}

/** Checks sketch.f16 of `dir` against its header: size and SHA-256 (with its marker); records the checked state for {@link checkRowsUnchanged}. */
function checkSketchFile(dir: string, sh: SketchHeader, log: (line: string) => void): void {
  const path = join(dir, SKETCH_FILES.rows);
  const size = existsSync(path) ? statSync(path).size : -1;
  if (size !== sh.count * sh.dim * 2) throw new DdaError(`${path}: ${size < 0 ? 'missing' : `${size} bytes`}, expected ${sh.count} rows × ${sh.dim} × 2`, SKETCH_KIND.remake);
  const state = verifyIndexRows(dir, path, sh.rowsSha256, log, SKETCH_KIND);
  if (state) recordCheckedState(sh, state);
}

/**
 * The sketch of the index in `dir` (header `h`, read by readIndexHeader), checked: made from these
 * rows (the index's SHA-256), of the index's count and k, its file as written.
 *
 * @throws DdaError when there is none (naming the command that makes it), it was made from other
 *   rows (the index rebuilt since), or its file is not the one written.
 */
export function readIndexSketch(dir: string, h: IndexHeader, log: (line: string) => void = () => {}): SketchHeader {
  const headerPath = join(dir, SKETCH_FILES.header);
  if (!existsSync(headerPath)) throw new DdaError(`${dir}: no sketch (${SKETCH_FILES.header}); an approximate query (--candidates) scans the sketch`, `make it once with: dda index sketch --index ${dir}   (or drop --candidates for the exact query)`);
  const sh = readSketchJson(headerPath);
  if (h.rowsSha256 === undefined || sh.indexRowsSha256 !== h.rowsSha256 || sh.count !== h.count || sh.indexDim !== h.dim) {
    throw new DdaError(`${headerPath} was made from other index rows than ${join(dir, INDEX_FILES.rows)} now holds (${sh.count} × ${sh.indexDim}, rows SHA-256 ${String(sh.indexRowsSha256).slice(0, 16)}…; the index: ${h.count} × ${h.dim}, ${String(h.rowsSha256).slice(0, 16)}…): the index was built again since`, SKETCH_KIND.remake);
  }
  checkSketchFile(dir, sh, log);
  return sh;
}

/** @throws DdaError unless `candidates` (rows per query scored exactly) is an integer of at least `topK`. */
export function checkCandidates(candidates: number, topK: number): void {
  if (!Number.isInteger(candidates) || candidates < topK) throw new DdaError(`--candidates must be an integer of at least --top-k (${topK}), got ${candidates}`, 'give the rows per query to score exactly, e.g. --candidates 10000');
}

/** Options of {@link approximateIndexTop}: those of the exact scan, with the sketch and the number of candidates. */
export interface ApproximateScanOptions extends Omit<IndexScanOptions, 'rowsPath' | 'header' | 'count' | 'dim'> {
  readonly index: string;
  readonly header: IndexHeader;
  readonly sketch: SketchHeader;
  /** Rows per query scored exactly: the C best by sketch score (at least topK). */
  readonly candidates: number;
}

/** What {@link approximateIndexTop} returns. */
export interface ApproximateScanResult {
  /** Per query, the top rows among its candidates by exact index score, highest first (ties: earlier row first). */
  readonly best: TopRow[][];
  /**
   * Per query, step 3 (module doc): the rows it scored exactly (the union of the candidates), and
   * how many rows of its top k were missing from the first half's C best and from the second's
   * (0 and 0: the halves agree; a query with either above 0 is flagged).
   */
  readonly checks: { readonly scored: number; readonly missedByFirst: number; readonly missedBySecond: number }[];
  /** Distinct index rows read (the union of the queries' scored rows). */
  readonly rowsRead: number;
  /** Seconds of the sketch scan (step 1) and of the exact scores (step 2). */
  readonly sketchSeconds: number;
  readonly exactSeconds: number;
  /** CPU seconds of the process meanwhile (every thread), user + system. */
  readonly cpuSeconds: number;
  readonly how: string;
}

/** The sketch's scores of rows [start, start + n) against the sketched queries: [nq × n] (query-major), and each row's squared norm. */
type SketchChunk = (bytes: Uint8Array, n: number) => Promise<{ readonly scoresT: ArrayLike<number>; readonly sumSquares: ArrayLike<number> }>;

/** Scans `sketchPath` in chunks of `chunk` rows, handing each chunk's scores to `visit`. @throws DdaError when the file changed after its check. */
async function scanSketch(sketchPath: string, sh: SketchHeader, chunk: number, score: SketchChunk, visit: (start: number, n: number, scoresT: ArrayLike<number>, sumSquares: ArrayLike<number>) => void, tick: (n: number) => void): Promise<void> {
  const fd = openSync(sketchPath, 'r');
  try {
    const buf = new Uint8Array(chunk * sh.dim * 2);
    for (let start = 0; start < sh.count; start += chunk) {
      const n = Math.min(chunk, sh.count - start);
      const bytes = readRowBytes(fd, sketchPath, sh.dim, start, n, buf);
      const { scoresT, sumSquares } = await score(bytes, n);
      visit(start, n, scoresT, sumSquares);
      tick(n);
    }
    checkRowsUnchanged(sh, sketchPath, fd);
  } finally {
    closeSync(fd);
  }
}

/** ⟨y, q⟩ in float64. */
const sketchDot = (y: ArrayLike<number>, q: ArrayLike<number>): number => {
  let d = 0;
  for (let a = 0; a < y.length; a++) d += (y[a] as number) * (q[a] as number);
  return d;
};

/** The float64 loop's products of n sketch rows (float32 values) with m rows of `other` [m × s]: scoresT [m × n] and each row's squared norm. */
function float64SketchProducts(rows: Float32Array, n: number, s: number, other: Float32Array, m: number): { scoresT: Float64Array; sumSquares: Float64Array } {
  const scoresT = new Float64Array(m * n);
  const sumSquares = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const y = rows.subarray(r * s, (r + 1) * s);
    sumSquares[r] = sketchDot(y, y);
    for (let j = 0; j < m; j++) scoresT[j * n + r] = sketchDot(y, other.subarray(j * s, (j + 1) * s));
  }
  return { scoresT, sumSquares };
}

/** Reads the rows `sorted` (ascending) of an index file open as `fd`, runs of consecutive rows at once, calling `each(rows, base, i)` with row i at `rows[base..]`; returns how many were read. */
function scoreRowsExactly(path: string, fd: number, dim: number, sorted: readonly number[], each: (rows: Float32Array, base: number, i: number) => void): number {
  const RUN = 256;
  const buf = new Uint8Array(RUN * dim * 2);
  for (let u = 0; u < sorted.length;) {
    let v = u + 1;
    while (v < sorted.length && v - u < RUN && sorted[v] === (sorted[v - 1] as number) + 1) v++;
    const first = sorted[u] as number;
    const rows = widenToFloat32(readRowBytes(fd, path, dim, first, v - u, buf), 'F16');
    for (let x = u; x < v; x++) each(rows, ((sorted[x] as number) - first) * dim, sorted[x] as number);
    u = v;
  }
  return sorted.length;
}

/**
 * Each query's top `topK` rows of an index among the rows with the highest sketch scores, and the
 * halves' comparison (module doc, steps 1–3): the sketch scanned in chunks (a dot-product kernel
 * that reads half floats, or the float64 loop), then the C best rows per query and half, read from
 * `gradients.f16` in ascending order and scored by the exact scan's float64 loop (the same bits as
 * `dda index query` without `--candidates` for every row it returns).
 *
 * @throws DdaError when `candidates` < `topK`, a file changed during the scan, or via `refuse` for a non-finite exact score.
 */
export async function approximateIndexTop(o: ApproximateScanOptions): Promise<ApproximateScanResult> {
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const { header: h, sketch: sh, queryRows, normalize, topK } = o;
  checkCandidates(o.candidates, topK);
  const c = Math.min(o.candidates, h.count);
  const s = sh.dim;
  const nq = queryRows.length;
  if (s % 2 !== 0) throw new DdaError(`${join(o.index, SKETCH_FILES.header)}: a sketch of ${s} dimensions cannot be split into two halves`, SKETCH_KIND.remake);
  const half = s / 2;
  const t = sketchMatrix(s, h.dim, sh.seed);
  const sq = queryRows.map((q) => sketchOf(t, s, q));
  const qNorms = queryNorms(queryRows);
  // The other side of the products: per query its sketch's first half (zeros after) and second half (zeros before).
  const m2 = 2 * nq;
  const other = new Float32Array(m2 * s);
  const halfNorms = sq.map((q) => [0, half].map((from) => Math.sqrt(q.subarray(from, from + half).reduce((x, v) => x + v * v, 0))));
  sq.forEach((q, j) => {
    other.set(q.subarray(0, half), 2 * j * s);
    other.set(q.subarray(half), (2 * j + 1) * s + half);
  });
  const kernel = o.engine === 'js' ? 'the float64 loop was asked for' : await halfFloatKernel();
  const score: SketchChunk = typeof kernel !== 'string'
    ? (bytes, n) => (kernel.dotHalf as NonNullable<DotKernel['dotHalf']>)(new Uint16Array(bytes.buffer, bytes.byteOffset, n * s), n, s, other, m2)
    : async (bytes, n) => float64SketchProducts(widenToFloat32(bytes, 'F16'), n, s, other, m2);
  const how = typeof kernel === 'string' ? `the float64 loop (${kernel})` : kernel.how;
  const sketchPath = join(o.index, SKETCH_FILES.rows);
  const chunk = Math.max(1, Math.min(o.chunkRows, h.count));
  // 1. The whole sketch's and each half's C best rows per query.
  const heaps = queryRows.map(() => [new TopCandidates(c), new TopCandidates(c), new TopCandidates(c)] as const);
  const wholeNorms = sq.map((q) => Math.sqrt(q.reduce((x, v) => x + v * v, 0)));
  await scanSketch(sketchPath, sh, chunk, score, (start, n, scoresT, sumSquares) => {
    for (let j = 0; j < nq; j++) {
      const [whole, first, second] = heaps[j] as readonly [TopCandidates, TopCandidates, TopCandidates];
      const [qa, qb] = halfNorms[j] as number[];
      const qw = wholeNorms[j] as number;
      for (let r = 0; r < n; r++) {
        const da = scoresT[2 * j * n + r] as number;
        const db = scoresT[(2 * j + 1) * n + r] as number;
        const norm = normalize ? Math.sqrt(sumSquares[r] as number) : 1;
        const put = (heap: TopCandidates, dot: number, qn: number): void => {
          let v = dot;
          if (normalize) {
            const d = norm * qn;
            v = d > 0 ? dot / d : 0;
          }
          heap.push(Number.isFinite(v) ? v : Infinity, start + r); // a non-finite one is a candidate, so that its exact score refuses it
        };
        put(whole, da + db, qw as number);
        put(first, da, qa as number);
        put(second, db, qb as number);
      }
    }
  }, trackProgress(`${o.label}: the sketch (${s} dimensions, and its two halves)`, h.count, o.progress).tick);
  const sketchSeconds = (Date.now() - t0) / 1000;
  // 2. The candidates' exact scores: the union over queries and halves, read once in ascending row order.
  const sets = heaps.map(([w, a, b]) => [new Set(w.ranked()), new Set(a.ranked()), new Set(b.ranked())] as const);
  const wanted = new Map<number, number[]>();
  sets.forEach(([w, a, b], j) => {
    for (const i of new Set([...w, ...a, ...b])) {
      const l = wanted.get(i);
      if (l) l.push(j);
      else wanted.set(i, [j]);
    }
  });
  const best: TopRow[][] = queryRows.map(() => []);
  const rowsPath = join(o.index, INDEX_FILES.rows);
  const t1 = Date.now();
  const fdRows = openSync(rowsPath, 'r');
  let rowsRead: number;
  try {
    rowsRead = scoreRowsExactly(rowsPath, fdRows, h.dim, [...wanted.keys()].sort((x, y) => x - y), (rows, base, i) => {
      for (const j of wanted.get(i) as number[]) {
        rowScores(rows, base, h.dim, i, [queryRows[j] as Float64Array], [qNorms[j] as number], normalize, o.refuse, (_, sc) => insertTop(best[j] as TopRow[], i, sc, topK));
      }
    });
    checkRowsUnchanged(h, rowsPath, fdRows);
  } finally {
    closeSync(fdRows);
  }
  // 3. The halves compared.
  const checks = best.map((top, j) => {
    const [w, a, b] = sets[j] as readonly [Set<number>, Set<number>, Set<number>];
    return { scored: new Set([...w, ...a, ...b]).size, missedByFirst: top.filter((x) => !a.has(x.i)).length, missedBySecond: top.filter((x) => !b.has(x.i)).length };
  });
  const cu = process.cpuUsage(cpu0);
  return {
    best, checks, rowsRead, sketchSeconds, exactSeconds: (Date.now() - t1) / 1000, cpuSeconds: (cu.user + cu.system) / 1e6,
    how: `the ${s}-dimension sketch and its two halves scored by ${how}, the ${c} best rows per query by each then scored exactly by the float64 loop`,
  };
}

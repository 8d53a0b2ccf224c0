/**
 * `trak`: TRAK's projected-kernel attribution (Park et al. 2023), at one checkpoint:
 *
 *     φ = Pᵀ g,   score[i][j] = φ_testjᵀ (ΦᵀΦ + λI)⁻¹ φ_traini
 *
 * g are the per-example gradients (training loss for the rows of Φ, test measurement for φ_test),
 * P is a seeded Gaussian random projection (dim × k, entries N(0, 1/k), so E[P Pᵀ] = I and inner
 * products are preserved in expectation), Φ the n × k matrix of projected training gradients.
 * `projectionDim: 0` means no projection (P = I, k = dim): then the score is exactly the kernel
 * g_testᵀ (GᵀG + λI)⁻¹ g_train, i.e. `if-exact` / n for the same relative damping.
 * Not included (our choice): TRAK's Q = diag(1 − p) output-probability weighting and its ensemble
 * over models — the DDA denoiser plays the role of the ensemble over checkpoints.
 *
 * Sign: higher = more responsible (the kernel form of the negative influence, as grad-dot).
 * Units: dimensionless (gradients against their own second moment).
 * Default λ = dampingRatio (0.1) × trace(ΦᵀΦ) / k, the mean eigenvalue of ΦᵀΦ; with it, scores are
 * unchanged when all gradients are multiplied by a common constant.
 *
 * P is generated row by row from one SeededRandom(seed) stream (row p, then its k columns, each
 * `normal() / √k`). The scorer projects on a dot-product kernel of @dda/core's registry (option
 * `engine`, as `grad-dot`'s: `auto` = onnxruntime's float32 GEMM where it starts, with P rounded to
 * float32 and kept whole as Pᵀ [k × dim] while dim × k ≤ {@link MAX_CACHED_PROJECTION}; relative
 * error about 1e-6 against the float64 loop) and otherwise in float64 JavaScript
 * ({@link projectRows}: a chunk of P's rows at a time, so P never exists whole; memory
 * n × k + m × k + a chunk of P). Cost O((n + m) × dim × k) for the projection, then an exact
 * Cholesky solve of size min(n, k).
 */
import { DdaError, FLOAT64_LOOP_HOW, SeededRandom, createScoreMatrix, kernelProducts, type BlockSummaries, type GradientMatrix, type ScoreMatrix } from '@dda/core';
import { checkGradientPair } from '@dda/scorer-grad-dot';
import { DEFAULT_MAX_SYSTEM_SIZE, ridgeKernelScores, type KernelSolver } from '@dda/scorer-influence';

/** Default projection dimension k. */
export const DEFAULT_PROJECTION_DIM = 512;
/** Default relative damping: λ = 0.1 × trace(ΦᵀΦ) / k. */
export const DEFAULT_TRAK_DAMPING_RATIO = 0.1;
/** Rows of P generated at a time. */
const P_CHUNK_ROWS = 64;

/** Options of {@link trakScores} and the `trak` scorer. */
export interface TrakOptions {
  /** k, a non-negative integer (default 512); 0 = no projection (identity, k = dim). */
  readonly projectionDim?: number;
  /** Seed of the projection (integer, default 0). */
  readonly seed?: number;
  /** Absolute λ > 0 (units of ΦᵀΦ); overrides `dampingRatio`. */
  readonly damping?: number;
  /** λ relative to trace(ΦᵀΦ) / k (positive, default 0.1). */
  readonly dampingRatio?: number;
  /** Side of the solve, as in `if-exact` (default `auto`: the smaller of n and k). */
  readonly solver?: KernelSolver;
  /** Largest system to factor (default 8192). */
  readonly maxSystemSize?: number;
  /**
   * Where the scorer projects (not {@link trakScores}, always the float64 loop): `auto` (default:
   * a dot-product kernel of @dda/core's registry by priority, else the float64 loop), `js` (the
   * loop) or a kernel's id (required).
   */
  readonly engine?: string;
  /** Where a fallback from `auto` to the loop is logged (default console.warn), once per process. */
  readonly log?: (line: string) => void;
}

/**
 * Projects rows with P (dim × k, entries N(0, 1/k)) drawn from `SeededRandom(seed)` in row-major
 * order: `φ_r[c] = Σ_p rows_r[p] · P[p][c]`. Every set in `sets` is projected with the same P:
 * `whole` ({@link projectionMatrix} of the same dim, k and seed) when given, else drawn a chunk of
 * rows at a time (the same numbers, so the same result bit for bit).
 *
 * @returns For each set, its projected rows (Float64Array of length k each).
 */
export function projectRows(
  sets: readonly (readonly ArrayLike<number>[])[],
  dim: number,
  k: number,
  seed: number,
  whole?: Float64Array,
): Float64Array[][] {
  if (!Number.isInteger(k) || k < 1) throw new DdaError(`trak: projection dimension must be a positive integer, got ${k}`);
  if (whole && whole.length !== dim * k) throw new DdaError(`trak: a projection of ${whole.length} entries given for ${dim} × ${k}`);
  const rng = new SeededRandom(seed);
  const sd = 1 / Math.sqrt(k);
  const out = sets.map((rows) => rows.map(() => new Float64Array(k)));
  let chunk: Float64Array = new Float64Array(P_CHUNK_ROWS * k);
  for (let p0 = 0; p0 < dim; p0 += P_CHUNK_ROWS) {
    const p1 = Math.min(p0 + P_CHUNK_ROWS, dim);
    if (whole) chunk = whole.subarray(p0 * k, p1 * k);
    else for (let q = 0; q < (p1 - p0) * k; q++) chunk[q] = rng.normal() * sd;
    sets.forEach((rows, s) => {
      const phis = out[s] as Float64Array[];
      rows.forEach((g, r) => {
        const phi = phis[r] as Float64Array;
        for (let p = p0; p < p1; p++) {
          const gp = g[p] as number;
          if (gp === 0) continue;
          const off = (p - p0) * k;
          for (let c = 0; c < k; c++) phi[c] = (phi[c] as number) + gp * (chunk[off + c] as number);
        }
      });
    });
  }
  return out;
}

/** P whole (dim × k float64, row-major): the numbers {@link projectRows} draws, for reuse over many blocks. */
export function projectionMatrix(dim: number, k: number, seed: number): Float64Array {
  const rng = new SeededRandom(seed);
  const sd = 1 / Math.sqrt(k);
  return Float64Array.from({ length: dim * k }, () => rng.normal() * sd);
}

/** Largest P (entries) the streamed `trak` keeps in memory across blocks: 2^25 float64 = 256 MiB (and 128 MiB as float32 Pᵀ for the kernel). */
export const MAX_CACHED_PROJECTION = 2 ** 25;

/** P [dim × k] as float32 Pᵀ [k × dim], row-major: the other side of the kernel's row products. */
function transposedF32(p: Float64Array, dim: number, k: number): Float32Array {
  const t = new Float32Array(dim * k);
  for (let r = 0; r < dim; r++) for (let c = 0; c < k; c++) t[c * dim + r] = p[r * k + c] as number;
  return t;
}

/**
 * P for one dim: drawn once ({@link projectionMatrix}) and its float32 transpose made on first use
 * by the kernel; `undefined` above {@link MAX_CACHED_PROJECTION} entries (then the chunked loop).
 */
class ProjectionCache {
  private entry: { dim: number; p: Float64Array; pt?: Float32Array } | null = null;
  constructor(readonly k: number, readonly seed: number) {}
  whole(dim: number): { p: Float64Array; pt: () => Float32Array } | undefined {
    if (dim * this.k > MAX_CACHED_PROJECTION) return undefined;
    if (this.entry?.dim !== dim) this.entry = { dim, p: projectionMatrix(dim, this.k, this.seed) };
    const e = this.entry;
    return { p: e.p, pt: () => (e.pt ??= transposedF32(e.p, dim, this.k)) };
  }
}

/**
 * φ = Pᵀg of every row, on the dot-product kernel `o.engine` names where P fits the cache (one
 * row product per row and column of P, float32), else by the float64 loop of {@link projectRows}.
 *
 * @returns The projected rows and how they were computed.
 */
async function projectOnEngine(rows: readonly Float32Array[], dim: number, k: number, seed: number, cache: ProjectionCache, o: TrakOptions): Promise<{ rows: Float64Array[]; how: string }> {
  const whole = cache.whole(dim);
  if (whole && o.engine !== 'js' && rows.length > 0) {
    // One row per product: a kernel's result for a row can depend on the other rows of its batch
    // (onnxruntime's MLAS does, in the last bits), and a row must project the same whichever
    // block it is streamed in, so that streamed and stored scores are the same bits.
    const out: Float64Array[] = [];
    let how = '';
    for (const row of rows) {
      const r = await kernelProducts([row], dim, whole.pt(), k, { engine: o.engine ?? 'auto', who: 'trak', ...(o.log ? { log: o.log } : {}) });
      if (!r) break;
      out.push(r.values);
      how = r.how;
    }
    if (out.length === rows.length) return { rows: out, how: `${how} (one row per product, P rounded to float32)` };
  }
  const [phi] = projectRows([rows], dim, k, seed, whole?.p) as [Float64Array[]];
  return { rows: phi, how: FLOAT64_LOOP_HOW };
}

/**
 * TRAK scores as {@link trakScores}, with the projection on the engine of `options.engine` (see
 * the module doc): the `trak` scorer's stored path.
 *
 * @throws DdaError as {@link trakScores}, or when a kernel asked for by id cannot run.
 */
export async function trakScoresOnEngine(train: GradientMatrix, test: GradientMatrix, options: TrakOptions = {}, checkpoint: string = train.checkpoint): Promise<ScoreMatrix> {
  checkGradientPair(train, test, 'trak');
  const { k, seed } = checkOptions(options);
  if (k === 0 || options.engine === 'js') return trakScores(train, test, options, checkpoint);
  const cache = new ProjectionCache(k, seed);
  const phi = await projectOnEngine(train.rows, train.dim, k, seed, cache, options);
  const phiTest = await projectOnEngine(test.rows, test.dim, k, seed, cache, options);
  const where = train.checkpoint === test.checkpoint ? `at ${train.checkpoint}` : `training gradients at ${train.checkpoint}, test gradients at ${test.checkpoint}`;
  return kernelScores(phi.rows, phiTest.rows, k, train.ids, test, options, checkpoint, `over the gradients of ${train.rows.length} training samples (${where}), projected by ${phi.how}`);
}

function checkOptions(o: TrakOptions): { k: number; seed: number } {
  const k = o.projectionDim ?? DEFAULT_PROJECTION_DIM;
  if (!Number.isInteger(k) || k < 0) {
    throw new DdaError(`trak: option 'projectionDim' must be a non-negative integer, got ${k}`, 'pass e.g. 512, or 0 for no projection');
  }
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed)) throw new DdaError(`trak: option 'seed' must be an integer, got ${seed}`);
  if (o.damping !== undefined && (!(o.damping > 0) || !Number.isFinite(o.damping))) {
    throw new DdaError(`trak: option 'damping' must be a positive finite number, got ${o.damping}`, 'or leave it out for the scale-aware default');
  }
  if (o.dampingRatio !== undefined && (!(o.dampingRatio > 0) || !Number.isFinite(o.dampingRatio))) {
    throw new DdaError(`trak: option 'dampingRatio' must be a positive finite number, got ${o.dampingRatio}`);
  }
  return { k, seed };
}

/**
 * TRAK scores [nTrain × nTest] (see the module doc for the formula, sign and units).
 *
 * @throws DdaError on malformed or mismatched gradients, no training gradients, invalid options,
 *   all-zero projected training gradients without an absolute damping, or a system above
 *   `maxSystemSize`.
 */
export function trakScores(
  train: GradientMatrix,
  test: GradientMatrix,
  options: TrakOptions = {},
  checkpoint: string = train.checkpoint,
): ScoreMatrix {
  checkGradientPair(train, test, 'trak');
  const { k: kOpt, seed } = checkOptions(options);
  const identity = kOpt === 0;
  const k = identity ? train.dim : kOpt;
  const [phi, phiTest] = identity
    ? [train.rows, test.rows]
    : (projectRows([train.rows, test.rows], train.dim, k, seed) as [Float64Array[], Float64Array[]]);
  const where = train.checkpoint === test.checkpoint ? `at ${train.checkpoint}` : `training gradients at ${train.checkpoint}, test gradients at ${test.checkpoint}`;
  return kernelScores(phi, phiTest, k, train.ids, test, options, checkpoint, `over the gradients of ${train.rows.length} training samples (${where})`);
}

/**
 * The kernel step of TRAK over projected training rows `phi` and test rows `phiTest` (k entries
 * each): λ, the ridge solve and the provenance (`over`: what the rows are, for its description).
 */
function kernelScores(
  phi: readonly ArrayLike<number>[], phiTest: readonly ArrayLike<number>[], k: number, trainIds: readonly string[], test: GradientMatrix, options: TrakOptions, checkpoint: string, over: string,
): ScoreMatrix {
  const { k: kOpt, seed } = checkOptions(options);
  if (phi.length === 0) {
    throw new DdaError('trak: no training gradients, so the kernel ΦᵀΦ cannot be formed', 'score at least one training sample');
  }
  let trace = 0;
  for (const r of phi) for (let c = 0; c < k; c++) trace += (r[c] as number) * (r[c] as number);
  const lambda = options.damping ?? ((options.dampingRatio ?? DEFAULT_TRAK_DAMPING_RATIO) * trace) / k;
  if (!(lambda > 0)) {
    throw new DdaError(
      `trak: every projected training gradient is zero at checkpoint '${checkpoint}', so the scale-aware damping is 0`,
      'check the gradient computation, or pass an absolute damping',
    );
  }
  const { values, solver } = ridgeKernelScores(phi, phiTest, k, lambda, {
    solver: options.solver ?? 'auto',
    maxSystemSize: options.maxSystemSize ?? DEFAULT_MAX_SYSTEM_SIZE,
    what: 'trak',
  });
  return createScoreMatrix(trainIds, test.ids, values, {
    method: 'trak',
    computedOver: `φ_testᵀ (ΦᵀΦ + λI)⁻¹ φ_train with φ = Pᵀg, ${kOpt === 0 ? `no projection (P = I, k = dim = ${k})` : `P a Gaussian random projection ${test.dim} → ${k} (seed ${seed})`}, ${over}, λ = ${lambda.toPrecision(4)}${options.damping !== undefined ? ' (absolute)' : ` (= ${options.dampingRatio ?? DEFAULT_TRAK_DAMPING_RATIO} × trace(ΦᵀΦ)/k)`}, exact ${solver} solve; dimensionless; higher = more responsible`,
    units: 'dimensionless',
    checkpoints: [checkpoint],
    transforms: [],
  });
}

/**
 * TRAK over streamed training gradients (the {@link BlockSummaries} of the `trak` scorer): a
 * block's summary is its projected rows φ = Pᵀg (k float64 per row, row-major), bit-identical to
 * the rows {@link trakScores} projects from the whole set, since P does not depend on the rows;
 * `combine` projects the test gradients and solves the kernel over every block's rows. Only with
 * a projection (k > 0): without one the summary would be the gradient itself. P is drawn once and
 * kept (per dim) when it has at most {@link MAX_CACHED_PROJECTION} entries, else drawn again for
 * every block (then O(dim × k) normal draws per block on top of the projection).
 *
 * @throws DdaError for `projectionDim: 0`, and as {@link trakScores}.
 */
export function trakBlockSummaries(options: TrakOptions = {}): BlockSummaries {
  const { k, seed } = checkOptions(options);
  if (k === 0) throw new DdaError('trak: without a projection (projectionDim 0) a block summary would be the gradients themselves', 'score over stored gradients, or pass projectionDim > 0');
  const cache = new ProjectionCache(k, seed);
  let how = '';
  return {
    description: `${k} projected dimensions per training row (float64, seed ${seed})`,
    async summarize(block, test) {
      checkGradientPair(block, test, 'trak');
      const projected = await projectOnEngine(block.rows, block.dim, k, seed, cache, options);
      how = projected.how;
      const phi = projected.rows;
      const flat = new Float64Array(phi.length * k);
      phi.forEach((r, i) => flat.set(r, i * k));
      return flat;
    },
    async combine(summaries, trainIds, test, checkpoint) {
      const rows = summaries.reduce((a, x) => a + x.length, 0);
      if (summaries.some((x) => x.length % k !== 0) || rows !== trainIds.length * k) {
        throw new DdaError(`trak: the block summaries hold ${rows} numbers, expected ${trainIds.length} training rows × ${k} projected dimensions`, 'recompute the summaries (delete their artifacts)');
      }
      const phi = summaries.flatMap((x) => Array.from({ length: x.length / k }, (_, i) => x.subarray(i * k, (i + 1) * k)));
      const projected = await projectOnEngine(test.rows, test.dim, k, seed, cache, options);
      const where = test.checkpoint === checkpoint ? `at ${checkpoint}` : `scored at ${checkpoint}, test gradients at ${test.checkpoint}`;
      return kernelScores(phi, projected.rows, k, trainIds, test, options, checkpoint, `over the gradients of ${trainIds.length} training samples (${where}), projected block by block as they were streamed in ${summaries.length} block${summaries.length === 1 ? '' : 's'}, by ${how || projected.how}`);
    },
  };
}

/**
 * `if-lissa`: the influence function with H⁻¹ h_j estimated by LiSSA (Agarwal et al. 2017, as used
 * by Koh & Liang 2017), a truncated Neumann series:
 *
 *     x_0 = v,   x_{t+1} = v + (1 − λ/s)·x_t − (1/s)·F̃ x_t,   H⁻¹ v ≈ x_T / s
 *
 * with v = h_j the test-measurement gradient, H = F + λI, F = (1/n) Σ g_i g_iᵀ the empirical Fisher
 * of the training gradients, F̃ its estimate on a minibatch of `batch` training gradients drawn
 * uniformly with replacement (seeded; the full F when `batch` is 0 or ≥ n), s the `scale` and
 * T the `depth`. With minibatches the last iterate is noisy; `repeats` independent recursions
 * (continuing one seeded stream) are averaged, as in Koh & Liang. It converges to H⁻¹ v when s ≥ the largest eigenvalue of F̃ + λI; the default
 * scale guarantees that (mean ‖g‖² + λ for the full batch, max ‖g‖² + λ for minibatches, both upper
 * bounds of the largest eigenvalue). A finite depth acts as extra regularisation along directions
 * with small curvature (error factor (1 − μ/s)^T along an eigenvalue μ of H).
 *
 * score[i][j] = g_iᵀ x_T / s: same sign and units as `if-exact` (dimensionless; higher = more
 * responsible). Cost O(repeats × depth × batch × dim × nTest); memory 4 × testBlock × dim float64.
 *
 * `ifLissaScores` needs every training gradient at once (stored); `ifLissaStreamedFit` runs the
 * full-batch recursion over streamed training gradients instead, one pass over them per
 * iteration and one more to score: depth + 1 passes (it refuses minibatches and the dual solver).
 */
import { DdaError, SeededRandom, createScoreMatrix, type GradientMatrix, type ScoreMatrix, type StreamedFit } from '@dda/core';
import { checkGradientPair } from '@dda/scorer-grad-dot';
import {
  checkDampingOptions, dampingFromSquaredNorms, describeCheckpoints, describeDamping, requirePositiveDamping, requireTrainingRows, squaredNorm, wholeGradientDamping, type DampingOptions,
} from './damping.js';
import { crossProducts, crossProductsOn, gramMatrixOn, type Float64EngineOptions } from './linalg.js';

/** Default LiSSA recursion depth. */
export const DEFAULT_LISSA_DEPTH = 200;
/** Default number of test gradients iterated together. */
export const DEFAULT_TEST_BLOCK = 16;

/** Options of {@link ifLissaScores} and the `if-lissa` scorer. */
export interface IfLissaOptions extends DampingOptions, Float64EngineOptions {
  /** Number of iterations T (positive integer, default 200). */
  readonly depth?: number;
  /** s > 0 in the units of H; default: a guaranteed upper bound of the largest eigenvalue (module doc). */
  readonly scale?: number;
  /** Training gradients per iteration (integer ≥ 0; 0, the default, or ≥ nTrain = the full Fisher, deterministic). */
  readonly batch?: number;
  /** Independent recursions averaged (positive integer, default 1); useful with minibatches. */
  readonly repeats?: number;
  /** Seed of the minibatch draws (integer, default 0); the same draws are used for every test output. */
  readonly seed?: number;
  /** Test gradients iterated together in parameter space (positive integer, default 16); changes only memory and speed. */
  readonly testBlock?: number;
  /**
   * Where the recursion runs (changes only speed and rounding): `dual` in the span of the training
   * gradients (n × n Gram matrix), `primal` in parameter space, `auto` (default) dual when
   * n ≤ dim and n ≤ 4096.
   */
  readonly solver?: 'auto' | 'primal' | 'dual';
  /**
   * Bytes (float32) of one checkpoint's training gradients, n × dim × 4, above which a harness
   * streams them in depth + 1 passes ({@link ifLissaStreamedFit}); at or below it they are stored
   * and read once, far cheaper than computing each one depth + 1 times (integer ≥ 0, default
   * {@link DEFAULT_LISSA_STREAM_ABOVE_BYTES}; 0 always streams). Changes only cost, not scores.
   */
  readonly streamAboveBytes?: number;
}

/** Default `streamAboveBytes`: 1 GiB of float32 training gradients per checkpoint. */
export const DEFAULT_LISSA_STREAM_ABOVE_BYTES = 2 ** 30;

function positiveInteger(v: number, key: string): void {
  if (!Number.isInteger(v) || v < 1) throw new DdaError(`if-lissa: option '${key}' must be a positive integer, got ${v}`);
}

/** The options of {@link IfLissaOptions} that do not depend on the gradients, validated, with their defaults. */
interface LissaSettings {
  readonly depth: number;
  readonly repeats: number;
  readonly testBlock: number;
  readonly seed: number;
  /** The option `batch` (0 = every training gradient). */
  readonly batch: number;
  readonly solver: 'auto' | 'primal' | 'dual';
  readonly streamAboveBytes: number;
}

/** Validates `options` (damping, depth, repeats, testBlock, seed, batch, solver, a given scale). @throws DdaError naming the bad option. */
function lissaSettings(options: IfLissaOptions): LissaSettings {
  checkDampingOptions(options, 'if-lissa');
  const depth = options.depth ?? DEFAULT_LISSA_DEPTH;
  positiveInteger(depth, 'depth');
  const repeats = options.repeats ?? 1;
  positiveInteger(repeats, 'repeats');
  const testBlock = options.testBlock ?? DEFAULT_TEST_BLOCK;
  positiveInteger(testBlock, 'testBlock');
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new DdaError(`if-lissa: option 'seed' must be an integer, got ${seed}`);
  const batch = options.batch ?? 0;
  if (!Number.isInteger(batch) || batch < 0) {
    throw new DdaError(`if-lissa: option 'batch' must be an integer ≥ 0 (0 = all training gradients), got ${batch}`);
  }
  if (options.scale !== undefined) checkScale(options.scale);
  const solver = options.solver ?? 'auto';
  if (!['auto', 'primal', 'dual'].includes(solver)) throw new DdaError(`if-lissa: option 'solver' must be auto, primal or dual, got ${String(solver)}`);
  const streamAboveBytes = options.streamAboveBytes ?? DEFAULT_LISSA_STREAM_ABOVE_BYTES;
  if (!Number.isInteger(streamAboveBytes) || streamAboveBytes < 0) {
    throw new DdaError(`if-lissa: option 'streamAboveBytes' must be an integer ≥ 0, got ${streamAboveBytes}`, 'pass 0 to always stream the training gradients, or leave it out');
  }
  return { depth, repeats, testBlock, seed, batch, solver, streamAboveBytes };
}

/** A DdaError unless the scale s is a positive finite number. */
function checkScale(scale: number): void {
  if (!(scale > 0) || !Number.isFinite(scale)) {
    throw new DdaError(`if-lissa: option 'scale' must be a positive finite number, got ${scale}`, 'leave it out for a safe default');
  }
}

/**
 * The provenance of an `if-lissa` matrix of the rows of `train` (the whole set, or one streamed
 * block of it) over `n` training gradients; `how` is appended inside the LiSSA parentheses.
 */
function lissaProvenance(train: GradientMatrix, test: GradientMatrix, n: number, lambda: number, scale: number, options: IfLissaOptions, s: LissaSettings, how: string, checkpoint: string): ScoreMatrix['provenance'] {
  const fullBatch = s.batch === 0 || s.batch >= n;
  return {
    method: 'if-lissa',
    computedOver: `g_trainᵀ H⁻¹ g_test over ${test.dim} parameters (${describeCheckpoints(train, test)}), H = (1/n) Σ g gᵀ + λI the damped empirical Fisher of the ${n} training gradients, ${describeDamping(lambda, options)}, H⁻¹ by LiSSA (depth ${s.depth}, scale ${scale.toPrecision(4)}, ${fullBatch ? 'full batch' : `batch ${s.batch}, seed ${s.seed}`}${s.repeats > 1 ? `, ${s.repeats} repeats averaged` : ''}${how}); dimensionless; higher = more responsible`,
    units: 'dimensionless',
    checkpoints: [checkpoint],
    transforms: [],
  };
}

/**
 * LiSSA influence scores [nTrain × nTest] (see the module doc for the iteration, sign and units).
 *
 * @throws DdaError on malformed or mismatched gradients, no training gradients, invalid options,
 *   or when the iteration diverges (scale too small).
 */
export function ifLissaScores(
  train: GradientMatrix,
  test: GradientMatrix,
  options: IfLissaOptions = {},
  checkpoint: string = train.checkpoint,
): ScoreMatrix {
  const { settings, lambda, n, dual, run } = lissaPlan(train, test, options);
  const out = dual ? lissaDual(train, test, run) : lissaPrimal(train, test, run, settings.testBlock);
  return createScoreMatrix(train.ids, test.ids, out, lissaProvenance(train, test, n, lambda, run.scale, options, settings, dual ? ', iterated in the span of the training gradients' : '', checkpoint));
}

/**
 * The checked settings of a LiSSA run over these gradients: the damping λ, whether it iterates in
 * the dual, and the recursion's constants (scale s, decay 1 − λ/s, step 1/(s·b)).
 *
 * @throws DdaError on malformed or mismatched gradients, no training gradients or invalid options.
 */
function lissaPlan(train: GradientMatrix, test: GradientMatrix, options: IfLissaOptions): { settings: LissaSettings; lambda: number; n: number; dual: boolean; run: LissaRun } {
  checkGradientPair(train, test, 'if-lissa');
  const settings = lissaSettings(options);
  const lambda = wholeGradientDamping(train, options, 'if-lissa');
  const { depth, repeats, seed } = settings;
  const n = train.rows.length;
  const fullBatch = settings.batch === 0 || settings.batch >= n;
  const batch = fullBatch ? n : settings.batch;
  const norms = train.rows.map((r) => squaredNorm(r));
  const bound = fullBatch ? norms.reduce((a, b) => a + b, 0) / n : Math.max(...norms);
  const scale = options.scale ?? bound + lambda;
  checkScale(scale);
  const dual = settings.solver === 'dual' || (settings.solver === 'auto' && n <= train.dim && n <= MAX_DUAL_TRAIN);
  return { settings, lambda, n, dual, run: { depth, repeats, batch, fullBatch, seed, decay: 1 - lambda / scale, step: 1 / (scale * batch), scale } };
}

/**
 * {@link ifLissaScores} with the dual recursion's products on the float64 GEMM of `options.engine`
 * (default `auto`: onnxruntime's where it is loaded; {@link Float64EngineOptions}): the Gram matrix,
 * G Hᵀ, and each step's K[batch, :] · B for every test output at once (the test outputs share
 * their minibatches, so their recursions run side by side). Equal to it up to the order of float64
 * sums; the primal recursion stays the float64 loop.
 *
 * @throws DdaError as {@link ifLissaScores}, or when a kernel asked for by id cannot run.
 */
export async function ifLissaScoresOnEngine(
  train: GradientMatrix,
  test: GradientMatrix,
  options: IfLissaOptions = {},
  checkpoint: string = train.checkpoint,
): Promise<ScoreMatrix> {
  const { settings, lambda, n, dual, run } = lissaPlan(train, test, options);
  if (!dual || options.engine === 'js' || test.rows.length === 0) return ifLissaScores(train, test, options, checkpoint);
  const { values, how } = await lissaDualOn(train, test, run, options);
  return createScoreMatrix(train.ids, test.ids, values, lissaProvenance(train, test, n, lambda, run.scale, options, settings, `, iterated in the span of the training gradients, every test output at once, products a ${how}`, checkpoint));
}

/** The settings of one LiSSA run, after validation. */
interface LissaRun {
  readonly depth: number;
  readonly repeats: number;
  readonly batch: number;
  readonly fullBatch: boolean;
  readonly seed: number;
  readonly decay: number;
  readonly step: number;
  readonly scale: number;
}

/** Largest training set iterated in the dual (its n × n Gram matrix is kept in memory). */
const MAX_DUAL_TRAIN = 4096;

function divergence(t: number, r: Pick<LissaRun, 'depth' | 'scale'>): DdaError {
  return new DdaError(
    `if-lissa: the iteration diverged at step ${t + 1} of ${r.depth} (scale s = ${r.scale.toPrecision(4)} is below the largest eigenvalue of the Hessian estimate)`,
    'increase the option scale, or leave it out for the safe default',
  );
}

/**
 * LiSSA in parameter space: x ← v + (1 − λ/s)·x − (1/(s·b))·Σ_batch g (g·x), O(depth × batch × dim)
 * per test output. Used when the training set is larger than the gradient dimension.
 */
function lissaPrimal(train: GradientMatrix, test: GradientMatrix, run: LissaRun, testBlock: number): Float64Array {
  const { depth, repeats, batch, fullBatch, seed, decay, step, scale } = run;
  const n = train.rows.length;
  const dim = train.dim;
  const m = test.rows.length;
  const out = new Float64Array(n * m);
  const idx = new Int32Array(batch);
  for (let j0 = 0; j0 < m; j0 += testBlock) {
    const mb = Math.min(testBlock, m - j0);
    const v = Array.from({ length: mb }, (_, j) => Float64Array.from(test.rows[j0 + j] as Float32Array));
    const x = v.map((r) => Float64Array.from(r));
    const sum = Array.from({ length: mb }, () => new Float64Array(dim));
    const fx = Array.from({ length: mb }, () => new Float64Array(dim));
    const coef = new Float64Array(mb);
    // Re-seeded per test block, so every test output sees the same minibatches whatever the blocking.
    const rng = new SeededRandom(seed);
    for (let r = 0; r < repeats; r++) {
      for (let j = 0; j < mb; j++) (x[j] as Float64Array).set(v[j] as Float64Array);
      for (let t = 0; t < depth; t++) {
        for (let b = 0; b < batch; b++) idx[b] = fullBatch ? b : rng.int(n);
        for (const f of fx) f.fill(0);
        for (let b = 0; b < batch; b++) {
          const g = train.rows[idx[b] as number] as Float32Array;
          for (let j = 0; j < mb; j++) {
            const xj = x[j] as Float64Array;
            let c = 0;
            for (let p = 0; p < dim; p++) c += (g[p] as number) * (xj[p] as number);
            coef[j] = c;
          }
          for (let j = 0; j < mb; j++) {
            const c = coef[j] as number;
            if (c === 0) continue;
            const fj = fx[j] as Float64Array;
            for (let p = 0; p < dim; p++) fj[p] = (fj[p] as number) + c * (g[p] as number);
          }
        }
        let ss = 0;
        for (let j = 0; j < mb; j++) {
          const xj = x[j] as Float64Array;
          const vj = v[j] as Float64Array;
          const fj = fx[j] as Float64Array;
          for (let p = 0; p < dim; p++) {
            const y = (vj[p] as number) + decay * (xj[p] as number) - step * (fj[p] as number);
            xj[p] = y;
            ss += y * y;
          }
        }
        if (!Number.isFinite(ss)) throw divergence(t, run);
      }
      for (let j = 0; j < mb; j++) {
        const xj = x[j] as Float64Array;
        const sj = sum[j] as Float64Array;
        for (let p = 0; p < dim; p++) sj[p] = (sj[p] as number) + (xj[p] as number);
      }
    }
    for (let i = 0; i < n; i++) {
      const g = train.rows[i] as Float32Array;
      for (let j = 0; j < mb; j++) {
        const sj = sum[j] as Float64Array;
        let s = 0;
        for (let p = 0; p < dim; p++) s += (g[p] as number) * (sj[p] as number);
        out[i * m + j0 + j] = s / (scale * repeats);
      }
    }
  }
  return out;
}

/**
 * The same recursion in the span of the training gradients: every iterate is x_t = α_t·v + Gᵀβ_t
 * (x_0 = v), so with the Gram matrix K = G Gᵀ and u = G v one step is
 * c = α·u[batch] + K[batch,:]·β, α ← 1 + (1 − λ/s)·α, β ← (1 − λ/s)·β − (1/(s·b))·scatter(batch, c),
 * and the scores are G·Σx = Σα·u + K·Σβ. Exactly the primal recursion (up to rounding), in
 * O(depth × batch × n) per test output instead of O(depth × batch × dim): much faster when the
 * gradients are longer than the training set, as for LoRA gradients.
 */
function lissaDual(train: GradientMatrix, test: GradientMatrix, run: LissaRun): Float64Array {
  const { depth, repeats, batch, fullBatch, seed, decay, step } = run;
  const n = train.rows.length;
  const m = test.rows.length;
  const K = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const gi = train.rows[i] as Float32Array;
    for (let k = 0; k <= i; k++) {
      const gk = train.rows[k] as Float32Array;
      let s = 0;
      for (let p = 0; p < gi.length; p++) s += (gi[p] as number) * (gk[p] as number);
      K[i * n + k] = s;
      K[k * n + i] = s;
    }
  }
  const out = new Float64Array(n * m);
  const idx = new Int32Array(batch);
  const u = new Float64Array(n);
  const beta = new Float64Array(n);
  const sumBeta = new Float64Array(n);
  const c = new Float64Array(batch);
  for (let j = 0; j < m; j++) {
    const v = test.rows[j] as Float32Array;
    for (let i = 0; i < n; i++) {
      const g = train.rows[i] as Float32Array;
      let s = 0;
      for (let p = 0; p < v.length; p++) s += (g[p] as number) * (v[p] as number);
      u[i] = s;
    }
    // Re-seeded per test output, so every test output sees the same minibatches.
    const rng = new SeededRandom(seed);
    let sumAlpha = 0;
    sumBeta.fill(0);
    for (let r = 0; r < repeats; r++) {
      let alpha = 1;
      beta.fill(0);
      for (let t = 0; t < depth; t++) {
        for (let b = 0; b < batch; b++) idx[b] = fullBatch ? b : rng.int(n);
        for (let b = 0; b < batch; b++) {
          const row = (idx[b] as number) * n;
          let s = alpha * (u[idx[b] as number] as number);
          for (let k = 0; k < n; k++) s += (K[row + k] as number) * (beta[k] as number);
          c[b] = s;
        }
        alpha = 1 + decay * alpha;
        for (let k = 0; k < n; k++) beta[k] = decay * (beta[k] as number);
        let finite = Number.isFinite(alpha);
        for (let b = 0; b < batch; b++) {
          const cb = c[b] as number;
          if (!Number.isFinite(cb)) finite = false;
          beta[idx[b] as number] = (beta[idx[b] as number] as number) - step * cb;
        }
        if (!finite) throw divergence(t, run);
      }
      sumAlpha += alpha;
      for (let k = 0; k < n; k++) sumBeta[k] = (sumBeta[k] as number) + (beta[k] as number);
    }
    for (let i = 0; i < n; i++) {
      let s = sumAlpha * (u[i] as number);
      for (let k = 0; k < n; k++) s += (K[i * n + k] as number) * (sumBeta[k] as number);
      out[i * m + j] = s / (run.scale * repeats);
    }
  }
  return out;
}

/**
 * {@link lissaDual} for every test output at once, its products on the engine of `o`: with
 * U = G Hᵀ (n × m) and B (n × m) the β of every test output, one step is
 * C = α·U[batch, :] + K[batch, :]·B, α ← 1 + (1 − λ/s)·α, B ← (1 − λ/s)·B − (1/(s·b))·scatter(batch, C),
 * and the scores are (Σα·U + K·ΣB) / (s · repeats). α does not depend on the test output, and every
 * test output draws the same minibatches (one stream, re-seeded per output in {@link lissaDual}).
 */
async function lissaDualOn(train: GradientMatrix, test: GradientMatrix, run: LissaRun, o: Float64EngineOptions): Promise<{ values: Float64Array; how: string }> {
  const { depth, repeats, batch, fullBatch, seed, decay, step } = run;
  const n = train.rows.length;
  const m = test.rows.length;
  const gram = await gramMatrixOn(train.rows, train.dim, o, 'if-lissa');
  const K = gram.values;
  const U = (await crossProductsOn(train.rows, test.rows, train.dim, o, 'if-lissa')).values;
  const kRows = Array.from({ length: n }, (_, i) => K.subarray(i * n, (i + 1) * n));
  const B = new Float64Array(n * m);
  const sumB = new Float64Array(n * m);
  const bTFlat = new Float64Array(m * n);
  const bT = Array.from({ length: m }, (_, j) => bTFlat.subarray(j * n, (j + 1) * n));
  /** K[rows, :] · B, [rows.length × m], with Bᵀ's rows refreshed from B first. */
  const kTimes = async (rows: readonly Float64Array[], from: Float64Array): Promise<Float64Array> => {
    for (let j = 0; j < m; j++) {
      const t = bT[j] as Float64Array;
      for (let k = 0; k < n; k++) t[k] = from[k * m + j] as number;
    }
    return (await crossProductsOn(rows, bT, n, o, 'if-lissa')).values;
  };
  const idx = new Int32Array(batch);
  const picked: Float64Array[] = fullBatch ? kRows : new Array<Float64Array>(batch);
  const rng = new SeededRandom(seed);
  let sumAlpha = 0;
  for (let r = 0; r < repeats; r++) {
    let alpha = 1;
    B.fill(0);
    for (let t = 0; t < depth; t++) {
      for (let b = 0; b < batch; b++) idx[b] = fullBatch ? b : rng.int(n);
      if (!fullBatch) for (let b = 0; b < batch; b++) picked[b] = kRows[idx[b] as number] as Float64Array;
      // β = 0 at t = 0: K·B is 0 then (skipped, as the loop's products with a zero β add nothing).
      const kb = t === 0 ? new Float64Array(batch * m) : await kTimes(picked, B);
      let finite = true;
      for (let b = 0; b < batch; b++) {
        const u = (idx[b] as number) * m;
        for (let j = 0; j < m; j++) {
          const c = alpha * (U[u + j] as number) + (kb[b * m + j] as number);
          if (!Number.isFinite(c)) finite = false;
          kb[b * m + j] = c;
        }
      }
      alpha = 1 + decay * alpha;
      if (!Number.isFinite(alpha)) finite = false;
      for (let k = 0; k < B.length; k++) B[k] = decay * (B[k] as number);
      for (let b = 0; b < batch; b++) {
        const at = (idx[b] as number) * m;
        for (let j = 0; j < m; j++) B[at + j] = (B[at + j] as number) - step * (kb[b * m + j] as number);
      }
      if (!finite) throw divergence(t, run);
    }
    sumAlpha += alpha;
    for (let k = 0; k < B.length; k++) sumB[k] = (sumB[k] as number) + (B[k] as number);
  }
  const ks = await kTimes(kRows, sumB);
  const out = new Float64Array(n * m);
  for (let k = 0; k < out.length; k++) out[k] = (sumAlpha * (U[k] as number) + (ks[k] as number)) / (run.scale * repeats);
  return { values: out, how: gram.how };
}

/** Entries before the iterate in a streamed fit: [λ, s, n]. */
const FIT_HEADER = 3;

/**
 * `if-lissa` over streamed training gradients, in passes ({@link StreamedFit}, `iterative`): the
 * full-batch recursion of the module doc with one fit pass per iteration, as kronfluence's and
 * Koh & Liang's LiSSA make one pass over the training data per step.
 *
 * - fit pass 1 folds each block into [Σ‖g‖², Σ_g g (gᵀ h_j) for every query j]; its finalize sets
 *   λ (the scale-aware damping from Σ‖g‖², or the absolute one), s (the option, or mean ‖g‖² + λ
 *   as the stored path) and x_1 = h + (1 − λ/s)·h − (1/(s·n)) Σ g gᵀ h;
 * - fit pass t + 1 (t = 1 .. T − 1) folds each block into Σ_g g (gᵀ x_t) and finalizes
 *   x_{t+1} = h + (1 − λ/s)·x_t − (1/(s·n)) Σ g gᵀ x_t;
 * - the score pass: score[i][j] = g_iᵀ x_T / s (dimensionless; higher = more responsible).
 *
 * So T = `depth` fit passes and one score pass: the harness computes every training gradient
 * depth + 1 times per checkpoint (201 with the default depth 200) unless it stores them
 * (`--store-gradients`, then `ifLissaScores` runs on the stored rows). The partial and the fit
 * are 1 + nTest × dim and 3 + nTest × dim float64 (the fit: [λ, s, n, x_t (nTest × dim)]); only
 * the latest fit is needed, so `iterative` is set. The same recursion as `ifLissaScores` with the
 * full batch, so the same scores up to float rounding (the primal solver's exactly, the dual's up
 * to the rounding of the Gram form); `repeats` > 1 of the deterministic full batch are identical
 * recursions, run once; `testBlock` does not apply (every query is iterated together).
 *
 * Refused (`refuse`, so the harness stores the gradients and says why) when one checkpoint's
 * training gradients take at most `streamAboveBytes` (1 GiB by default: storing them is far
 * cheaper than depth + 1 passes), for a minibatch (`batch`
 * between 1 and nTrain − 1: its seeded draws need the stored rows) and for `solver: 'dual'` (the
 * n × n Gram matrix of every training row). The iteration's divergence (scale below the largest
 * eigenvalue) throws the stored path's DdaError at the pass where it happens.
 *
 * @throws DdaError on invalid options (as `ifLissaScores`).
 */
export function ifLissaStreamedFit(options: IfLissaOptions = {}): StreamedFit {
  const settings = lissaSettings(options);
  const { depth } = settings;
  /** The iterate x_t of every query (x_0 = h): rows of the previous fit, or the query gradients. */
  const iterates = (test: GradientMatrix, previous: Float64Array | null): ArrayLike<number>[] =>
    previous === null ? [...test.rows] : test.rows.map((_, j) => previous.subarray(FIT_HEADER + j * test.dim, FIT_HEADER + (j + 1) * test.dim));
  const checkSize = (v: Float64Array, expected: number, what: string): void => {
    if (v.length !== expected) throw new DdaError(`if-lissa: the ${what} has ${v.length} entries, expected ${expected} for these test gradients`, `delete the stored ${what} to recompute it`);
  };
  return {
    description: `fit pass 1: Σ ‖g‖² and Σ g gᵀ h_j, then λ, s and the first LiSSA step; fit passes 2..${depth}: Σ g gᵀ x_j, one LiSSA step each (partial and fit nTest × dim float64; only the latest fit kept)`,
    fitPasses: depth,
    iterative: true,
    refuse(dim, nTrain) {
      if (settings.solver === 'dual') {
        return "if-lissa: the option solver = 'dual' iterates on the n × n Gram matrix of every training row, which streamed passes do not form; leave it out (auto) or pass primal for the same recursion in parameter space, streamed";
      }
      if (settings.batch > 0 && settings.batch < nTrain) {
        return `if-lissa: the option batch = ${settings.batch} draws a seeded minibatch of ${settings.batch} of the ${nTrain} training gradients per iteration from the stored rows, which passes over streamed blocks cannot draw; the stored path runs it (as here), or leave batch out (0: the full Fisher, streamed in ${depth} + 1 passes)`;
      }
      const bytes = nTrain * dim * 4;
      if (bytes <= settings.streamAboveBytes) {
        return `if-lissa: its streamed form computes every training gradient ${depth} + 1 times per checkpoint (one pass per LiSSA step), and the ${nTrain} training gradients of a checkpoint take ${(bytes / 2 ** 20).toFixed(1)} MiB (at most streamAboveBytes = ${settings.streamAboveBytes}), far cheaper to store and read once; pass the option streamAboveBytes = 0 to stream them anyway`;
      }
      return undefined;
    },
    async fold(block, test, pass, previous) {
      checkGradientPair(block, test, 'if-lissa');
      const m = test.rows.length;
      const dim = test.dim;
      if (pass > 0 && previous === null) throw new DdaError(`if-lissa: fit pass ${pass + 1} needs the fit of pass ${pass} (internal error)`);
      if (previous !== null) checkSize(previous, FIT_HEADER + m * dim, 'fit');
      const out = new Float64Array(1 + m * dim);
      if (pass === 0) out[0] = block.rows.reduce((a, g) => a + squaredNorm(g), 0);
      // Σ_g g (gᵀ x_j): the coefficients gᵀ x_j of the block's rows, then their rows accumulated.
      const coef = crossProducts(block.rows, iterates(test, previous), dim);
      block.rows.forEach((g, i) => {
        for (let j = 0; j < m; j++) {
          const c = coef[i * m + j] as number;
          if (c === 0) continue;
          const row = 1 + j * dim;
          for (let p = 0; p < dim; p++) out[row + p] = (out[row + p] as number) + c * (g[p] as number);
        }
      });
      return out;
    },
    async finalize(sum, nTrain, test, pass, previous) {
      requireTrainingRows(nTrain, 'if-lissa');
      const m = test.rows.length;
      const dim = test.dim;
      checkSize(sum, 1 + m * dim, 'partial statistic');
      let lambda: number;
      let scale: number;
      if (previous === null) {
        lambda = requirePositiveDamping(dampingFromSquaredNorms(sum[0] as number, nTrain, dim, options), test.checkpoint, 'if-lissa');
        scale = options.scale ?? (sum[0] as number) / nTrain + lambda;
        checkScale(scale);
      } else {
        checkSize(previous, FIT_HEADER + m * dim, 'fit');
        [lambda, scale] = [previous[0] as number, previous[1] as number];
        if (previous[2] !== nTrain) throw new DdaError(`if-lissa: fit pass ${pass} was made over ${previous[2]} training gradients, this pass over ${nTrain}`, 'delete the stored fits to recompute them');
      }
      const decay = 1 - lambda / scale;
      const step = 1 / (scale * nTrain);
      const x = iterates(test, previous);
      const fit = new Float64Array(FIT_HEADER + m * dim);
      fit[0] = lambda;
      fit[1] = scale;
      fit[2] = nTrain;
      let ss = 0;
      test.rows.forEach((v, j) => {
        const xj = x[j] as ArrayLike<number>;
        for (let p = 0; p < dim; p++) {
          const y = (v[p] as number) + decay * (xj[p] as number) - step * (sum[1 + j * dim + p] as number);
          fit[FIT_HEADER + j * dim + p] = y;
          ss += y * y;
        }
      });
      if (!Number.isFinite(ss)) throw divergence(pass, { depth, scale });
      return fit;
    },
    async scoreBlock(fit, block, test, checkpoint) {
      checkGradientPair(block, test, 'if-lissa');
      checkSize(fit, FIT_HEADER + test.rows.length * test.dim, 'fit');
      const [lambda, scale, n] = [fit[0] as number, fit[1] as number, fit[2] as number];
      const values = crossProducts(block.rows, iterates(test, fit), test.dim);
      for (let k = 0; k < values.length; k++) values[k] = (values[k] as number) / scale;
      const how = `; streamed: H⁻¹ g_test iterated over the training gradients in ${depth} passes, then scored block by block`;
      return createScoreMatrix(block.ids, test.ids, values, lissaProvenance(block, test, n, lambda, scale, options, settings, how, checkpoint));
    },
  };
}

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
 */
import { DdaError, SeededRandom, createScoreMatrix, type GradientMatrix, type ScoreMatrix } from '@dda/core';
import { checkGradientPair } from '@dda/scorer-grad-dot';
import { describeCheckpoints, describeDamping, squaredNorm, wholeGradientDamping, type DampingOptions } from './damping.js';

/** Default LiSSA recursion depth. */
export const DEFAULT_LISSA_DEPTH = 200;
/** Default number of test gradients iterated together. */
export const DEFAULT_TEST_BLOCK = 16;

/** Options of {@link ifLissaScores} and the `if-lissa` scorer. */
export interface IfLissaOptions extends DampingOptions {
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
}

function positiveInteger(v: number, key: string): void {
  if (!Number.isInteger(v) || v < 1) throw new DdaError(`if-lissa: option '${key}' must be a positive integer, got ${v}`);
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
  checkGradientPair(train, test, 'if-lissa');
  const lambda = wholeGradientDamping(train, options, 'if-lissa');
  const depth = options.depth ?? DEFAULT_LISSA_DEPTH;
  positiveInteger(depth, 'depth');
  const repeats = options.repeats ?? 1;
  positiveInteger(repeats, 'repeats');
  const testBlock = options.testBlock ?? DEFAULT_TEST_BLOCK;
  positiveInteger(testBlock, 'testBlock');
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new DdaError(`if-lissa: option 'seed' must be an integer, got ${seed}`);
  const batchOpt = options.batch ?? 0;
  if (!Number.isInteger(batchOpt) || batchOpt < 0) {
    throw new DdaError(`if-lissa: option 'batch' must be an integer ≥ 0 (0 = all training gradients), got ${batchOpt}`);
  }
  const n = train.rows.length;
  const dim = train.dim;
  const fullBatch = batchOpt === 0 || batchOpt >= n;
  const batch = fullBatch ? n : batchOpt;

  const norms = train.rows.map((r) => squaredNorm(r));
  const bound = fullBatch ? norms.reduce((a, b) => a + b, 0) / n : Math.max(...norms);
  const scale = options.scale ?? bound + lambda;
  if (!(scale > 0) || !Number.isFinite(scale)) {
    throw new DdaError(`if-lissa: option 'scale' must be a positive finite number, got ${scale}`, 'leave it out for a safe default');
  }

  const decay = 1 - lambda / scale;
  const step = 1 / (scale * batch);
  const solver = options.solver ?? 'auto';
  if (!['auto', 'primal', 'dual'].includes(solver)) throw new DdaError(`if-lissa: option 'solver' must be auto, primal or dual, got ${String(solver)}`);
  const dual = solver === 'dual' || (solver === 'auto' && n <= dim && n <= MAX_DUAL_TRAIN);
  const run = { depth, repeats, batch, fullBatch, seed, decay, step, scale };
  const out = dual ? lissaDual(train, test, run) : lissaPrimal(train, test, run, testBlock);
  return createScoreMatrix(train.ids, test.ids, out, {
    method: 'if-lissa',
    computedOver: `g_trainᵀ H⁻¹ g_test over ${dim} parameters (${describeCheckpoints(train, test)}), H = (1/n) Σ g gᵀ + λI the damped empirical Fisher of the ${n} training gradients, ${describeDamping(lambda, options)}, H⁻¹ by LiSSA (depth ${depth}, scale ${scale.toPrecision(4)}, ${fullBatch ? 'full batch' : `batch ${batch}, seed ${seed}`}${repeats > 1 ? `, ${repeats} repeats averaged` : ''}${dual ? ', iterated in the span of the training gradients' : ''}); dimensionless; higher = more responsible`,
    units: 'dimensionless',
    checkpoints: [checkpoint],
    transforms: [],
  });
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

function divergence(t: number, r: LissaRun): DdaError {
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

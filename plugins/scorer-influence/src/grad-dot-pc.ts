/**
 * `grad-dot-pc`: gradient inner products after the top-k shared gradient directions are projected
 * out (as EleutherAI's bergson removes principal components of the gradients before the dot
 * product; the closest published analogue of DDA's debias that works on gradients, not scores).
 *
 *     score[i][j] = g_iᵀ (I − V_k V_kᵀ) h_j
 *
 * g_i = ∇θ ℓ(z_t_i) (training loss), h_j = ∇θ f(z_e_j) (test measurement), V_k the k leading
 * principal directions (uncentred: eigenvectors of the second moment Σ b bᵀ with the largest
 * eigenvalues) of the basis gradients b: the training gradients (`basis: 'train'`, default) or the
 * test gradients (`basis: 'query'`). The projector is symmetric and idempotent, so projecting one
 * side or both gives the same score. Higher = more responsible; units those of `grad-dot`
 * (nats² per squared parameter unit).
 *
 * Computed on the small side, without forming V_k: with the thin SVD of the basis B = U Σ Vᵀ and
 * S = G Hᵀ the plain scores, the training basis gives S − U_k U_kᵀ S and the query basis
 * S − S U_k U_kᵀ, where U_k are the k leading eigenvectors of the basis Gram matrix B Bᵀ
 * (nBasis × nBasis). Directions with zero variance change no score, so k above the basis's rank
 * removes everything there is.
 */
import { DdaError, SeededRandom, createScoreMatrix, type GradientMatrix, type ScoreMatrix } from '@dda/core';
import { checkGradientPair, dotProducts, type GradDotOptions } from '@dda/scorer-grad-dot';
import { describeCheckpoints, squaredNorm } from './damping.js';
import { symmetricEigen } from './linalg.js';

/** Whose principal directions are removed: the training gradients' or the test (query) gradients'. */
export type PcBasis = 'train' | 'query';

/**
 * Options of {@link gradDotPcScores} and the `grad-dot-pc` scorer; `engine` and `blockRows` choose
 * how the inner products are computed, as for `grad-dot` (default: onnxruntime's float32 GEMM where it starts).
 */
export interface GradDotPcOptions extends GradDotOptions {
  /** Number of leading directions to remove, a positive integer below the number of basis gradients (default 10). */
  readonly k?: number;
  /** `train` (default) or `query`. */
  readonly basis?: PcBasis;
}

/** Default number of directions removed. */
export const DEFAULT_PC_K = 10;

/** Gram matrices up to this size are decomposed in full (Jacobi); larger ones by subspace iteration. */
const FULL_EIGEN_MAX = 200;
/** Most subspace iterations before {@link topEigen} gives up. */
const MAX_SUBSPACE_ITERATIONS = 3000;
/**
 * Relative residual ‖K q − θ q‖ / θ_1 under which a leading eigenpair counts as converged: below
 * the float32 rounding of the Gram matrix the default engine computes (about 1e-7 relative).
 */
const RESIDUAL_TOLERANCE = 1e-8;
/** Eigenvalues within this fraction of the largest are equal (for the uniqueness check) or zero. */
export const RELATIVE_EIGEN_TIE = 1e-9;

/** The leading eigenpairs of a symmetric positive semi-definite matrix. */
export interface LeadingEigen {
  /** The min(k + 1, n) leading eigenvalues, descending. */
  readonly values: Float64Array;
  /** The k leading eigenvectors as the columns of an n×k row-major matrix. */
  readonly vectors: Float64Array;
  /** Subspace iterations taken (0 for a full decomposition). */
  readonly iterations: number;
}

/** Orthonormalises the b columns of the n×b row-major `q` in place (modified Gram–Schmidt, twice); a column that vanishes is replaced by a fresh seeded direction. */
function orthonormalise(q: Float64Array, n: number, b: number, rng: SeededRandom): void {
  for (let c = 0; c < b; c++) {
    for (let attempt = 0; ; attempt++) {
      for (let pass = 0; pass < 2; pass++) {
        for (let p = 0; p < c; p++) {
          let dot = 0;
          for (let i = 0; i < n; i++) dot += (q[i * b + c] as number) * (q[i * b + p] as number);
          for (let i = 0; i < n; i++) q[i * b + c] = (q[i * b + c] as number) - dot * (q[i * b + p] as number);
        }
      }
      let norm = 0;
      for (let i = 0; i < n; i++) norm += (q[i * b + c] as number) ** 2;
      norm = Math.sqrt(norm);
      if (norm > 1e-10) {
        for (let i = 0; i < n; i++) q[i * b + c] = (q[i * b + c] as number) / norm;
        break;
      }
      if (attempt > 10) throw new DdaError('grad-dot-pc: could not complete an orthonormal basis (internal error)');
      for (let i = 0; i < n; i++) q[i * b + c] = rng.normal();
    }
  }
}

/** `a` (n×n) times `q` (n×b), both row-major. */
function multiply(a: Float64Array, q: Float64Array, n: number, b: number): Float64Array {
  const out = new Float64Array(n * b);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < n; t++) {
      const x = a[i * n + t] as number;
      if (x === 0) continue;
      for (let c = 0; c < b; c++) out[i * b + c] = (out[i * b + c] as number) + x * (q[t * b + c] as number);
    }
  }
  return out;
}

/**
 * The k leading eigenpairs of a symmetric positive semi-definite n×n matrix (row-major), and the
 * (k+1)-th eigenvalue when k < n: by a full Jacobi decomposition for n ≤ 200, otherwise by subspace
 * iteration with Rayleigh–Ritz over 2k + 10 columns (seeded, deterministic) until every leading
 * pair's residual ‖K q − θ q‖ is below 1e-8 of the largest eigenvalue.
 *
 * @throws DdaError if k is not an integer in [1, n], or the iteration does not converge.
 */
export function topEigen(k: number, matrix: Float64Array, n: number, what: string): LeadingEigen {
  if (!Number.isInteger(k) || k < 1 || k > n) throw new DdaError(`${what}: needs 1 ≤ k ≤ ${n}, got ${k}`);
  const want = Math.min(k + 1, n);
  if (n <= FULL_EIGEN_MAX) {
    const e = symmetricEigen(matrix, n, what);
    const vectors = new Float64Array(n * k);
    for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) vectors[i * k + c] = e.vectors[i * n + c] as number;
    return { values: e.values.slice(0, want), vectors, iterations: 0 };
  }
  // Oversampling: convergence goes as (θ_{b+1} / θ_k) per iteration.
  const b = Math.min(n, 2 * k + 10);
  const rng = new SeededRandom(0);
  let q: Float64Array = Float64Array.from({ length: n * b }, () => rng.normal());
  orthonormalise(q, n, b, rng);
  for (let it = 1; it <= MAX_SUBSPACE_ITERATIONS; it++) {
    const z = multiply(matrix, q, n, b);
    // Rayleigh–Ritz on span(q): T = qᵀ K q = qᵀ z, then rotate q (and z) to T's eigenvectors.
    const t = new Float64Array(b * b);
    for (let c = 0; c < b; c++) for (let d = 0; d < b; d++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (q[i * b + c] as number) * (z[i * b + d] as number);
      t[c * b + d] = s;
    }
    for (let c = 0; c < b; c++) for (let d = 0; d < c; d++) t[c * b + d] = t[d * b + c] = ((t[c * b + d] as number) + (t[d * b + c] as number)) / 2;
    const e = symmetricEigen(t, b, what);
    const rotate = (m: Float64Array): Float64Array => {
      const out = new Float64Array(n * b);
      for (let i = 0; i < n; i++) for (let c = 0; c < b; c++) {
        let s = 0;
        for (let d = 0; d < b; d++) s += (m[i * b + d] as number) * (e.vectors[d * b + c] as number);
        out[i * b + c] = s;
      }
      return out;
    };
    const ritz = rotate(q);
    const kz = rotate(z);
    const top = Math.max(e.values[0] as number, 0);
    let converged = true;
    for (let c = 0; c < k && converged; c++) {
      let r2 = 0;
      for (let i = 0; i < n; i++) r2 += ((kz[i * b + c] as number) - (e.values[c] as number) * (ritz[i * b + c] as number)) ** 2;
      converged = Math.sqrt(r2) <= RESIDUAL_TOLERANCE * top;
    }
    if (converged || top === 0) {
      const vectors = new Float64Array(n * k);
      for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) vectors[i * k + c] = ritz[i * b + c] as number;
      return { values: e.values.slice(0, want), vectors, iterations: it };
    }
    q = kz;
    orthonormalise(q, n, b, rng);
  }
  throw new DdaError(`${what}: the ${k} leading principal directions did not converge in ${MAX_SUBSPACE_ITERATIONS} subspace iterations`, 'choose a k where the spectrum has a gap (e.g. a smaller k)');
}

/**
 * The Gram matrix `K[a][b] = rows[a] · rows[b]` of a gradient matrix on the engine of `options`
 * (n×n row-major, float64), made exactly symmetric by averaging K and Kᵀ (a float32 GEMM need not be).
 */
export async function symmetricGram(g: GradientMatrix, options: GradDotOptions): Promise<{ values: Float64Array; how: string }> {
  const n = g.rows.length;
  const d = await dotProducts(g, g, options);
  const k = d.values;
  for (let a = 0; a < n; a++) for (let b = 0; b < a; b++) k[a * n + b] = k[b * n + a] = ((k[a * n + b] as number) + (k[b * n + a] as number)) / 2;
  return { values: k, how: d.how };
}

/**
 * `grad-dot-pc` scores [nTrain × nTest] (see the module doc for the formula, sign and units).
 *
 * @param train - Per-example training-loss gradients.
 * @param test - Per-example test-measurement gradients over the same parameters.
 * @param checkpoint - Recorded in the provenance (default: the training gradients' checkpoint).
 * @throws DdaError on malformed or mismatched gradients, a k that is not a positive integer below
 *   the number of basis gradients, an unknown basis, or a top-k subspace that is not unique (the
 *   k-th and (k+1)-th directions have equal, non-zero variance: choose another k).
 */
export async function gradDotPcScores(train: GradientMatrix, test: GradientMatrix, options: GradDotPcOptions = {}, checkpoint: string = train.checkpoint): Promise<ScoreMatrix> {
  checkGradientPair(train, test, 'grad-dot-pc');
  const k = options.k ?? DEFAULT_PC_K;
  const basis = options.basis ?? 'train';
  if (basis !== 'train' && basis !== 'query') throw new DdaError(`grad-dot-pc: option 'basis' must be 'train' or 'query', got ${JSON.stringify(basis)}`);
  const rows = basis === 'train' ? train.rows : test.rows;
  const r = rows.length;
  if (!Number.isInteger(k) || k < 1 || k >= r) {
    throw new DdaError(
      `grad-dot-pc: k must be a positive integer below the ${r} ${basis === 'train' ? 'training' : 'test'} gradients it is taken from, got ${k}`,
      `pass a smaller k (removing ${r} directions of ${r} gradients leaves no score), or basis 'train' when there are few queries`,
    );
  }
  const n = train.rows.length;
  const m = test.rows.length;
  const products = await dotProducts(train, test, options);
  const s = products.values;
  const eig = topEigen(k, (await symmetricGram(basis === 'train' ? train : test, options)).values, r, 'grad-dot-pc');
  const values = eig.values;
  const top = values[0] as number;
  const lk = values[k - 1] as number;
  const next = values[k] as number;
  if (lk > RELATIVE_EIGEN_TIE * top && lk - next <= RELATIVE_EIGEN_TIE * top) {
    throw new DdaError(
      `grad-dot-pc: the ${k}-th and ${k + 1}-th principal directions of the ${basis} gradients have the same variance (${lk.toPrecision(6)}), so the top-${k} subspace is not unique`,
      'choose another k',
    );
  }
  const u = eig.vectors;
  const out = Float64Array.from(s);

  if (basis === 'train') {
    // S − U_k (U_kᵀ S): U is n×k, S is n×m.
    const uts = new Float64Array(k * m);
    for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) {
      const x = u[i * k + c] as number;
      for (let j = 0; j < m; j++) uts[c * m + j] = (uts[c * m + j] as number) + x * (s[i * m + j] as number);
    }
    for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) {
      const x = u[i * k + c] as number;
      for (let j = 0; j < m; j++) out[i * m + j] = (out[i * m + j] as number) - x * (uts[c * m + j] as number);
    }
  } else {
    // S − (S U_k) U_kᵀ: U is m×k.
    for (let i = 0; i < n; i++) {
      const su = new Float64Array(k);
      for (let j = 0; j < m; j++) for (let c = 0; c < k; c++) su[c] = (su[c] as number) + (s[i * m + j] as number) * (u[j * k + c] as number);
      for (let j = 0; j < m; j++) for (let c = 0; c < k; c++) out[i * m + j] = (out[i * m + j] as number) - (su[c] as number) * (u[j * k + c] as number);
    }
  }
  let removed = 0;
  let total = 0;
  for (let c = 0; c < values.length; c++) if (c < k) removed += values[c] as number;
  for (const row of rows) total += squaredNorm(row);
  const share = total > 0 ? ` (${((100 * removed) / total).toFixed(1)} % of their second moment)` : '';
  return createScoreMatrix(train.ids, test.ids, out, {
    method: 'grad-dot-pc',
    computedOver: `∇ℓ(train)ᵀ (I − V_k V_kᵀ) ∇f(test) over ${train.dim} parameters (${describeCheckpoints(train, test)}; inner products by ${products.how}), V_k the ${k} leading uncentred principal directions of the ${r} ${basis === 'train' ? 'training' : 'test'} gradients${share}${eig.iterations ? `, by ${eig.iterations} subspace iterations` : ''}; units nats² per squared parameter unit; higher = more responsible`,
    units: 'nats² per squared parameter unit',
    checkpoints: [checkpoint],
    transforms: [],
  });
}

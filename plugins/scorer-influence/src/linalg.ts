/**
 * Small dense linear algebra in float64 for the influence scorers (and TRAK): blocked Gram and
 * cross products of gradient rows, a Cholesky factorisation and solve, and the ridge-kernel
 * product `(G Gᵀ + ρI)⁻¹ G Tᵀ` that `if-exact` and `trak` are built on.
 *
 * Matrices are row-major Float64Arrays: entry (i, j) of an r×c matrix is `a[i * c + j]`.
 */
import { DdaError, FLOAT64_LOOP_HOW, kernelProducts64 } from '@dda/core';

/** Rows of equal length: float32 gradients or float64 projected features. */
export type Rows = readonly ArrayLike<number>[];

/** Rows per block in the blocked products (changes only the rounding). */
export const LINALG_BLOCK_ROWS = 128;
/** Coordinates per chunk inside a block (keeps the working set in cache). */
const DIM_CHUNK = 4096;

/**
 * Cross products `out[i * b.length + j] = a[i] · b[j]` of two sets of rows of length `dim`,
 * accumulated in float64, blocked over rows of `a` and chunks of the dimension.
 *
 * @returns Float64Array [a.length × b.length].
 */
export function crossProducts(a: Rows, b: Rows, dim: number): Float64Array {
  const n = a.length;
  const m = b.length;
  const out = new Float64Array(n * m);
  for (let i0 = 0; i0 < n; i0 += LINALG_BLOCK_ROWS) {
    const i1 = Math.min(i0 + LINALG_BLOCK_ROWS, n);
    for (let d0 = 0; d0 < dim; d0 += DIM_CHUNK) {
      const d1 = Math.min(d0 + DIM_CHUNK, dim);
      for (let i = i0; i < i1; i++) {
        const x = a[i] as ArrayLike<number>;
        for (let j = 0; j < m; j++) {
          const y = b[j] as ArrayLike<number>;
          let s = 0;
          for (let d = d0; d < d1; d++) s += (x[d] as number) * (y[d] as number);
          out[i * m + j] = (out[i * m + j] as number) + s;
        }
      }
    }
  }
  return out;
}

/**
 * The symmetric Gram matrix `K[i][j] = rows[i] · rows[j]` (n×n, both triangles filled), float64,
 * blocked like {@link crossProducts}; each pair is computed once.
 */
export function gramMatrix(rows: Rows, dim: number): Float64Array {
  const n = rows.length;
  const out = new Float64Array(n * n);
  for (let i0 = 0; i0 < n; i0 += LINALG_BLOCK_ROWS) {
    const i1 = Math.min(i0 + LINALG_BLOCK_ROWS, n);
    for (let d0 = 0; d0 < dim; d0 += DIM_CHUNK) {
      const d1 = Math.min(d0 + DIM_CHUNK, dim);
      for (let i = i0; i < i1; i++) {
        const x = rows[i] as ArrayLike<number>;
        for (let j = 0; j <= i; j++) {
          const y = rows[j] as ArrayLike<number>;
          let s = 0;
          for (let d = d0; d < d1; d++) s += (x[d] as number) * (y[d] as number);
          out[i * n + j] = (out[i * n + j] as number) + s;
        }
      }
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) out[j * n + i] = out[i * n + j] as number;
  return out;
}

/**
 * The uncentred second moment `A = Σ_i rows[i] rows[i]ᵀ` (dim×dim, lower triangle filled, upper
 * triangle zero), float64. Memory 8·dim² bytes.
 */
export function secondMomentLower(rows: Rows, dim: number): Float64Array {
  const a = new Float64Array(dim * dim);
  for (const r of rows) {
    for (let p = 0; p < dim; p++) {
      const gp = r[p] as number;
      if (gp === 0) continue;
      const off = p * dim;
      for (let q = 0; q <= p; q++) a[off + q] = (a[off + q] as number) + gp * (r[q] as number);
    }
  }
  return a;
}

/**
 * Cholesky factorisation `A = L Lᵀ` of a symmetric positive-definite n×n matrix, in place: reads
 * only the lower triangle of `a`, writes L there and zeroes the upper triangle.
 *
 * @param what - Names the caller in the error message.
 * @throws DdaError if `A` is not (numerically) positive definite, with a hint to raise the damping.
 */
export function choleskyFactor(a: Float64Array, n: number, what: string): Float64Array {
  if (a.length !== n * n) throw new DdaError(`${what}: Cholesky needs an ${n}×${n} matrix, got ${a.length} entries`);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = a[ri + j] as number;
      for (let k = 0; k < j; k++) s -= (a[ri + k] as number) * (a[rj + k] as number);
      if (i === j) {
        if (!(s > 0) || !Number.isFinite(s)) {
          throw new DdaError(
            `${what}: the ${n}×${n} system is not positive definite (pivot ${i} is ${s})`,
            'increase the damping (option damping or dampingRatio) so that H + λI is well conditioned',
          );
        }
        a[ri + i] = Math.sqrt(s);
      } else {
        a[ri + j] = s / (a[rj + j] as number);
      }
    }
    for (let j = i + 1; j < n; j++) a[ri + j] = 0;
  }
  return a;
}

/**
 * Solves `L Lᵀ X = B` in place for a Cholesky factor `l` (from {@link choleskyFactor}) and
 * `nrhs` right-hand sides stored row-major in `b` (n × nrhs). Returns `b`, now holding X.
 */
export function choleskySolve(l: Float64Array, n: number, b: Float64Array, nrhs: number): Float64Array {
  if (b.length !== n * nrhs) throw new DdaError(`Cholesky solve: right-hand side has ${b.length} entries, expected ${n}×${nrhs}`);
  // Forward: L Y = B.
  for (let i = 0; i < n; i++) {
    const bi = i * nrhs;
    for (let k = 0; k < i; k++) {
      const lik = l[i * n + k] as number;
      if (lik === 0) continue;
      const bk = k * nrhs;
      for (let c = 0; c < nrhs; c++) b[bi + c] = (b[bi + c] as number) - lik * (b[bk + c] as number);
    }
    const lii = l[i * n + i] as number;
    for (let c = 0; c < nrhs; c++) b[bi + c] = (b[bi + c] as number) / lii;
  }
  // Backward: Lᵀ X = Y.
  for (let i = n - 1; i >= 0; i--) {
    const bi = i * nrhs;
    for (let k = i + 1; k < n; k++) {
      const lki = l[k * n + i] as number;
      if (lki === 0) continue;
      const bk = k * nrhs;
      for (let c = 0; c < nrhs; c++) b[bi + c] = (b[bi + c] as number) - lki * (b[bk + c] as number);
    }
    const lii = l[i * n + i] as number;
    for (let c = 0; c < nrhs; c++) b[bi + c] = (b[bi + c] as number) / lii;
  }
  return b;
}

/** Which side {@link ridgeKernelScores} solves on: n×n (`dual`), dim×dim (`primal`), or the smaller (`auto`). */
export type KernelSolver = 'auto' | 'dual' | 'primal';

/** Options of {@link ridgeKernelScores}. */
export interface RidgeKernelOptions {
  /** Default `auto`: the smaller of nTrain and dim. Both give the same result up to rounding. */
  readonly solver?: KernelSolver;
  /** Largest linear system (n or dim) to factor; default {@link DEFAULT_MAX_SYSTEM_SIZE}. Memory is 8·size² bytes. */
  readonly maxSystemSize?: number;
  /** Names the caller in error messages (default `ridge kernel`). */
  readonly what?: string;
}

/** Default largest system {@link ridgeKernelScores} will factor (8192² float64 = 512 MiB). */
export const DEFAULT_MAX_SYSTEM_SIZE = 8192;

/** The solver {@link ridgeKernelScores} uses, after checking ρ and the system size. @throws DdaError as it. */
function ridgeSolver(n: number, dim: number, ridge: number, options: RidgeKernelOptions): 'dual' | 'primal' {
  const what = options.what ?? 'ridge kernel';
  if (!(ridge > 0) || !Number.isFinite(ridge)) {
    throw new DdaError(`${what}: the damping must be a positive finite number, got ${ridge}`, 'pass a positive damping');
  }
  const solver = options.solver === undefined || options.solver === 'auto' ? (n <= dim ? 'dual' : 'primal') : options.solver;
  const size = solver === 'dual' ? n : dim;
  const maxSize = options.maxSystemSize ?? DEFAULT_MAX_SYSTEM_SIZE;
  if (size > maxSize) {
    throw new DdaError(
      `${what}: an exact solve needs a ${size}×${size} system (${solver}; min of nTrain = ${n} and dim = ${dim}), above maxSystemSize = ${maxSize} (${((8 * size * size) / 2 ** 20).toFixed(0)} MiB)`,
      'use an approximate scorer (if-lissa, datainf, or trak with a projection), fewer training samples, or raise maxSystemSize if memory allows',
    );
  }
  return solver;
}

/**
 * The ridge-kernel scores `S = G (GᵀG + ρI)⁻¹ Tᵀ = (G Gᵀ + ρI)⁻¹ G Tᵀ` (push-through identity),
 * row-major [nTrain × nTest], where G holds the `train` rows and T the `test` rows (length `dim`).
 * `dual` factors the n×n matrix G Gᵀ + ρI (Woodbury: exact and cheap when n ≪ dim); `primal`
 * factors the dim×dim matrix GᵀG + ρI. Both in float64, exact up to rounding.
 *
 * @param ridge - ρ > 0, in the units of the squared rows.
 * @returns The scores and the solver actually used.
 * @throws DdaError if ρ is not positive, or the system is larger than `maxSystemSize`.
 */
export function ridgeKernelScores(
  train: Rows,
  test: Rows,
  dim: number,
  ridge: number,
  options: RidgeKernelOptions = {},
): { values: Float64Array; solver: 'dual' | 'primal' } {
  const what = options.what ?? 'ridge kernel';
  const solver = ridgeSolver(train.length, dim, ridge, options);
  const n = train.length;
  const m = test.length;
  if (n === 0 || m === 0) return { values: new Float64Array(n * m), solver };
  if (solver === 'dual') {
    const k = gramMatrix(train, dim);
    for (let i = 0; i < n; i++) k[i * n + i] = (k[i * n + i] as number) + ridge;
    choleskyFactor(k, n, what);
    const c = crossProducts(train, test, dim);
    return { values: choleskySolve(k, n, c, m), solver };
  }
  const a = secondMomentLower(train, dim);
  for (let p = 0; p < dim; p++) a[p * dim + p] = (a[p * dim + p] as number) + ridge;
  choleskyFactor(a, dim, what);
  const x = new Float64Array(dim * m);
  for (let j = 0; j < m; j++) {
    const t = test[j] as ArrayLike<number>;
    for (let p = 0; p < dim; p++) x[p * m + j] = t[p] as number;
  }
  choleskySolve(a, dim, x, m);
  const values = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const g = train[i] as ArrayLike<number>;
    for (let p = 0; p < dim; p++) {
      const gp = g[p] as number;
      if (gp === 0) continue;
      for (let j = 0; j < m; j++) values[i * m + j] = (values[i * m + j] as number) + gp * (x[p * m + j] as number);
    }
  }
  return { values, solver };
}

/** The eigendecomposition of a symmetric matrix, from {@link symmetricEigen}. */
export interface SymmetricEigen {
  /** Eigenvalues, in descending order. */
  readonly values: Float64Array;
  /** Orthonormal eigenvectors as the columns of an n×n row-major matrix Q: column k (`q[i * n + k]`) belongs to `values[k]`, so A = Q diag(values) Qᵀ. */
  readonly vectors: Float64Array;
}

/** Most Jacobi sweeps {@link symmetricEigen} takes before it gives up (it converges in about 10). */
const JACOBI_MAX_SWEEPS = 100;

/**
 * Eigendecomposition A = Q diag(values) Qᵀ of a symmetric n×n matrix (row-major; both triangles
 * are read and must agree) by the cyclic Jacobi method in float64: rotations zero the off-diagonal
 * entries one at a time, sweep after sweep, until every off-diagonal entry is negligible next to
 * its two diagonal entries (then set to 0). Deterministic; O(n³) per sweep, for the small
 * matrices of Kronecker factors (n up to a few hundred). Eigenvalues are returned in descending
 * order, eigenvectors as columns of `vectors`.
 *
 * @param what - Names the caller in error messages.
 * @throws DdaError if the input is not n×n, has a non-finite entry, or does not converge.
 */
export function symmetricEigen(matrix: Float64Array, n: number, what: string): SymmetricEigen {
  if (matrix.length !== n * n) throw new DdaError(`${what}: eigendecomposition needs an ${n}×${n} matrix, got ${matrix.length} entries`);
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let fro2 = 0;
  for (let k = 0; k < a.length; k++) {
    const x = a[k] as number;
    if (!Number.isFinite(x)) throw new DdaError(`${what}: the matrix to decompose has a non-finite entry (${x}) at ${Math.floor(k / n)}, ${k % n}`);
    fro2 += x * x;
  }
  let converged = fro2 === 0;
  for (let sweep = 0; sweep < JACOBI_MAX_SWEEPS && !converged; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += (a[p * n + q] as number) ** 2;
    if (off === 0 || off <= 1e-32 * fro2) {
      converged = true;
      break;
    }
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q] as number;
        if (apq === 0) continue;
        const app = a[p * n + p] as number;
        const aqq = a[q * n + q] as number;
        const g = 100 * Math.abs(apq);
        // Negligible next to both diagonal entries: set to 0 (Numerical Recipes' rule, after the first sweeps).
        if (sweep > 3 && Math.abs(app) + g === Math.abs(app) && Math.abs(aqq) + g === Math.abs(aqq)) {
          a[p * n + q] = 0;
          a[q * n + p] = 0;
          continue;
        }
        // Rotation J (J_pp = J_qq = c, J_pq = s, J_qp = −s) with (Jᵀ A J)_pq = 0.
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p] as number;
          const akq = a[k * n + q] as number;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k] as number;
          const aqk = a[q * n + k] as number;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = 0;
        a[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p] as number;
          const vkq = v[k * n + q] as number;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  if (!converged) {
    throw new DdaError(`${what}: the Jacobi eigendecomposition of a ${n}×${n} matrix did not converge in ${JACOBI_MAX_SWEEPS} sweeps`, 'check the input for extreme values (e.g. rescale the gradients)');
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => (a[j * n + j] as number) - (a[i * n + i] as number) || i - j);
  const values = Float64Array.from(order, (i) => a[i * n + i] as number);
  const vectors = new Float64Array(n * n);
  order.forEach((src, k) => {
    for (let r = 0; r < n; r++) vectors[r * n + k] = v[r * n + src] as number;
  });
  return { values, vectors };
}

/**
 * Where the influence scorers' float64 products run (option `engine` of `if-exact`, `if-lissa`,
 * `if-ekfac`): `auto` (default: the float64 GEMM of a registered dot-product kernel, onnxruntime's
 * where @dda/backend-onnxruntime is loaded, else this module's float64 loops, the reason logged
 * once), `js` (the loops), or a kernel's id (required). Changes only speed and the order of float64
 * sums, never the accumulation precision.
 */
export interface Float64EngineOptions {
  /** `auto` (default), `js`, or a dot-product kernel's id. */
  readonly engine?: string;
  /** Where a fallback reason goes (default console.warn), once per caller per process. */
  readonly log?: (line: string) => void;
}

/** Float64 products and the phrase saying where they ran (e.g. "float64 GEMM on onnxruntime-cpu"). */
export interface Float64Products {
  readonly values: Float64Array;
  readonly how: string;
}

/** {@link crossProducts} on the engine of `o.engine` ({@link Float64EngineOptions}). @throws DdaError when a kernel asked for by id cannot run. */
export async function crossProductsOn(a: Rows, b: Rows, dim: number, o: Float64EngineOptions, who: string): Promise<Float64Products> {
  const k = await kernelProducts64(a, b, dim, { engine: o.engine ?? 'auto', who, ...(o.log ? { log: o.log } : {}) });
  return k ? { values: k.values, how: k.how } : { values: crossProducts(a, b, dim), how: FLOAT64_LOOP_HOW };
}

/**
 * {@link gramMatrix} on the engine of `o.engine`; exactly symmetric (the lower triangle copied to
 * the upper, as a GEMM need not give K[i][j] and K[j][i] the same rounding).
 *
 * @throws DdaError when a kernel asked for by id cannot run.
 */
export async function gramMatrixOn(rows: Rows, dim: number, o: Float64EngineOptions, who: string): Promise<Float64Products> {
  const k = await kernelProducts64(rows, rows, dim, { engine: o.engine ?? 'auto', who, ...(o.log ? { log: o.log } : {}) });
  if (!k) return { values: gramMatrix(rows, dim), how: FLOAT64_LOOP_HOW };
  const n = rows.length;
  const g = k.values;
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[j * n + i] = g[i * n + j] as number;
  return { values: g, how: k.how };
}

/**
 * {@link ridgeKernelScores} with its dual products (the Gram matrix G Gᵀ and G Tᵀ) on the engine of
 * `options.engine` ({@link Float64EngineOptions}); the Cholesky factorisation and solve, and the
 * primal solver, stay in float64 JavaScript. Equal to it up to the order of float64 sums.
 *
 * @returns The scores, the solver used and where the products ran.
 * @throws DdaError as {@link ridgeKernelScores}, or when a kernel asked for by id cannot run.
 */
export async function ridgeKernelScoresOn(
  train: Rows,
  test: Rows,
  dim: number,
  ridge: number,
  options: RidgeKernelOptions & Float64EngineOptions = {},
): Promise<{ values: Float64Array; solver: 'dual' | 'primal'; how: string }> {
  const what = options.what ?? 'ridge kernel';
  const solver = ridgeSolver(train.length, dim, ridge, options);
  const n = train.length;
  const m = test.length;
  if (solver === 'primal' || n === 0 || m === 0) return { ...ridgeKernelScores(train, test, dim, ridge, options), how: FLOAT64_LOOP_HOW };
  const k = await gramMatrixOn(train, dim, options, what);
  for (let i = 0; i < n; i++) k.values[i * n + i] = (k.values[i * n + i] as number) + ridge;
  choleskyFactor(k.values, n, what);
  const c = await crossProductsOn(train, test, dim, options, what);
  return { values: choleskySolve(k.values, n, c.values, m), solver, how: k.how };
}

/**
 * The two-pass streamed forms ({@link StreamedFit} of @dda/core: fit passes over streamed training
 * blocks, then a score pass) of `datainf`, `if-exact`, `trackstar` and `grad-dot-pc` (training
 * basis; `if-ekfac`'s is in if-ekfac.ts). Each gives the scores of its
 * stored path (`dataInfScores`, `ifExactScores`, `trackStarScores` on all rows at once) up to float
 * rounding, from sums over training rows:
 *
 * - `datainf`: per parameter tensor l and query j, x_jl = H_l⁻¹ h_jl by DataInf's closed form
 *   (1/(nλ_l)) (n h_jl − Σ_i (g_ilᵀ h_jl) / (λ_l + ‖g_il‖²) · g_il), a sum of Sherman–Morrison
 *   terms over the training rows; with the scale-aware damping a first pass sums ‖g_il‖² for λ_l
 *   (so 2 fit passes; 1 with an absolute damping). Fit nTest × dim float64, any dim. Then
 *   score[i][j] = Σ_l g_ilᵀ x_jl.
 * - `if-exact`: the fit pass sums GᵀG (dim × dim); finalize factors GᵀG + nλI and solves
 *   x_j = H⁻¹ h_j = n (GᵀG + nλI)⁻¹ h_j; score[i][j] = g_iᵀ x_j. Only for dim ≤ maxSystemSize (the
 *   stored path then solves on the n × n side instead).
 * - `trackstar`: the fit pass sums GᵀG; finalize makes R = (1 − λ)/n GᵀG + λ/m HᵀH + εI, its
 *   Cholesky factor L, y_j = R⁻¹ h_j and h_jᵀ R⁻¹ h_j; score[i][j] = g_iᵀ y_j / √(‖L⁻¹ g_i‖² · h_jᵀ y_j).
 *   Only for dim ≤ maxSystemSize.
 * - `grad-dot-pc` (training basis): the fit pass sums GᵀG; finalize takes its k leading
 *   eigenvectors V_k; score[i][j] = g_iᵀ h_j − (g_iᵀ V_k)(V_kᵀ h_j). Only for dim ≤ 8192.
 */
import { DdaError, createScoreMatrix, type GradientMatrix, type ScoreMatrix, type StreamedFit } from '@dda/core';
import { checkGradientPair } from '@dda/scorer-grad-dot';
import {
  DEFAULT_DAMPING_RATIO, checkDampingOptions, describeBlockDamping, describeCheckpoints, describeDamping, requireTrainingRows, squaredNorm, type DampingOptions,
} from './damping.js';
import { parameterBlocks, type DataInfOptions, type ParameterBlock } from './datainf.js';
import { ifExactProvenance, type IfExactOptions } from './if-exact.js';
import { DEFAULT_PC_K, RELATIVE_EIGEN_TIE, topEigen, type GradDotPcOptions } from './grad-dot-pc.js';
import { DEFAULT_MAX_SYSTEM_SIZE, choleskyFactor, choleskySolve, crossProducts, crossProductsOn, secondMomentLower } from './linalg.js';
import { DEFAULT_TRACKSTAR_MIX, trackStarProvenance, type TrackStarOptions } from './trackstar.js';

/** A DdaError unless `fit` has `expected` entries (a fit made for other test gradients or options). */
function checkFitSize(fit: Float64Array, expected: number, what: string): void {
  if (fit.length !== expected) throw new DdaError(`${what}: the fit has ${fit.length} entries, expected ${expected} for these test gradients`, 'delete the stored fit to recompute it');
}

/** A DdaError unless `sum` has `expected` entries (partials of other shapes were summed). */
function checkSumSize(sum: Float64Array, expected: number, what: string): void {
  if (sum.length !== expected) throw new DdaError(`${what}: the summed partial statistic has ${sum.length} entries, expected ${expected}`, 'delete the stored partials to recompute them');
}

/** `values[i * m + j] = rows[i] · x[:, j]` for an x stored dim × m (row-major) or m × dim (`byQuery`). */
function rowsTimes(rows: readonly Float32Array[], x: Float64Array, offset: number, dim: number, m: number, byQuery: boolean): Float64Array {
  const out = new Float64Array(rows.length * m);
  rows.forEach((g, i) => {
    for (let j = 0; j < m; j++) {
      let s = 0;
      if (byQuery) for (let p = 0; p < dim; p++) s += (g[p] as number) * (x[offset + j * dim + p] as number);
      else for (let p = 0; p < dim; p++) s += (g[p] as number) * (x[offset + p * m + j] as number);
      out[i * m + j] = s;
    }
  });
  return out;
}

/** The fold of a fit pass that sums the second moment Σ g gᵀ of the training rows (lower triangle, dim × dim float64). */
function foldSecondMoment(what: string): StreamedFit['fold'] {
  return async (block, test) => {
    checkGradientPair(block, test, what);
    return secondMomentLower(block.rows, test.dim);
  };
}

/** The refusal of a dim × dim fit above `maxSystemSize`. */
function refuseLargeDim(what: string, maxSystemSize: number | undefined, stored: string): (dim: number) => string | undefined {
  const max = maxSystemSize ?? DEFAULT_MAX_SYSTEM_SIZE;
  return (dim) => (dim > max ? `${what}'s streamed fit is the dim × dim second moment GᵀG, and dim = ${dim} is above maxSystemSize = ${max} (${((8 * dim * dim) / 2 ** 20).toFixed(0)} MiB per copy); ${stored}` : undefined);
}

/**
 * `datainf` in passes (see the module doc). Fit passes: 2 with the scale-aware damping (pass 0:
 * Σ_i ‖g_il‖² per parameter tensor, L floats; pass 1: the Sherman–Morrison sums, nTest × dim),
 * 1 with an absolute `damping`. The fit: [λ_l (L), x_jl (nTest × dim)], λ_l = 0 for a tensor whose
 * training gradients are all zero (skipped, as the stored path does). The Sherman–Morrison sums
 * (G_l H_lᵀ, then its weighted product with G_l) and the scores run on the float64 GEMM of
 * `options.engine` ({@link crossProductsOn}: onnxruntime's double Gemm under `auto`, loops under `js`).
 */
export function dataInfStreamedFit(options: DataInfOptions = {}): StreamedFit {
  checkDampingOptions(options, 'datainf');
  const absolute = options.damping !== undefined;
  const blocksOf = (g: GradientMatrix): ParameterBlock[] => {
    if (g.parameterSizes.length === 0 && g.dim > 0) throw new DdaError('datainf: the gradients list no parameter tensors', 'fill parameterNames / parameterSizes so the rows can be split per layer');
    return parameterBlocks(g).filter((b) => b.size > 0);
  };
  const inversePass = absolute ? 0 : 1;
  const lambdasOf = (test: GradientMatrix, previous: Float64Array | null): Float64Array => {
    const blocks = blocksOf(test);
    if (absolute) return new Float64Array(blocks.length).fill(options.damping as number);
    if (!previous) throw new DdaError('datainf: the inverse pass needs the damping of the first pass (internal error)');
    checkFitSize(previous, blocks.length, 'datainf');
    return previous;
  };
  return {
    description: absolute
      ? 'fit pass: per query, H_l⁻¹ h_j for every parameter tensor l by the DataInf closed form (nTest × dim float64)'
      : 'fit pass 1: Σ ‖g_l‖² per parameter tensor (its damping λ_l); fit pass 2: per query, H_l⁻¹ h_j for every parameter tensor l by the DataInf closed form (nTest × dim float64)',
    fitPasses: absolute ? 1 : 2,
    async fold(block, test, pass, previous) {
      checkGradientPair(block, test, 'datainf');
      const blocks = blocksOf(test);
      if (pass !== inversePass) return Float64Array.from(blocks, ({ offset, size }) => block.rows.reduce((a, r) => a + squaredNorm(r, offset, offset + size), 0));
      const lambdas = lambdasOf(test, previous);
      const m = test.rows.length;
      const dim = test.dim;
      const n = block.rows.length;
      const out = new Float64Array(m * dim);
      for (const [l, { offset, size }] of blocks.entries()) {
        const lambda = lambdas[l] as number;
        if (!(lambda > 0) || n === 0) continue;
        const end = offset + size;
        // Σ_i (g_ilᵀ h_jl) w_i g_il for every query j: P = G_l H_lᵀ (n × m), then (P ∘ w)ᵀ G_l (m × size).
        const gl = block.rows.map((g) => g.subarray(offset, end));
        const p = (await crossProductsOn(gl, test.rows.map((h) => h.subarray(offset, end)), size, options, 'datainf')).values;
        const w = Float64Array.from(block.rows, (g) => 1 / (lambda + squaredNorm(g, offset, end)));
        const aT = Array.from({ length: m }, (_, j) => Float64Array.from({ length: n }, (_, i) => (p[i * m + j] as number) * (w[i] as number)));
        const glT = Array.from({ length: size }, (_, q) => Float64Array.from({ length: n }, (_, i) => (gl[i] as Float32Array)[q] as number));
        const x = (await crossProductsOn(aT, glT, n, options, 'datainf')).values;
        for (let j = 0; j < m; j++) out.set(x.subarray(j * size, (j + 1) * size), j * dim + offset);
      }
      return out;
    },
    async finalize(sum, nTrain, test, pass, previous) {
      requireTrainingRows(nTrain, 'datainf');
      const blocks = blocksOf(test);
      if (pass !== inversePass) {
        checkSumSize(sum, blocks.length, 'datainf');
        const ratio = options.dampingRatio ?? DEFAULT_DAMPING_RATIO;
        return Float64Array.from(blocks, ({ size }, l) => (ratio * (sum[l] as number)) / (nTrain * size));
      }
      const lambdas = lambdasOf(test, previous);
      const m = test.rows.length;
      const dim = test.dim;
      checkSumSize(sum, m * dim, 'datainf');
      const fit = new Float64Array(lambdas.length + m * dim);
      fit.set(lambdas);
      blocks.forEach(({ offset, size }, l) => {
        const lambda = lambdas[l] as number;
        if (!(lambda > 0)) return;
        const inv = 1 / (nTrain * lambda);
        for (let j = 0; j < m; j++) {
          const v = test.rows[j] as Float32Array;
          for (let p = offset; p < offset + size; p++) fit[lambdas.length + j * dim + p] = (nTrain * (v[p] as number) - (sum[j * dim + p] as number)) * inv;
        }
      });
      return fit;
    },
    async scoreBlock(fit, block, test, checkpoint) {
      checkGradientPair(block, test, 'datainf');
      const blocks = blocksOf(test);
      const m = test.rows.length;
      checkFitSize(fit, blocks.length + m * test.dim, 'datainf');
      const lambdas = fit.subarray(0, blocks.length);
      // Σ_l g_ilᵀ x_jl over the active tensors: the fit is 0 on the others, so one product over every coordinate.
      const x0 = blocks.length;
      const fitRows = Array.from({ length: m }, (_, j) => fit.subarray(x0 + j * test.dim, x0 + (j + 1) * test.dim));
      const { values, how } = await crossProductsOn(block.rows, fitRows, test.dim, options, 'datainf');
      const used = [...lambdas].filter((x) => x > 0);
      const skipped = blocks.length - used.length;
      return createScoreMatrix(block.ids, test.ids, values, {
        method: 'datainf',
        computedOver: `Σ_l g_trainᵀ H_l⁻¹ g_test over ${test.dim} parameters in ${blocks.length} parameter blocks${skipped ? ` (${skipped} with all-zero training gradients skipped)` : ''} (${describeCheckpoints(block, test)}), H_l = (1/n) Σ g_l g_lᵀ + λ_l I inverted by the DataInf closed form, ${describeBlockDamping(used, options)}; streamed: H_l⁻¹ g_test fitted over the training gradients in ${absolute ? 1 : 2} pass${absolute ? '' : 'es'}, then scored block by block, the products a ${how}; dimensionless; higher = more responsible`,
        units: 'dimensionless',
        checkpoints: [checkpoint],
        transforms: [],
      });
    },
  };
}

/**
 * `if-exact` in one fit pass and a score pass (see the module doc): partial = the block's GᵀG
 * (lower triangle, dim × dim float64); fit = [λ, x_j = H⁻¹ h_j (dim × nTest)]. Refused (the
 * harness stores the gradients) when dim > maxSystemSize or the option `solver` is `dual`.
 */
export function ifExactStreamedFit(options: IfExactOptions = {}): StreamedFit {
  checkDampingOptions(options, 'if-exact');
  const large = refuseLargeDim('if-exact', options.maxSystemSize, 'the stored path solves it on the n × n side');
  return {
    description: 'fit pass: Σ g gᵀ (dim × dim float64), then H⁻¹ h_j for every query (dim × nTest float64)',
    fitPasses: 1,
    refuse: (dim) => (options.solver === 'dual' ? "if-exact: the option solver = 'dual' solves on the n × n Gram matrix of every training row, which a streamed fit does not form; leave it out (auto) or pass primal" : large(dim)),
    fold: foldSecondMoment('if-exact'),
    async finalize(sum, nTrain, test) {
      requireTrainingRows(nTrain, 'if-exact');
      const dim = test.dim;
      const m = test.rows.length;
      checkSumSize(sum, dim * dim, 'if-exact');
      let trace = 0;
      for (let p = 0; p < dim; p++) trace += sum[p * dim + p] as number;
      const lambda = options.damping ?? ((options.dampingRatio ?? DEFAULT_DAMPING_RATIO) * trace) / (nTrain * dim);
      if (!(lambda > 0)) {
        throw new DdaError(`if-exact: every training gradient is zero at checkpoint '${test.checkpoint}', so the scale-aware damping is 0`, 'check the gradient computation (are the trainable parameters the right ones?), or pass an absolute damping');
      }
      const a = Float64Array.from(sum);
      for (let p = 0; p < dim; p++) a[p * dim + p] = (a[p * dim + p] as number) + nTrain * lambda;
      choleskyFactor(a, dim, 'if-exact');
      const x = new Float64Array(dim * m);
      test.rows.forEach((h, j) => {
        for (let p = 0; p < dim; p++) x[p * m + j] = h[p] as number;
      });
      choleskySolve(a, dim, x, m);
      const fit = new Float64Array(2 + dim * m);
      fit[0] = lambda;
      fit[1] = nTrain;
      for (let k = 0; k < x.length; k++) fit[2 + k] = (x[k] as number) * nTrain;
      return fit;
    },
    async scoreBlock(fit, block, test, checkpoint) {
      checkGradientPair(block, test, 'if-exact');
      const m = test.rows.length;
      checkFitSize(fit, 2 + test.dim * m, 'if-exact');
      const values = rowsTimes(block.rows, fit, 2, test.dim, m, false);
      const how = `${test.dim}×${test.dim} system, streamed: H⁻¹ g_test fitted over the training gradients in one pass, then scored block by block`;
      return createScoreMatrix(block.ids, test.ids, values, ifExactProvenance(block, test, fit[1] as number, describeDamping(fit[0] as number, options), how, checkpoint));
    },
  };
}

/**
 * `trackstar` in one fit pass and a score pass (see the module doc): partial = the block's GᵀG
 * (lower triangle, dim × dim float64); fit = [ε, n, L (dim × dim), R⁻¹ h_j (dim × nTest), h_jᵀ R⁻¹ h_j
 * (nTest)]. Refused (the harness stores the gradients) when dim > maxSystemSize.
 */
export function trackStarStreamedFit(options: TrackStarOptions = {}): StreamedFit {
  checkDampingOptions(options, 'trackstar');
  const mix = options.mix ?? DEFAULT_TRACKSTAR_MIX;
  if (!(mix >= 0 && mix <= 1)) throw new DdaError(`trackstar: option 'mix' must be in [0, 1], got ${mix}`, `pass e.g. mix = ${DEFAULT_TRACKSTAR_MIX} (the query gradients' share of the second moment)`);
  const size = (dim: number, m: number): number => 2 + dim * dim + dim * m + m;
  return {
    description: 'fit pass: Σ g gᵀ (dim × dim float64), then the Cholesky factor of R and R⁻¹ h_j for every query (dim × (dim + nTest) float64)',
    fitPasses: 1,
    refuse: refuseLargeDim('trackstar', options.maxSystemSize, 'the stored path works on the (n + m) × (n + m) side'),
    fold: foldSecondMoment('trackstar'),
    async finalize(sum, nTrain, test) {
      requireTrainingRows(nTrain, 'trackstar');
      const dim = test.dim;
      const m = test.rows.length;
      if (m === 0) throw new DdaError('trackstar: no test gradients', 'score at least one test output');
      checkSumSize(sum, dim * dim, 'trackstar');
      const wt = (1 - mix) / nTrain;
      const wq = mix / m;
      const r = new Float64Array(dim * dim);
      for (let p = 0; p < dim; p++) for (let q = 0; q <= p; q++) r[p * dim + q] = wt * (sum[p * dim + q] as number);
      for (const h of test.rows) {
        for (let p = 0; p < dim; p++) {
          const hp = wq * (h[p] as number);
          if (hp === 0) continue;
          for (let q = 0; q <= p; q++) r[p * dim + q] = (r[p * dim + q] as number) + hp * (h[q] as number);
        }
      }
      let trace = 0;
      for (let p = 0; p < dim; p++) trace += r[p * dim + p] as number;
      const eps = options.damping ?? ((options.dampingRatio ?? DEFAULT_DAMPING_RATIO) * trace) / dim;
      if (!(eps > 0)) throw new DdaError(`trackstar: every gradient is zero at checkpoint '${test.checkpoint}', so the scale-aware damping is 0`, 'check the gradient computation, or pass an absolute damping');
      for (let p = 0; p < dim; p++) r[p * dim + p] = (r[p * dim + p] as number) + eps;
      choleskyFactor(r, dim, 'trackstar');
      const y = new Float64Array(dim * m);
      test.rows.forEach((h, j) => {
        for (let p = 0; p < dim; p++) y[p * m + j] = h[p] as number;
      });
      choleskySolve(r, dim, y, m);
      const fit = new Float64Array(size(dim, m));
      fit[0] = eps;
      fit[1] = nTrain;
      fit.set(r, 2);
      fit.set(y, 2 + dim * dim);
      test.rows.forEach((h, j) => {
        let s = 0;
        for (let p = 0; p < dim; p++) s += (h[p] as number) * (y[p * m + j] as number);
        fit[2 + dim * dim + dim * m + j] = s;
      });
      return fit;
    },
    async scoreBlock(fit, block, test, checkpoint) {
      checkGradientPair(block, test, 'trackstar');
      const dim = test.dim;
      const m = test.rows.length;
      checkFitSize(fit, size(dim, m), 'trackstar');
      const yOffset = 2 + dim * dim;
      const hOffset = yOffset + dim * m;
      const q = rowsTimes(block.rows, fit, yOffset, dim, m, false);
      const z = new Float64Array(dim);
      const values = new Float64Array(block.rows.length * m);
      block.rows.forEach((g, i) => {
        // ‖L⁻¹ g‖² = gᵀ R⁻¹ g, by forward substitution.
        let gn = 0;
        for (let p = 0; p < dim; p++) {
          let s = g[p] as number;
          for (let c = 0; c < p; c++) s -= (fit[2 + p * dim + c] as number) * (z[c] as number);
          z[p] = s / (fit[2 + p * dim + p] as number);
          gn += (z[p] as number) ** 2;
        }
        const norm = Math.sqrt(Math.max(gn, 0));
        for (let j = 0; j < m; j++) {
          const denom = norm * Math.sqrt(Math.max(fit[hOffset + j] as number, 0));
          values[i * m + j] = denom > 0 ? Math.min(1, Math.max(-1, (q[i * m + j] as number) / denom)) : 0;
        }
      });
      return createScoreMatrix(block.ids, test.ids, values, trackStarProvenance(block, test, fit[1] as number, mix, fit[0] as number, options, 'streamed: R factored from Σ g gᵀ over the training gradients in one pass, then scored block by block', checkpoint));
    },
  };
}

/**
 * `grad-dot-pc` with the training basis in one fit pass and a score pass over streamed training
 * blocks ({@link StreamedFit}), equal to `gradDotPcScores` up to float rounding: the fit pass
 * sums the second moment Σ g gᵀ (dim × dim float64); finalize takes its k leading eigenvectors V_k
 * (the same subspace as the stored path's U_k on the n × n side: V_k = Gᵀ U_k Σ_k⁻¹) and V_kᵀ h_j;
 * score[i][j] = g_iᵀ h_j − (g_iᵀ V_k)(V_kᵀ h_j). Refused (the harness stores the gradients) when
 * dim is above DEFAULT_MAX_SYSTEM_SIZE (8192). Fit: [Σ of the k leading eigenvalues, trace,
 * subspace iterations, V_k (dim × k), H V_k (nTest × k)].
 */
export function gradDotPcStreamedFit(options: GradDotPcOptions = {}): StreamedFit {
  const k = options.k ?? DEFAULT_PC_K;
  if ((options.basis ?? 'train') !== 'train') throw new DdaError("grad-dot-pc: only the training basis has a streamed fit (the query basis is row-separable)");
  const size = (dim: number, m: number): number => 3 + dim * k + k * m;
  return {
    description: `fit pass: Σ g gᵀ (dim × dim float64), then its ${k} leading eigenvectors (dim × ${k} float64)`,
    fitPasses: 1,
    refuse: (dim) => (dim > DEFAULT_MAX_SYSTEM_SIZE ? `grad-dot-pc's streamed fit is the dim × dim second moment Σ g gᵀ, and dim = ${dim} is above ${DEFAULT_MAX_SYSTEM_SIZE}; the stored path decomposes the n × n Gram matrix instead` : undefined),
    fold: foldSecondMoment('grad-dot-pc'),
    async finalize(sum, nTrain, test) {
      const dim = test.dim;
      const m = test.rows.length;
      if (!Number.isInteger(k) || k < 1 || k >= nTrain) {
        throw new DdaError(`grad-dot-pc: k must be a positive integer below the ${nTrain} training gradients it is taken from, got ${k}`, `pass a smaller k (removing ${nTrain} directions of ${nTrain} gradients leaves no score), or basis 'query'`);
      }
      if (k > dim) throw new DdaError(`grad-dot-pc: k = ${k} is above the ${dim} gradient entries`, 'pass a smaller k');
      if (sum.length !== dim * dim) throw new DdaError(`grad-dot-pc: the summed second moment has ${sum.length} entries, expected ${dim * dim}`, 'delete the stored partials to recompute them');
      const a = Float64Array.from(sum);
      let trace = 0;
      for (let p = 0; p < dim; p++) {
        trace += a[p * dim + p] as number;
        for (let q = 0; q < p; q++) a[q * dim + p] = a[p * dim + q] as number;
      }
      const eig = topEigen(k, a, dim, 'grad-dot-pc');
      const top = eig.values[0] as number;
      const lk = eig.values[k - 1] as number;
      const next = k < dim ? (eig.values[k] as number) : 0;
      if (lk > RELATIVE_EIGEN_TIE * top && lk - next <= RELATIVE_EIGEN_TIE * top) {
        throw new DdaError(`grad-dot-pc: the ${k}-th and ${k + 1}-th principal directions of the train gradients have the same variance (${lk.toPrecision(6)}), so the top-${k} subspace is not unique`, 'choose another k');
      }
      const fit = new Float64Array(size(dim, m));
      for (let c = 0; c < k; c++) fit[0] = (fit[0] as number) + (eig.values[c] as number);
      fit[1] = trace;
      fit[2] = eig.iterations;
      fit.set(eig.vectors, 3);
      fit.set(rowsTimes(test.rows, eig.vectors, 0, dim, k, false), 3 + dim * k); // h_jᵀ V_k, nTest × k
      return fit;
    },
    async scoreBlock(fit, block, test, checkpoint) {
      checkGradientPair(block, test, 'grad-dot-pc');
      const dim = test.dim;
      const m = test.rows.length;
      if (fit.length !== size(dim, m)) throw new DdaError(`grad-dot-pc: the fit has ${fit.length} entries, expected ${size(dim, m)} for these test gradients`, 'delete the stored fit to recompute it');
      const gv = rowsTimes(block.rows, fit, 3, dim, k, false); // g_iᵀ V_k, block rows × k
      const hv = 3 + dim * k;
      const values = crossProducts(block.rows, test.rows, dim);
      for (let i = 0; i < block.rows.length; i++) {
        for (let j = 0; j < m; j++) {
          let s = values[i * m + j] as number;
          for (let c = 0; c < k; c++) s -= (gv[i * k + c] as number) * (fit[hv + j * k + c] as number);
          values[i * m + j] = s;
        }
      }
      const removed = fit[0] as number;
      const total = fit[1] as number;
      const share = total > 0 ? ` (${((100 * removed) / total).toFixed(1)} % of their second moment)` : '';
      const iterations = fit[2] as number;
      return createScoreMatrix(block.ids, test.ids, values, {
        method: 'grad-dot-pc',
        computedOver: `∇ℓ(train)ᵀ (I − V_k V_kᵀ) ∇f(test) over ${dim} parameters (${describeCheckpoints(block, test)}; inner products in float64), V_k the ${k} leading uncentred principal directions of the training gradients${share}${iterations ? `, by ${iterations} subspace iterations` : ''}; streamed: V_k from Σ g gᵀ over the training gradients in one pass, then scored block by block; units nats² per squared parameter unit; higher = more responsible`,
        checkpoints: [checkpoint],
        transforms: [],
      });
    },
  };
}

/**
 * `if-ekfac`: the influence function with an eigenvalue-corrected Kronecker-factored (EK-FAC)
 * inverse Hessian (George et al. 2018; Grosse et al. 2023), block-diagonal over the parameter
 * tensors.
 *
 * For every parameter tensor l of shape [out, in] (from `GradientMatrix.parameterShapes`; a vector
 * is [size, 1], a tensor of higher rank is [shape[0], rest]), with G_i the block-l gradient of
 * training sample i reshaped to out × in (row-major, as the parameter), i = 1..n:
 *
 *     A = (1/n) Σ_i G_iᵀ G_i   (in × in),     S = (1/n) Σ_i G_i G_iᵀ   (out × out)
 *     A = Q_A D_A Q_Aᵀ,  S = Q_S D_S Q_Sᵀ     (symmetric eigendecompositions, Jacobi)
 *     Λ = (1/n) Σ_i (Q_Sᵀ G_i Q_A)²           (element-wise: out × in; the eigenvalue correction)
 *     H_l = (Q_S ⊗ Q_A) diag(Λ) (Q_S ⊗ Q_A)ᵀ + λ_l I
 *
 * Λ holds the exact second moments of the training gradients along the Kronecker eigenbasis, so
 * H_l matches the damped empirical Fisher (1/n) Σ g gᵀ + λ_l I of `if-exact` on the diagonal of
 * that basis (and exactly when the block is a vector, in = 1). Then
 *
 *     score[i][j] = Σ_l ⟨ Q_Sᵀ H_jl Q_A / (Λ + λ_l),  Q_Sᵀ G_il Q_A ⟩ = Σ_l g_ilᵀ H_l⁻¹ h_jl
 *
 * with H_jl the block-l test-measurement gradient. **The Kronecker factors come from the
 * per-example gradient matrices, not from per-token activations and output gradients** (the model
 * exposes only per-example gradients): A and S are the uncentred second moments of the rows and
 * columns of G_i. Only their eigenbases matter, since Λ then sets the scale exactly.
 *
 * Sign: the negative of Koh & Liang's influence, higher = more responsible; units dimensionless
 * (as `if-exact`). Default λ_l = dampingRatio (0.1) × mean_i ‖G_il‖² / d_l, i.e. 0.1 × the mean of
 * Λ (the rotation preserves norms), as DataInf's per-layer choice; an absolute `damping` applies
 * to every block. A block whose training gradients are all zero contributes exactly 0 and is
 * skipped. Cost per block O(n·out·in·(out + in) + out³ + in³), memory (n + nTest)·out·in float64.
 */
import { DdaError, FLOAT64_LOOP_HOW, createScoreMatrix, type GradientMatrix, type ScoreMatrix, type StreamedFit } from '@dda/core';
import { checkGradientPair } from '@dda/scorer-grad-dot';
import { DEFAULT_DAMPING_RATIO, checkDampingOptions, describeBlockDamping, describeCheckpoints, requireTrainingGradients, resolveDamping, squaredNorm, type DampingOptions } from './damping.js';
import { parameterBlocks } from './datainf.js';
import { crossProducts, crossProductsOn, symmetricEigen, type Float64EngineOptions } from './linalg.js';

/** Default largest Kronecker factor (out or in) `if-ekfac` decomposes (Jacobi is O(size³)). */
export const DEFAULT_MAX_FACTOR_SIZE = 1024;

/** Options of {@link ifEkfacScores} and the `if-ekfac` scorer. */
export interface IfEkfacOptions extends DampingOptions, Float64EngineOptions {
  /** Largest factor dimension (out or in of a parameter) to decompose (default 1024). Larger gets a DdaError. */
  readonly maxFactorSize?: number;
}

/** The EK-FAC factors of one parameter block (see the module doc). */
export interface EkfacBlock {
  readonly name: string;
  /** First coordinate of the block in the flattened gradient, and its size out × in. */
  readonly offset: number;
  readonly out: number;
  readonly in: number;
  /** Q_S: out × out, eigenvectors as columns (row-major). */
  readonly qS: Float64Array;
  /** Q_A: in × in, eigenvectors as columns (row-major). */
  readonly qA: Float64Array;
  /** Λ: out × in, the second moments of the training gradients in the Kronecker eigenbasis. */
  readonly lambda: Float64Array;
  /** λ_l > 0, the damping of this block. */
  readonly damping: number;
}

/** [out, in] of a parameter from its shape: matrices as they are, vectors as [size, 1], higher ranks as [shape[0], rest]. */
export function matrixShape(shape: readonly number[]): [number, number] {
  if (shape.length === 0) return [1, 1];
  if (shape.length === 1) return [shape[0] as number, 1];
  return [shape[0] as number, shape.slice(1).reduce((a, b) => a * b, 1)];
}

/** C = Xᵀ M Y for M (r × c, at `m[off..]`), X (r × r), Y (c × c), all row-major; returns r × c. */
function rotate(m: ArrayLike<number>, off: number, x: Float64Array, y: Float64Array, r: number, c: number, tmp: Float64Array, out: Float64Array): Float64Array {
  // tmp = Xᵀ M  (r × c)
  tmp.fill(0);
  for (let a = 0; a < r; a++) {
    for (let b = 0; b < c; b++) {
      const v = m[off + a * c + b] as number;
      if (v === 0) continue;
      for (let k = 0; k < r; k++) tmp[k * c + b] = (tmp[k * c + b] as number) + (x[a * r + k] as number) * v;
    }
  }
  // out = tmp Y  (r × c)
  out.fill(0);
  for (let k = 0; k < r; k++) {
    for (let b = 0; b < c; b++) {
      const v = tmp[k * c + b] as number;
      if (v === 0) continue;
      for (let d = 0; d < c; d++) out[k * c + d] = (out[k * c + d] as number) + v * (y[b * c + d] as number);
    }
  }
  return out;
}

function shapesOf(train: GradientMatrix, test: GradientMatrix): readonly (readonly number[])[] {
  const shapes = train.parameterShapes;
  if (shapes === undefined) {
    throw new DdaError(
      'if-ekfac: the training gradients do not give the shape of their parameter tensors (GradientMatrix.parameterShapes), so the Kronecker factors cannot be formed; projected gradient rows (--projection-dim, --index, a config\'s projection:) have no tensor shapes',
      'use if-ekfac on the full gradients (without --projection-dim or --index), or a scorer that takes projected rows (grad-dot, grad-cos, tracin-cp, datainf, trak, if-exact, if-lissa, trackstar, grad-dot-pc); gradients cached by an older version without shapes must be recomputed (delete the gradients folder of the output directory)',
    );
  }
  const ts = test.parameterShapes;
  if (ts !== undefined && !(ts.length === shapes.length && ts.every((s, l) => s.join(',') === (shapes[l] as readonly number[]).join(',')))) {
    throw new DdaError('if-ekfac: training and test gradients give different parameter shapes', 'take both gradients over the same parameters');
  }
  return shapes;
}

/**
 * The EK-FAC factors of every parameter block with a non-zero training gradient (see the module doc).
 *
 * @throws DdaError on malformed gradients, missing shapes, no training gradients, invalid options,
 *   or a factor larger than `maxFactorSize`.
 */
export function ekfacFactors(train: GradientMatrix, options: IfEkfacOptions = {}, test: GradientMatrix = train): { blocks: EkfacBlock[]; skipped: number } {
  checkGradientPair(train, test, 'if-ekfac');
  checkDampingOptions(options, 'if-ekfac');
  requireTrainingGradients(train, 'if-ekfac');
  const maxFactor = options.maxFactorSize ?? DEFAULT_MAX_FACTOR_SIZE;
  if (!Number.isInteger(maxFactor) || maxFactor < 1) {
    throw new DdaError(`if-ekfac: option 'maxFactorSize' must be a positive integer, got ${maxFactor}`, `pass e.g. maxFactorSize = ${DEFAULT_MAX_FACTOR_SIZE}`);
  }
  const shapes = shapesOf(train, test);
  const n = train.rows.length;
  const blocks: EkfacBlock[] = [];
  let skipped = 0;
  for (const [l, { name, offset, size }] of parameterBlocks(train).entries()) {
    if (size === 0) continue;
    const [r, c] = matrixShape(shapes[l] as readonly number[]);
    const damping = resolveDamping(train.rows, options, offset, offset + size);
    if (!(damping > 0)) {
      skipped++; // every training gradient is zero on this block: its contribution is exactly 0
      continue;
    }
    if (Math.max(r, c) > maxFactor) {
      throw new DdaError(
        `if-ekfac: parameter '${name}' is ${r} × ${c}, a Kronecker factor above maxFactorSize = ${maxFactor}`,
        'raise maxFactorSize if time allows (the eigendecomposition is O(size³)), or use datainf / if-lissa',
      );
    }
    // A = (1/n) Σ GᵀG (c × c), S = (1/n) Σ G Gᵀ (r × r).
    const fa = new Float64Array(c * c);
    const fs = new Float64Array(r * r);
    for (const row of train.rows) {
      for (let a = 0; a < r; a++) {
        const ra = offset + a * c;
        for (let p = 0; p < c; p++) {
          const gp = row[ra + p] as number;
          if (gp === 0) continue;
          for (let q = 0; q < c; q++) fa[p * c + q] = (fa[p * c + q] as number) + gp * (row[ra + q] as number);
        }
        for (let b = 0; b <= a; b++) {
          const rb = offset + b * c;
          let s = 0;
          for (let p = 0; p < c; p++) s += (row[ra + p] as number) * (row[rb + p] as number);
          fs[a * r + b] = (fs[a * r + b] as number) + s;
        }
      }
    }
    for (let a = 0; a < r; a++) for (let b = 0; b < a; b++) fs[b * r + a] = fs[a * r + b] as number;
    for (let k = 0; k < fa.length; k++) fa[k] = (fa[k] as number) / n;
    for (let k = 0; k < fs.length; k++) fs[k] = (fs[k] as number) / n;
    const qA = symmetricEigen(fa, c, `if-ekfac (${name}, A)`).vectors;
    const qS = symmetricEigen(fs, r, `if-ekfac (${name}, S)`).vectors;
    const lambda = new Float64Array(size);
    const tmp = new Float64Array(size);
    const rot = new Float64Array(size);
    for (const row of train.rows) {
      rotate(row, offset, qS, qA, r, c, tmp, rot);
      for (let k = 0; k < size; k++) lambda[k] = (lambda[k] as number) + (rot[k] as number) ** 2 / n;
    }
    blocks.push({ name, offset, out: r, in: c, qS, qA, lambda, damping });
  }
  return { blocks, skipped };
}

/**
 * EK-FAC influence scores [nTrain × nTest] (see the module doc for the formula, sign and units).
 *
 * @param train - Per-example training-loss gradients with `parameterShapes` (also define the factors).
 * @param test - Per-example test-measurement gradients over the same parameters.
 * @param checkpoint - Recorded in the provenance (default: the training gradients' checkpoint).
 * @throws DdaError as {@link ekfacFactors}.
 */
export function ifEkfacScores(
  train: GradientMatrix,
  test: GradientMatrix,
  options: IfEkfacOptions = {},
  checkpoint: string = train.checkpoint,
): ScoreMatrix {
  const { blocks, skipped } = ekfacFactors(train, options, test);
  const n = train.rows.length;
  const m = test.rows.length;
  const out = new Float64Array(n * m);
  for (const b of blocks) {
    const size = b.out * b.in;
    const tmp = new Float64Array(size);
    const project = (rows: readonly Float32Array[], scale: boolean): Float64Array[] =>
      rows.map((row) => {
        const z = rotate(row, b.offset, b.qS, b.qA, b.out, b.in, tmp, new Float64Array(size));
        if (scale) for (let k = 0; k < size; k++) z[k] = (z[k] as number) / ((b.lambda[k] as number) + b.damping);
        return z;
      });
    const s = crossProducts(project(train.rows, false), project(test.rows, true), size);
    for (let k = 0; k < out.length; k++) out[k] = (out[k] as number) + (s[k] as number);
  }
  const lam = describeBlockDamping(blocks.map((b) => b.damping), options);
  return createScoreMatrix(train.ids, test.ids, out, {
    method: 'if-ekfac',
    computedOver: `Σ_l g_trainᵀ H_l⁻¹ g_test over ${train.dim} parameters in ${blocks.length} parameter blocks${skipped ? ` (${skipped} with all-zero training gradients skipped)` : ''} (${describeCheckpoints(train, test)}), H_l = EK-FAC of the ${n} training gradients: Kronecker eigenbases of A = mean GᵀG and S = mean G Gᵀ from the per-example gradient matrices (not per-token statistics), eigenvalue-corrected (Λ = mean (Q_Sᵀ G Q_A)²), ${lam}; dimensionless; higher = more responsible`,
    units: 'dimensionless',
    checkpoints: [checkpoint],
    transforms: [],
  });
}

/**
 * Q_Sᵀ G_i Q_A for every row i (G_i its block at `offset`, r × c row-major), as two float64 products
 * on the engine of `o` ({@link crossProductsOn}): T = [G_i] Q_A over the rows' r·N sub-rows, then
 * Q_Sᵀ T_i over their columns. Returns [rows.length × r·c], each r × c row-major (as {@link rotate}).
 */
async function rotateRows(rows: readonly ArrayLike<number>[], offset: number, qS: Float64Array, qA: Float64Array, r: number, c: number, o: Float64EngineOptions): Promise<Float64Array> {
  const n = rows.length;
  const size = r * c;
  const sub: ArrayLike<number>[] = [];
  for (const row of rows) for (let a = 0; a < r; a++) sub.push(subRow(row, offset + a * c, c));
  const colsA = columnsOf(qA, c);
  const t = (await crossProductsOn(sub, colsA, c, o, 'if-ekfac')).values; // [(i, a) × k] = (G_i Q_A)[a][k]
  const tCols: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < c; d++) {
      const col = new Float64Array(r);
      for (let a = 0; a < r; a++) col[a] = t[(i * r + a) * c + d] as number;
      tCols.push(col);
    }
  }
  const u = (await crossProductsOn(tCols, columnsOf(qS, r), r, o, 'if-ekfac')).values; // [(i, d) × k] = (Q_Sᵀ T_i)[k][d]
  const out = new Float64Array(n * size);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < c; d++) {
      const from = (i * c + d) * r;
      for (let k = 0; k < r; k++) out[i * size + k * c + d] = u[from + k] as number;
    }
  }
  return out;
}

/** `row[at .. at + len)` as a view where the row is a typed array, else a copy. */
function subRow(row: ArrayLike<number>, at: number, len: number): ArrayLike<number> {
  if (row instanceof Float32Array || row instanceof Float64Array) return row.subarray(at, at + len);
  return Float64Array.from({ length: len }, (_, k) => row[at + k] as number);
}

/** The columns of an n × n row-major matrix, each as a row. */
function columnsOf(q: Float64Array, n: number): Float64Array[] {
  return Array.from({ length: n }, (_, k) => Float64Array.from({ length: n }, (_, a) => q[a * n + k] as number));
}

/** One parameter block of the streamed EK-FAC fit: where it is and its out × in shape. */
interface EkfacLayout {
  readonly name: string;
  readonly offset: number;
  readonly out: number;
  readonly in: number;
}

/** The parameter blocks of `g` with a non-zero size, shaped; a DdaError for a factor above `maxFactor`. */
function ekfacLayout(g: GradientMatrix, shapes: readonly (readonly number[])[], maxFactor: number): EkfacLayout[] {
  const out: EkfacLayout[] = [];
  for (const [l, { name, offset, size }] of parameterBlocks(g).entries()) {
    if (size === 0) continue;
    const [r, c] = matrixShape(shapes[l] as readonly number[]);
    if (Math.max(r, c) > maxFactor) {
      throw new DdaError(`if-ekfac: parameter '${name}' is ${r} × ${c}, a Kronecker factor above maxFactorSize = ${maxFactor}`, 'raise maxFactorSize if time allows (the eigendecomposition is O(size³)), or use datainf / if-lissa');
    }
    out.push({ name, offset, out: r, in: c });
  }
  return out;
}

/**
 * `if-ekfac` in two fit passes and a score pass over streamed training blocks ({@link StreamedFit}),
 * kronfluence's phases (covariance, eigendecomposition, eigenvalue correction, scores), equal to
 * {@link ifEkfacScores} up to float rounding:
 *
 * - fit pass 1 sums, per parameter tensor l, ‖G_il‖² (its damping λ_l), Σ G_ilᵀ G_il (in × in) and
 *   Σ G_il G_ilᵀ (out × out); finalize: λ_l and the eigenbases Q_A, Q_S of their means (Jacobi);
 * - fit pass 2 sums (Q_Sᵀ G_il Q_A)² (out × in); finalize: Λ = its mean, and for every query
 *   z_jl = (Q_Sᵀ H_jl Q_A) / (Λ + λ_l);
 * - the score pass: score[i][j] = Σ_l ⟨Q_Sᵀ G_il Q_A, z_jl⟩.
 *
 * The factor sums, rotations and score products run on the float64 GEMM of `options.engine`
 * ({@link Float64EngineOptions}: onnxruntime's double Gemm under `auto` where it is loaded, the
 * float64 loops under `js`); the Jacobi eigendecompositions stay in JavaScript.
 *
 * Memory: the factors (Σ_l out² + in²) and the fit nTest × dim float64. A tensor whose training
 * gradients are all zero is skipped (λ_l = 0), as in the stored path (but a factor above
 * maxFactorSize is refused here even for such a tensor, which the stored path skips). Where A or S has a repeated
 * non-zero eigenvalue the eigenbasis is not unique and the two paths may pick different ones.
 */
export function ifEkfacStreamedFit(options: IfEkfacOptions = {}): StreamedFit {
  checkDampingOptions(options, 'if-ekfac');
  const maxFactor = options.maxFactorSize ?? DEFAULT_MAX_FACTOR_SIZE;
  if (!Number.isInteger(maxFactor) || maxFactor < 1) throw new DdaError(`if-ekfac: option 'maxFactorSize' must be a positive integer, got ${maxFactor}`, `pass e.g. maxFactorSize = ${DEFAULT_MAX_FACTOR_SIZE}`);
  const layoutOf = (train: GradientMatrix, test: GradientMatrix): EkfacLayout[] => {
    checkGradientPair(train, test, 'if-ekfac');
    return ekfacLayout(train, shapesOf(train, test), maxFactor);
  };
  /** Entries per block: pass-1 partial 1 + in² + out², pass-1 fit 1 + out² + in², final fit 1 + out² + in² + nTest·out·in. */
  const sizes = (b: EkfacLayout, m: number): { partial: number; factors: number; fit: number } => ({ partial: 1 + b.in * b.in + b.out * b.out, factors: 1 + b.out * b.out + b.in * b.in, fit: 1 + b.out * b.out + b.in * b.in + m * b.out * b.in });
  const total = (layout: readonly EkfacLayout[], m: number, k: 'partial' | 'factors' | 'fit'): number => layout.reduce((a, b) => a + sizes(b, m)[k], 0);
  /** Each block's damping, Q_S and Q_A from a pass-1 fit or the final fit (the same prefix). */
  const factorsOf = (fit: Float64Array, layout: readonly EkfacLayout[], m: number, final: boolean): { damping: number; qS: Float64Array; qA: Float64Array; z: Float64Array }[] => {
    let off = 0;
    return layout.map((b) => {
      const s = sizes(b, m);
      const damping = fit[off] as number;
      const qS = fit.subarray(off + 1, off + 1 + b.out * b.out);
      const qA = fit.subarray(off + 1 + b.out * b.out, off + s.factors);
      const z = final ? fit.subarray(off + s.factors, off + s.fit) : new Float64Array(0);
      off += final ? s.fit : s.factors;
      return { damping, qS, qA, z };
    });
  };
  return {
    description: 'fit pass 1: per parameter tensor, Σ ‖G‖², Σ GᵀG and Σ G Gᵀ (Σ_l in² + out² float64), then their eigenbases; fit pass 2: Σ (Q_Sᵀ G Q_A)² (dim float64), then (Q_Sᵀ H_j Q_A) / (Λ + λ) for every query (nTest × dim float64)',
    fitPasses: 2,
    async fold(block, test, pass, previous) {
      const layout = layoutOf(block, test);
      const m = test.rows.length;
      if (pass === 0) {
        const out = new Float64Array(total(layout, m, 'partial'));
        const n = block.rows.length;
        let off = 0;
        for (const b of layout) {
          const { out: r, in: c, offset } = b;
          for (const row of block.rows) out[off] = (out[off] as number) + squaredNorm(row, offset, offset + r * c);
          // Σ_i G_iᵀ G_i = Mᵀ M with M the rows' r·n sub-rows stacked (n·r × c): products of M's columns.
          const mCols = Array.from({ length: c }, (_, p) => {
            const col = new Float64Array(n * r);
            block.rows.forEach((row, i) => {
              for (let a = 0; a < r; a++) col[i * r + a] = row[offset + a * c + p] as number;
            });
            return col;
          });
          out.set((await crossProductsOn(mCols, mCols, n * r, options, 'if-ekfac')).values, off + 1);
          // Σ_i G_i G_iᵀ = W Wᵀ with W's row a the rows' a-th sub-rows side by side (r × n·c).
          const wRows = Array.from({ length: r }, (_, a) => {
            const w = new Float64Array(n * c);
            block.rows.forEach((row, i) => w.set(row.subarray(offset + a * c, offset + (a + 1) * c), i * c));
            return w;
          });
          out.set((await crossProductsOn(wRows, wRows, n * c, options, 'if-ekfac')).values, off + 1 + c * c);
          off += sizes(b, m).partial;
        }
        return out;
      }
      if (!previous) throw new DdaError('if-ekfac: the eigenvalue-correction pass needs the factors of the first pass (internal error)');
      if (previous.length !== total(layout, m, 'factors')) throw new DdaError(`if-ekfac: the fit of pass 1 has ${previous.length} entries, expected ${total(layout, m, 'factors')}`, 'delete the stored fit to recompute it');
      const out = new Float64Array(test.dim);
      const factors = factorsOf(previous, layout, m, false);
      for (const [l, b] of layout.entries()) {
        const f = factors[l] as (typeof factors)[number];
        if (!(f.damping > 0)) continue;
        const size = b.out * b.in;
        const rot = await rotateRows(block.rows, b.offset, f.qS, f.qA, b.out, b.in, options);
        for (let i = 0; i < block.rows.length; i++) {
          for (let k = 0; k < size; k++) out[b.offset + k] = (out[b.offset + k] as number) + (rot[i * size + k] as number) ** 2;
        }
      }
      return out;
    },
    async finalize(sum, nTrain, test, pass, previous) {
      if (!(nTrain > 0)) throw new DdaError('if-ekfac: no training gradients, so the Hessian H = (1/n) Σ g gᵀ + λI cannot be estimated', 'score at least one training sample');
      const layout = layoutOf(test, test);
      const m = test.rows.length;
      if (pass === 0) {
        if (sum.length !== total(layout, m, 'partial')) throw new DdaError(`if-ekfac: the summed statistic of pass 1 has ${sum.length} entries, expected ${total(layout, m, 'partial')}`, 'delete the stored partials to recompute them');
        const fit = new Float64Array(total(layout, m, 'factors'));
        let off = 0;
        let at = 0;
        for (const b of layout) {
          const { out: r, in: c } = b;
          const damping = options.damping ?? ((options.dampingRatio ?? DEFAULT_DAMPING_RATIO) * (sum[off] as number)) / (nTrain * r * c);
          fit[at] = damping;
          if (damping > 0) {
            const fa = Float64Array.from(sum.subarray(off + 1, off + 1 + c * c), (x) => x / nTrain);
            const fs = Float64Array.from(sum.subarray(off + 1 + c * c, off + 1 + c * c + r * r), (x) => x / nTrain);
            for (let a = 0; a < r; a++) for (let bb = 0; bb < a; bb++) fs[bb * r + a] = fs[a * r + bb] as number;
            fit.set(symmetricEigen(fs, r, `if-ekfac (${b.name}, S)`).vectors, at + 1);
            fit.set(symmetricEigen(fa, c, `if-ekfac (${b.name}, A)`).vectors, at + 1 + r * r);
          }
          off += sizes(b, m).partial;
          at += sizes(b, m).factors;
        }
        return fit;
      }
      if (!previous || previous.length !== total(layout, m, 'factors')) throw new DdaError('if-ekfac: the eigenvalue-correction pass needs the factors of the first pass (internal error)');
      if (sum.length !== test.dim) throw new DdaError(`if-ekfac: the summed statistic of pass 2 has ${sum.length} entries, expected ${test.dim}`, 'delete the stored partials to recompute them');
      const factors = factorsOf(previous, layout, m, false);
      const fit = new Float64Array(total(layout, m, 'fit'));
      const rotations: { b: EkfacLayout; f: (typeof factors)[number]; at: number }[] = [];
      let at = 0;
      layout.forEach((b, l) => {
        const f = factors[l] as (typeof factors)[number];
        const s = sizes(b, m);
        fit[at] = f.damping;
        fit.set(f.qS, at + 1);
        fit.set(f.qA, at + 1 + b.out * b.out);
        if (f.damping > 0) rotations.push({ b, f, at: at + s.factors });
        at += s.fit;
      });
      for (const { b, f, at: z0 } of rotations) {
        const size = b.out * b.in;
        const rot = await rotateRows(test.rows, b.offset, f.qS, f.qA, b.out, b.in, options);
        for (let j = 0; j < m; j++) {
          const z = z0 + j * size;
          for (let k = 0; k < size; k++) fit[z + k] = (rot[j * size + k] as number) / ((sum[b.offset + k] as number) / nTrain + f.damping);
        }
      }
      return fit;
    },
    async scoreBlock(fit, block, test, checkpoint) {
      const layout = layoutOf(block, test);
      const m = test.rows.length;
      if (fit.length !== total(layout, m, 'fit')) throw new DdaError(`if-ekfac: the fit has ${fit.length} entries, expected ${total(layout, m, 'fit')} for these test gradients`, 'delete the stored fit to recompute it');
      const factors = factorsOf(fit, layout, m, true);
      const values = new Float64Array(block.rows.length * m);
      let how = FLOAT64_LOOP_HOW;
      for (const [l, b] of layout.entries()) {
        const f = factors[l] as (typeof factors)[number];
        if (!(f.damping > 0)) continue;
        const size = b.out * b.in;
        const rot = await rotateRows(block.rows, b.offset, f.qS, f.qA, b.out, b.in, options);
        const rotRows = block.rows.map((_, i) => rot.subarray(i * size, (i + 1) * size));
        const zRows = Array.from({ length: m }, (_, j) => f.z.subarray(j * size, (j + 1) * size));
        const p = await crossProductsOn(rotRows, zRows, size, options, 'if-ekfac');
        how = p.how;
        for (let k = 0; k < values.length; k++) values[k] = (values[k] as number) + (p.values[k] as number);
      }
      const used = factors.filter((f) => f.damping > 0).map((f) => f.damping);
      const skipped = layout.length - used.length;
      return createScoreMatrix(block.ids, test.ids, values, {
        method: 'if-ekfac',
        computedOver: `Σ_l g_trainᵀ H_l⁻¹ g_test over ${test.dim} parameters in ${used.length} parameter blocks${skipped ? ` (${skipped} with all-zero training gradients skipped)` : ''} (${describeCheckpoints(block, test)}), H_l = EK-FAC of the training gradients: Kronecker eigenbases of A = mean GᵀG and S = mean G Gᵀ from the per-example gradient matrices (not per-token statistics), eigenvalue-corrected (Λ = mean (Q_Sᵀ G Q_A)²), ${describeBlockDamping(used, options)}; streamed: factors, eigenvalue correction and scores in three passes over the training gradients, their products a ${how}; dimensionless; higher = more responsible`,
        units: 'dimensionless',
        checkpoints: [checkpoint],
        transforms: [],
      });
    },
  };
}

import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom } from '@dda/core';
import { choleskyFactor, choleskySolve, crossProducts, gramMatrix, ridgeKernelScores, symmetricEigen } from '@dda/scorer-influence';
import { gaussSolve, randomRows } from './helpers.js';

describe('linalg', () => {
  it('factors and solves a small SPD system exactly', () => {
    // A = L Lᵀ with L = [[2,0,0],[1,3,0],[-1,2,1]]
    const a = Float64Array.from([4, 2, -2, 2, 10, 5, -2, 5, 6]);
    const l = choleskyFactor(a, 3, 'test');
    expect(Array.from(l)).toEqual([2, 0, 0, 1, 3, 0, -1, 2, 1]);
    // A x = b for x = [1, -1, 2] and x = [0, 1, 0] (two right-hand sides, row-major 3×2).
    const b = Float64Array.from([4 - 2 - 4, 2, 2 - 10 + 10, 10, -2 - 5 + 12, 5]);
    const x = choleskySolve(l, 3, b, 2);
    [1, 0, -1, 1, 2, 0].forEach((v, k) => expect(x[k]).toBeCloseTo(v, 12));
  });

  it('rejects a matrix that is not positive definite, saying to raise the damping', () => {
    expect(() => choleskyFactor(Float64Array.from([1, 2, 2, 1]), 2, 'if-exact')).toThrow(DdaError);
    expect(() => choleskyFactor(Float64Array.from([1, 2, 2, 1]), 2, 'if-exact')).toThrow(/not positive definite.*increase the damping/);
  });

  it('computes blocked Gram and cross products equal to naive loops, past a block and a chunk', () => {
    const rng = new SeededRandom(3);
    const rows = randomRows(rng, 130, 4100).map((r) => Float32Array.from(r));
    const other = randomRows(rng, 3, 4100).map((r) => Float32Array.from(r));
    const k = gramMatrix(rows, 4100);
    const c = crossProducts(rows, other, 4100);
    const dot = (x: Float32Array, y: Float32Array): number => x.reduce((s, v, p) => s + v * y[p]!, 0);
    for (const [i, j] of [[0, 0], [129, 3], [3, 129], [128, 127], [64, 65]] as const) {
      expect(k[i * 130 + j]).toBeCloseTo(dot(rows[i]!, rows[j]!), 8);
    }
    for (let i = 0; i < 130; i += 43) for (let j = 0; j < 3; j++) expect(c[i * 3 + j]).toBeCloseTo(dot(rows[i]!, other[j]!), 8);
  });

  it('gives the same ridge-kernel scores on the dual and primal sides, equal to a naive solve', () => {
    const rng = new SeededRandom(11);
    for (const [n, d] of [[4, 7], [9, 5]] as const) {
      const g = randomRows(rng, n, d);
      const t = randomRows(rng, 3, d);
      const rho = 0.3;
      const dual = ridgeKernelScores(g, t, d, rho, { solver: 'dual' });
      const primal = ridgeKernelScores(g, t, d, rho, { solver: 'primal' });
      expect(dual.solver).toBe('dual');
      expect(primal.solver).toBe('primal');
      expect(ridgeKernelScores(g, t, d, rho).solver).toBe(n <= d ? 'dual' : 'primal');
      // Naive: S = G (GᵀG + ρI)⁻¹ Tᵀ.
      const a = Array.from({ length: d }, (_, p) => Array.from({ length: d }, (_, q) => g.reduce((s, r) => s + r[p]! * r[q]!, 0) + (p === q ? rho : 0)));
      const xs = t.map((v) => gaussSolve(a, v));
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < 3; j++) {
          const want = g[i]!.reduce((s, gp, p) => s + gp * xs[j]![p]!, 0);
          expect(dual.values[i * 3 + j]).toBeCloseTo(want, 10);
          expect(primal.values[i * 3 + j]).toBeCloseTo(want, 10);
        }
      }
    }
  });

  it('refuses a non-positive ridge and a system above maxSystemSize', () => {
    const g = [[1, 0], [0, 1], [1, 1]];
    expect(() => ridgeKernelScores(g, g, 2, 0)).toThrow(/damping must be a positive/);
    expect(() => ridgeKernelScores(g, g, 2, 1, { solver: 'dual', maxSystemSize: 2 })).toThrow(/3×3 system.*maxSystemSize = 2.*if-lissa, datainf/);
  });

  it('decomposes a 2×2 symmetric matrix exactly: [[2,1],[1,2]] has eigenvalues 3 and 1', () => {
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2, 'test');
    expect(values[0]).toBeCloseTo(3, 15);
    expect(values[1]).toBeCloseTo(1, 15);
    // Columns ±[1, 1]/√2 and ±[1, −1]/√2.
    expect(Math.abs(vectors[0]!)).toBeCloseTo(Math.SQRT1_2, 15);
    expect(vectors[0]! * vectors[2]!).toBeCloseTo(0.5, 15);
    expect(vectors[1]! * vectors[3]!).toBeCloseTo(-0.5, 15);
  });

  it('gives A Q = Q D with orthonormal Q and descending eigenvalues, for full-rank, rank-deficient and repeated spectra', () => {
    const rng = new SeededRandom(5);
    const cases: [number, Float64Array][] = [];
    for (const [n, k] of [[7, 12], [40, 6], [172, 30]] as const) {
      // A = Σ_i x_i x_iᵀ from k random vectors: rank min(n, k).
      const xs = randomRows(rng, k, n);
      const a = new Float64Array(n * n);
      for (const x of xs) for (let p = 0; p < n; p++) for (let q = 0; q < n; q++) a[p * n + q] = a[p * n + q]! + x[p]! * x[q]!;
      cases.push([n, a]);
    }
    const eye = new Float64Array(16);
    for (let i = 0; i < 4; i++) eye[i * 4 + i] = 2;
    cases.push([4, eye], [3, new Float64Array(9)]);
    for (const [n, a] of cases) {
      const { values, vectors: q } = symmetricEigen(a, n, 'test');
      let scale = 0;
      for (const x of a) scale = Math.max(scale, Math.abs(x));
      const tol = 1e-11 * Math.max(scale, 1);
      for (let k = 1; k < n; k++) expect(values[k]!).toBeLessThanOrEqual(values[k - 1]!);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < n; k++) {
          let aq = 0;
          let qtq = 0;
          for (let p = 0; p < n; p++) {
            aq += a[i * n + p]! * q[p * n + k]!;
            qtq += q[p * n + i]! * q[p * n + k]!;
          }
          expect(Math.abs(aq - q[i * n + k]! * values[k]!)).toBeLessThan(tol);
          expect(Math.abs(qtq - (i === k ? 1 : 0))).toBeLessThan(1e-12);
        }
      }
    }
    // Deterministic: the same input gives bit-identical output.
    const [n, a] = cases[1]!;
    expect(Array.from(symmetricEigen(a, n, 't').vectors)).toEqual(Array.from(symmetricEigen(a, n, 't').vectors));
  });

  it('rejects a malformed or non-finite matrix', () => {
    expect(() => symmetricEigen(new Float64Array(3), 2, 'if-ekfac')).toThrow(/needs an 2×2 matrix/);
    expect(() => symmetricEigen(Float64Array.from([1, NaN, NaN, 1]), 2, 'if-ekfac')).toThrow(/non-finite entry/);
  });
});

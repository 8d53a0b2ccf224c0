import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom } from '@dda/core';
import { choleskyFactor, choleskySolve, crossProducts, gramMatrix, ridgeKernelScores } from '@dda/scorer-influence';
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
});

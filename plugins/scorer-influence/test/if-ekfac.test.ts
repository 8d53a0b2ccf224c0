import { describe, expect, it } from 'vitest';
import { SeededRandom, scorers, type GradientMatrix } from '@dda/core';
import { choleskyFactor, choleskySolve, ekfacFactors, ifEkfacScores, ifExactScores } from '@dda/scorer-influence';
import { input, randomRows } from './helpers.js';

/** A gradient matrix from plain rows with the given parameter shapes. */
function shaped(rows: number[][], prefix: string, shapes: number[][], checkpoint = 'epoch-1'): GradientMatrix {
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  return {
    ids: rows.map((_, i) => `${prefix}${i}`),
    dim: sizes.reduce((a, b) => a + b, 0),
    rows: rows.map((r) => Float32Array.from(r)),
    parameterNames: shapes.map((_, l) => `layer${l}.lora`),
    parameterSizes: sizes,
    parameterShapes: shapes,
    checkpoint,
  };
}

/** The columns of block l of a gradient matrix, as a one-block gradient matrix (for if-exact per block). */
function block(g: GradientMatrix, l: number): GradientMatrix {
  const offset = g.parameterSizes.slice(0, l).reduce((a, b) => a + b, 0);
  const size = g.parameterSizes[l]!;
  return { ...g, dim: size, rows: g.rows.map((r) => r.slice(offset, offset + size)), parameterNames: [g.parameterNames[l]!], parameterSizes: [size], parameterShapes: [g.parameterShapes![l]!] };
}

describe('if-ekfac', () => {
  it('gives the hand-computed answer when the factors are diagonal', () => {
    // G_1 = [[1,0],[0,0]], G_2 = [[0,0],[0,2]]: A = S = diag(0.5, 2), so the eigenbasis is the
    // standard one and Λ = mean G² = [[0.5,0],[0,2]]. With λ = 0.5: H = diag(1, 0.5, 0.5, 2.5).
    // Test gradient [[1,1],[1,1]]: score_1 = 1·1/1 = 1, score_2 = 2·1/2.5 = 0.8.
    const train = shaped([[1, 0, 0, 0], [0, 0, 0, 2]], 'z', [[2, 2]]);
    const test = shaped([[1, 1, 1, 1]], 'e', [[2, 2]]);
    const m = ifEkfacScores(train, test, { damping: 0.5 });
    expect(m.values[0]).toBeCloseTo(1, 14);
    expect(m.values[1]).toBeCloseTo(0.8, 14);
    expect(m.provenance).toMatchObject({ method: 'if-ekfac', checkpoints: ['epoch-1'], transforms: [] });
    expect(m.provenance.computedOver).toMatch(/per-example gradient matrices \(not per-token statistics\)/);
  });

  it('equals a dense computation of the same preconditioner, built explicitly and inverted by Cholesky', () => {
    const rng = new SeededRandom(31);
    const shapes = [[3, 4], [2, 5], [4]];
    const dim = 12 + 10 + 4;
    const tr = randomRows(rng, 6, dim);
    const te = randomRows(rng, 3, dim);
    const train = shaped(tr, 'z', shapes);
    const test = shaped(te, 'e', shapes);
    const got = ifEkfacScores(train, test).values;
    const { blocks } = ekfacFactors(train);
    expect(blocks.map((b) => [b.out, b.in])).toEqual([[3, 4], [2, 5], [4, 1]]);
    const want = new Float64Array(6 * 3);
    for (const b of blocks) {
      const size = b.out * b.in;
      // K = Q_S ⊗ Q_A (row-major vec): K[(a,c),(p,q)] = Q_S[a][p]·Q_A[c][q]; H = K diag(Λ) Kᵀ + λI.
      const k = (row: number, col: number): number =>
        b.qS[Math.floor(row / b.in) * b.out + Math.floor(col / b.in)]! * b.qA[(row % b.in) * b.in + (col % b.in)]!;
      const h = new Float64Array(size * size);
      for (let r = 0; r < size; r++) {
        for (let c = 0; c < size; c++) {
          let s = r === c ? b.damping : 0;
          for (let e = 0; e < size; e++) s += k(r, e) * b.lambda[e]! * k(c, e);
          h[r * size + c] = s;
        }
      }
      choleskyFactor(h, size, 'test');
      const x = new Float64Array(size * 3);
      te.forEach((t, j) => {
        for (let p = 0; p < size; p++) x[p * 3 + j] = t[b.offset + p]!;
      });
      choleskySolve(h, size, x, 3);
      tr.forEach((g, i) => {
        for (let j = 0; j < 3; j++) for (let p = 0; p < size; p++) want[i * 3 + j] = want[i * 3 + j]! + g[b.offset + p]! * x[p * 3 + j]!;
      });
      // Λ is the exact second moment along the eigenbasis: Σ Λ = mean ‖G‖² (the rotation keeps norms).
      const meanSq = tr.reduce((s, g) => s + g.slice(b.offset, b.offset + size).reduce((t, v) => t + v * v, 0), 0) / 6;
      expect(b.lambda.reduce((s, v) => s + v, 0)).toBeCloseTo(meanSq, 10);
      // Default damping: 0.1 × mean ‖G‖² / d.
      expect(b.damping).toBeCloseTo((0.1 * meanSq) / size, 12);
    }
    want.forEach((w, idx) => expect(got[idx]).toBeCloseTo(w, 10));
  });

  it('equals the block-diagonal if-exact answer, with the same damping, when every block is a vector (in = 1)', () => {
    const rng = new SeededRandom(8);
    const shapes = [[5], [3, 1]];
    const tr = randomRows(rng, 7, 8);
    const te = randomRows(rng, 2, 8);
    const train = shaped(tr, 'z', shapes);
    const test = shaped(te, 'e', shapes);
    const got = ifEkfacScores(train, test, { damping: 0.3 }).values;
    const want = new Float64Array(14);
    for (const l of [0, 1]) {
      const v = ifExactScores(block(train, l), block(test, l), { damping: 0.3, solver: 'primal' }).values;
      v.forEach((x, k) => (want[k] = want[k]! + x));
    }
    want.forEach((w, k) => expect(got[k]).toBeCloseTo(w, 10));
  });

  it('is deterministic, and a block whose training gradients are all zero contributes nothing', () => {
    const rng = new SeededRandom(4);
    // Block 0 ([2, 3]) is all zero in every training gradient (as LoRA A at B = 0); block 1 is [3, 2].
    const tr = randomRows(rng, 5, 12).map((r) => r.map((v, p) => (p < 6 ? 0 : v)));
    const te = randomRows(rng, 2, 12);
    const train = shaped(tr, 'z', [[2, 3], [3, 2]]);
    const test = shaped(te, 'e', [[2, 3], [3, 2]]);
    const a = ifEkfacScores(train, test);
    expect(Array.from(ifEkfacScores(train, test).values)).toEqual(Array.from(a.values));
    const only = ifEkfacScores(block(train, 1), block(test, 1));
    a.values.forEach((x, k) => expect(x).toBeCloseTo(only.values[k]!, 12));
    expect(a.provenance.computedOver).toMatch(/1 with all-zero training gradients skipped/);
  });

  it('is registered and scores a ScoringInput', async () => {
    expect(scorers.has('if-ekfac')).toBe(true);
    const s = await scorers.create('if-ekfac', { damping: 0.5 });
    expect(s.needs).toEqual(['gradients']);
    const m = await s.score(input(shaped([[1, 0, 0, 0], [0, 0, 0, 2]], 'z', [[2, 2]]), shaped([[1, 1, 1, 1]], 'e', [[2, 2]]), 'epoch-2'));
    expect(m.values[1]).toBeCloseTo(0.8, 14);
    expect(m.provenance.checkpoints).toEqual(['epoch-2']);
  });

  it('says what to change when its needs are not met', () => {
    const train = shaped([[1, 0, 0, 0], [0, 0, 0, 2]], 'z', [[2, 2]]);
    const test = shaped([[1, 1, 1, 1]], 'e', [[2, 2]]);
    const { parameterShapes: _, ...noShapes } = train;
    expect(() => ifEkfacScores(noShapes, test)).toThrow(/do not give the shape of their parameter tensors.*recompute/);
    expect(() => ifEkfacScores(train, shaped([[1, 1, 1, 1]], 'e', [[4, 1]]))).toThrow(/different parameter shapes/);
    expect(() => ifEkfacScores(train, test, { maxFactorSize: 1 })).toThrow(/above maxFactorSize = 1/);
    expect(() => ifEkfacScores({ ...train, parameterShapes: [[3, 2]] }, test)).toThrow(/has shape \[3, 2\] \(6 entries\) but size 4/);
    expect(() => ifEkfacScores(shaped([], 'z', [[2, 2]]), test)).toThrow(/no training gradients/);
    expect(() => ifEkfacScores(train, test, { damping: 0 })).toThrow(/'damping' must be a positive/);
  });
});

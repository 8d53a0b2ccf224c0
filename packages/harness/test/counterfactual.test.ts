import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SeededRandom, createScoreMatrix } from '@dda/core';
import { averageRanks, ldsSubsets, linearDatamodelingScore, spearman, topRows } from '@dda/harness';

const fx = JSON.parse(readFileSync(new URL('./fixtures/spearman-fixtures.json', import.meta.url), 'utf8')) as { cases: { a: number[]; b: number[]; rho: number }[] };

describe('Spearman correlation', () => {
  it('agrees with scipy.stats.spearmanr, ties included', () => {
    for (const c of fx.cases) expect(spearman(c.a, c.b)).toBeCloseTo(c.rho, 12);
  });
  it('averages tied ranks, and is 0 for a constant sample', () => {
    expect(Array.from(averageRanks([3, 1, 3, 2]))).toEqual([3.5, 1, 3.5, 2]);
    expect(spearman([1, 1, 1], [1, 2, 3])).toBe(0);
    expect(spearman([1, 2, 3], [30, 20, 10])).toBe(-1);
  });
});

describe('the linear datamodeling score', () => {
  it('draws M seeded subsets of round(α·n) rows', () => {
    const s = ldsSubsets(10, 4, 0.5, 3);
    expect(s).toHaveLength(4);
    for (const x of s) expect(x).toHaveLength(5);
    expect(ldsSubsets(10, 4, 0.5, 3)).toEqual(s);
    expect(ldsSubsets(10, 4, 0.5, 4)).not.toEqual(s);
    expect(() => ldsSubsets(10, 4, 1, 3)).toThrow(/α must be in \(0, 1\)/);
  });

  // An exactly additive outcome: training on sample i lowers the test loss by a_i, so the exact
  // influence is a_i itself. Its LDS is 1; random scores give about 0.
  it('is exactly 1 for the exact influence of an additive outcome, and about 0 for random scores', () => {
    const rng = new SeededRandom(1);
    const nTrain = 60;
    const nTest = 40;
    const a = Array.from({ length: nTrain * nTest }, () => rng.normal());
    const subsets = ldsSubsets(nTrain, 50, 0.5, 2);
    const measured = subsets.map((s) => Float64Array.from({ length: nTest }, (_, t) => 3 - s.reduce((acc, i) => acc + (a[i * nTest + t] as number), 0)));
    const ids = (p: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${p}${i}`);
    const prov = { method: 'exact', computedOver: 'test', checkpoints: [], transforms: [] };
    const exact = linearDatamodelingScore(createScoreMatrix(ids('t', nTrain), ids('q', nTest), a, prov), subsets, measured);
    for (const v of exact.perTest) expect(v).toBeCloseTo(1, 12);
    const random = linearDatamodelingScore(createScoreMatrix(ids('t', nTrain), ids('q', nTest), Array.from({ length: nTrain * nTest }, () => rng.normal()), prov), subsets, measured);
    expect(Math.abs(random.mean.mean)).toBeLessThan(0.1);
    expect(random.mean.low).toBeLessThan(0);
    expect(random.mean.high).toBeGreaterThan(0);
    // The opposite sign (scores that claim helpful samples are harmful) gives −1.
    const flipped = linearDatamodelingScore(createScoreMatrix(ids('t', nTrain), ids('q', nTest), a.map((x) => -x), prov), subsets, measured);
    expect(flipped.mean.mean).toBeCloseTo(-1, 12);
  });

  // Real retraining of a convex model: ridge regression refitted in closed form on every subset.
  // The exact influence function (Koh & Liang, H = XᵀX + λI of the full set), sign flipped to
  // "higher = lowers the test loss", predicts the retrained test losses well; random scores do not.
  it('is high for the influence function of ridge regression under real retraining, and about 0 for random', () => {
    const rng = new SeededRandom(5);
    const n = 80;
    const d = 3;
    const lambda = 1;
    const wTrue = [1, -2, 0.5];
    const X = Array.from({ length: n }, () => Array.from({ length: d }, () => rng.normal()));
    const y = X.map((x) => x.reduce((s, v, k) => s + v * (wTrue[k] as number), 0) + 0.5 * rng.normal());
    const tests = Array.from({ length: 10 }, () => {
      const x = Array.from({ length: d }, () => rng.normal());
      return { x, y: x.reduce((s, v, k) => s + v * (wTrue[k] as number), 0) + 1.5 };
    });
    const solve = (rows: number[]): number[] => {
      const A = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? lambda : 0) + rows.reduce((s, r) => s + (X[r] as number[])[i]! * (X[r] as number[])[j]!, 0)));
      const b = Array.from({ length: d }, (_, i) => rows.reduce((s, r) => s + (X[r] as number[])[i]! * (y[r] as number), 0));
      // Gaussian elimination (d = 3).
      for (let c = 0; c < d; c++) {
        for (let r = c + 1; r < d; r++) {
          const f = A[r]![c]! / A[c]![c]!;
          for (let k = c; k < d; k++) A[r]![k]! -= f * A[c]![k]!;
          b[r]! -= f * b[c]!;
        }
      }
      const w = new Array<number>(d).fill(0);
      for (let c = d - 1; c >= 0; c--) w[c] = (b[c]! - A[c]!.slice(c + 1).reduce((s, v, k) => s + v * w[c + 1 + k]!, 0)) / A[c]![c]!;
      return w;
    };
    const all = Array.from({ length: n }, (_, i) => i);
    const w = solve(all);
    const loss = (ww: number[], t: { x: number[]; y: number }): number => 0.5 * (t.x.reduce((s, v, k) => s + v * ww[k]!, 0) - t.y) ** 2;
    // H⁻¹ by solving with unit vectors through the same normal equations (column by column).
    const H = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? lambda : 0) + all.reduce((s, r) => s + X[r]![i]! * X[r]![j]!, 0)));
    const inv = invert3(H);
    const grad = (ww: number[], x: number[], yy: number): number[] => { const e = x.reduce((s, v, k) => s + v * ww[k]!, 0) - yy; return x.map((v) => e * v); };
    const scores: number[] = [];
    for (let i = 0; i < n; i++) {
      const gi = grad(w, X[i]!, y[i]!);
      for (const t of tests) {
        const gt = grad(w, t.x, t.y);
        // Removing i changes the test loss by about +gtᵀH⁻¹gi; "higher = lowers the test loss": the same sign.
        let s = 0;
        for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) s += gt[a]! * inv[a]![b]! * gi[b]!;
        scores.push(s);
      }
    }
    const subsets = ldsSubsets(n, 60, 0.5, 9);
    const measured = subsets.map((s) => { const ws = solve(s); return Float64Array.from(tests, (t) => loss(ws, t)); });
    const ids = (p: string, m: number): string[] => Array.from({ length: m }, (_, i) => `${p}${i}`);
    const prov = { method: 'if-exact', computedOver: 'ridge', checkpoints: [], transforms: [] };
    const lds = linearDatamodelingScore(createScoreMatrix(ids('t', n), ids('q', tests.length), scores, prov), subsets, measured);
    expect(lds.mean.mean).toBeGreaterThan(0.7);
    const random = linearDatamodelingScore(createScoreMatrix(ids('t', n), ids('q', tests.length), scores.map(() => rng.normal()), prov), subsets, measured);
    expect(Math.abs(random.mean.mean)).toBeLessThan(0.2);
  });

  it('names the rows a method ranks highest for a group of test columns', () => {
    const m = createScoreMatrix(['a', 'b', 'c'], ['x', 'y'], [1, 5, 3, 0, 2, 2], { method: 't', computedOver: '', checkpoints: [], transforms: [] });
    expect(topRows(m, [0, 1], 2)).toEqual([0, 2]); // means 3, 1.5, 2
    expect(topRows(m, [1], 1)).toEqual([0]);
  });
});

function invert3(m: number[][]): number[][] {
  const [a, b, c] = m[0]!;
  const [d, e, f] = m[1]!;
  const [g, h, i] = m[2]!;
  const A = e! * i! - f! * h!;
  const B = -(d! * i! - f! * g!);
  const C = d! * h! - e! * g!;
  const det = a! * A + b! * B + c! * C;
  return [
    [A / det, -(b! * i! - c! * h!) / det, (b! * f! - c! * e!) / det],
    [B / det, (a! * i! - c! * g!) / det, -(a! * f! - c! * d!) / det],
    [C / det, -(a! * h! - b! * g!) / det, (a! * e! - b! * d!) / det],
  ];
}

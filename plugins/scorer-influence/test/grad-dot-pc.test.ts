import { describe, expect, it } from 'vitest';
import '@dda/backend-onnxruntime'; // registers the onnxruntime dot-product kernel (dotKernels)
import { SeededRandom, scoreUnits, scorers } from '@dda/core';
import { gradDotPcScores, readGradDotPcOptions, symmetricEigen, topEigen } from '@dda/scorer-influence';
import { grads, input, randomRows } from './helpers.js';

/** Reference on the parameter side: V_k from the d×d second moment of the basis, then g_iᵀ (I − V_k V_kᵀ) h_j. */
function primalReference(train: number[][], test: number[][], basis: number[][], k: number): number[] {
  const d = train[0]!.length;
  const a = new Float64Array(d * d);
  for (const b of basis) for (let p = 0; p < d; p++) for (let q = 0; q < d; q++) a[p * d + q] = a[p * d + q]! + b[p]! * b[q]!;
  const e = symmetricEigen(a, d, 'reference');
  const project = (g: number[]): number[] => {
    const out = [...g];
    for (let c = 0; c < k; c++) {
      let dot = 0;
      for (let p = 0; p < d; p++) dot += g[p]! * e.vectors[p * d + c]!;
      for (let p = 0; p < d; p++) out[p] = out[p]! - dot * e.vectors[p * d + c]!;
    }
    return out;
  };
  return train.flatMap((g) => test.map((h) => project(g).reduce((s, x, p) => s + x * h[p]!, 0)));
}

/** Values rounded to 12 decimals (the Gram-side projection leaves rounding of order 1e-16). */
const rounded = (v: Float64Array): number[] => [...v].map((x) => Number(x.toFixed(12)) + 0);

describe('grad-dot-pc', () => {
  // Training gradients: second moment diag(8, 1), leading direction e1. Test gradients: diag(1, 9), leading e2.
  const train = [[2, 0], [0, 1], [2, 0]];
  const test = [[0, 3], [1, 0]];

  it('removes the leading training direction (hand-computed)', async () => {
    // plain scores [[0, 2], [3, 0], [0, 2]]; without e1 only (0, 1) · (0, 3) = 3 is left
    const m = await gradDotPcScores(grads(train, 't'), grads(test, 'e'), { k: 1, engine: 'js' });
    expect(rounded(m.values)).toEqual([0, 0, 3, 0, 0, 0]);
    expect(m.provenance.method).toBe('grad-dot-pc');
    expect(scoreUnits(m)).toBe('nats² per squared parameter unit');
    expect(m.provenance.computedOver).toMatch(/1 leading uncentred principal directions of the 3 training gradients \(88\.9 % of their second moment\)/);
  });

  it('removes the leading query direction (hand-computed)', async () => {
    // without e2 the tests are (0, 0) and (1, 0): scores g · (1, 0) in the second column
    const m = await gradDotPcScores(grads(train, 't'), grads(test, 'e'), { k: 1, basis: 'query', engine: 'js' });
    expect(rounded(m.values)).toEqual([0, 2, 0, 0, 0, 2]);
  });

  it.each([
    ['train', 8, 3],
    ['query', 8, 2],
    ['train', 230, 4], // above the full-decomposition size: subspace iteration
  ] as const)('equals the projection on the parameter side (basis %s, %i training rows, k = %i)', async (basis, n, k) => {
    const rng = new SeededRandom(n + k);
    const g = randomRows(rng, n, 12);
    const h = randomRows(rng, 5, 12);
    const m = await gradDotPcScores(grads(g, 't'), grads(h, 'e'), { k, basis, engine: 'js' });
    const ref = primalReference(g, h, basis === 'train' ? g : h, k);
    m.values.forEach((x, i) => expect(x).toBeCloseTo(ref[i]!, 8));
    // onnxruntime's float32 GEMM (the default engine) agrees to float32 precision
    const onnx = await gradDotPcScores(grads(g, 't'), grads(h, 'e'), { k, basis, engine: 'onnxruntime' });
    const scale = Math.max(...ref.map(Math.abs));
    onnx.values.forEach((x, i) => expect(Math.abs(x - ref[i]!)).toBeLessThan(1e-4 * scale));
    expect(onnx.provenance.computedOver).toMatch(/float32 GEMM/);
  });

  it('finds the leading eigenpairs by subspace iteration as the full decomposition does', () => {
    const rng = new SeededRandom(3);
    const rows = randomRows(rng, 260, 40);
    const n = rows.length;
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = rows[i]!.reduce((s, x, p) => s + x * rows[j]![p]!, 0);
    const top = topEigen(5, a, n, 'test');
    expect(top.iterations).toBeGreaterThan(0);
    const full = symmetricEigen(a, n, 'test');
    for (let c = 0; c < 6; c++) expect(top.values[c]).toBeCloseTo(full.values[c]!, 6);
  });

  it('refuses a k it cannot honour, an unknown basis, and a top-k subspace that is not unique', async () => {
    await expect(gradDotPcScores(grads(train, 't'), grads(test, 'e'), { k: 3 })).rejects.toThrow(/below the 3 training gradients/);
    await expect(gradDotPcScores(grads(train, 't'), grads(test, 'e'), { k: 2, basis: 'query' })).rejects.toThrow(/below the 2 test gradients/);
    await expect(gradDotPcScores(grads(train, 't'), grads(test, 'e'), { k: 0 })).rejects.toThrow(/positive integer/);
    expect(() => readGradDotPcOptions({ basis: 'both' })).toThrow(/'train' or 'query'/);
    expect(() => readGradDotPcOptions({ engine: 'gpu' })).toThrow(/option 'engine'/);
    // second moment diag(4, 4): no leading direction
    await expect(gradDotPcScores(grads([[2, 0], [0, 2], [0, 0]], 't'), grads(test, 'e'), { k: 1, engine: 'js' })).rejects.toThrow(/not unique/);
  });

  it('is registered with options k and basis', async () => {
    const s = await scorers.create('grad-dot-pc', { k: 1, basis: 'query', engine: 'js' });
    const m = await s.score(input(grads(train, 't'), grads(test, 'e')));
    expect(rounded(m.values)).toEqual([0, 2, 0, 0, 0, 2]);
    expect(s.needs).toEqual(['gradients']);
  });
});

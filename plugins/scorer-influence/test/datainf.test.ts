import { describe, expect, it } from 'vitest';
import { DdaError, SeededRandom, scorers } from '@dda/core';
import { dataInfScores, ifExactScores, parameterBlocks } from '@dda/scorer-influence';
import { grads, input, randomRows } from './helpers.js';

/** The DataInf formula with naive loops: Σ_l (1/(nλ_l)) Σ_k (g_tᵀv − (g_kᵀv)(g_tᵀg_k)/(λ_l + ‖g_k‖²)), per block. */
function naiveDataInf(tr: number[][], te: number[][], sizes: number[], damping?: number): number[] {
  const n = tr.length;
  const out = new Array<number>(n * te.length).fill(0);
  let off = 0;
  for (const size of sizes) {
    const part = (r: number[]): number[] => r.slice(off, off + size);
    const dot = (a: number[], b: number[]): number => a.reduce((s, x, p) => s + x * b[p]!, 0);
    const g = tr.map(part);
    const lambda = damping ?? (0.1 * g.reduce((s, r) => s + dot(r, r), 0)) / (n * size);
    te.map(part).forEach((v, j) => {
      for (let t = 0; t < n; t++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += dot(g[t]!, v) - (dot(g[k]!, v) * dot(g[t]!, g[k]!)) / (lambda + dot(g[k]!, g[k]!));
        out[t * te.length + j]! += s / (n * lambda);
      }
    });
    off += size;
  }
  return out;
}

describe('datainf', () => {
  it('gives the exact answer on one training sample (where the closed form is exact)', () => {
    // n = 1: H = g gᵀ + λI, H⁻¹ v = (v − (gᵀv)/(λ + ‖g‖²) g)/λ; g = [1, 2], v = [3, 0], λ = 1:
    // H⁻¹ v = ([3, 0] − 3/6 · [1, 2]) = [2.5, −1], score = gᵀ H⁻¹ v = 0.5.
    const m = dataInfScores(grads([[1, 2]], 'z'), grads([[3, 0]], 'e'), { damping: 1 });
    expect(m.values[0]).toBeCloseTo(0.5, 14);
    const exact = ifExactScores(grads([[1, 2]], 'z'), grads([[3, 0]], 'e'), { damping: 1 });
    expect(exact.values[0]).toBeCloseTo(0.5, 14);
  });

  it('equals the formula computed with naive loops, per parameter block', () => {
    const rng = new SeededRandom(13);
    const sizes = [3, 1, 4];
    const tr = randomRows(rng, 5, 8);
    const te = randomRows(rng, 3, 8);
    const m = dataInfScores(grads(tr, 'z', sizes), grads(te, 'e', sizes));
    naiveDataInf(tr, te, sizes).forEach((w, k) => expect(m.values[k]).toBeCloseTo(w, 10));
    const abs = dataInfScores(grads(tr, 'z', sizes), grads(te, 'e', sizes), { damping: 0.2 });
    naiveDataInf(tr, te, sizes, 0.2).forEach((w, k) => expect(abs.values[k]).toBeCloseTo(w, 10));
    // The split matters: one block gives other numbers.
    const one = dataInfScores(grads(tr, 'z'), grads(te, 'e'));
    naiveDataInf(tr, te, [8]).forEach((w, k) => expect(one.values[k]).toBeCloseTo(w, 10));
    expect(Math.abs(one.values[0]! - m.values[0]!)).toBeGreaterThan(1e-6);
    expect(m.provenance.computedOver).toMatch(/3 parameter blocks/);
  });

  it('skips a block whose training gradients are all zero (its contribution is exactly 0)', () => {
    const tr = [[1, 2, 0, 0], [0, 1, 0, 0]];
    const te = [[1, 1, 5, 5]];
    const m = dataInfScores(grads(tr, 'z', [2, 2]), grads(te, 'e', [2, 2]));
    naiveDataInf(tr.map((r) => r.slice(0, 2)), te.map((r) => r.slice(0, 2)), [2]).forEach((w, k) => expect(m.values[k]).toBeCloseTo(w, 12));
    expect(m.provenance.computedOver).toMatch(/1 with all-zero training gradients skipped/);
  });

  it('is registered and says what to change when its needs are not met', async () => {
    expect(parameterBlocks(grads([[1, 2, 3]], 'z', [2, 1]))).toEqual([
      { name: 'layer0.lora', offset: 0, size: 2 },
      { name: 'layer1.lora', offset: 2, size: 1 },
    ]);
    const s = await scorers.create('datainf', { damping: 1 });
    expect(s.needs).toEqual(['gradients']);
    expect((await s.score(input(grads([[1, 2]], 'z'), grads([[3, 0]], 'e')))).values[0]).toBeCloseTo(0.5, 14);
    const tr = grads([[1, 2, 3]], 'z', [2, 1]);
    expect(() => dataInfScores(tr, grads([[1, 2, 3]], 'e', [1, 2]))).toThrow(/different parameters/);
    expect(() => dataInfScores(tr, grads([[1, 2, 3]], 'e', [2, 2]))).toThrow(/parameter sizes add up to 4, but dim is 3/);
    expect(() => dataInfScores(grads([], 'z', [2, 1]), tr)).toThrow(/no training gradients/);
    expect(() => dataInfScores(tr, tr, { damping: 0 })).toThrow(DdaError);
  });
});

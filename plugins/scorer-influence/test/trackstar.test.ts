import { describe, expect, it } from 'vitest';
import '@dda/backend-onnxruntime'; // registers the onnxruntime dot-product kernel (dotKernels)
import { SeededRandom, scoreUnits, scorers } from '@dda/core';
import { gradCosScores } from '@dda/scorer-grad-dot';
import { trackStarScores } from '@dda/scorer-influence';
import { gaussSolve, grads, input, randomRows } from './helpers.js';

/** Reference on the parameter side: R built explicitly (d×d), R⁻¹ by Gaussian elimination, then the cosine under R⁻¹. */
function primalReference(train: number[][], test: number[][], mix: number, eps: number): number[] {
  const d = train[0]!.length;
  const second = (rows: number[][], p: number, q: number): number => rows.reduce((s, g) => s + g[p]! * g[q]!, 0) / rows.length;
  const r = Array.from({ length: d }, (_, p) => Array.from({ length: d }, (_, q) => (1 - mix) * second(train, p, q) + mix * second(test, p, q) + (p === q ? eps : 0)));
  const inner = (x: number[], y: number[]): number => gaussSolve(r, y).reduce((s, v, p) => s + v * x[p]!, 0);
  return train.flatMap((g) => test.map((h) => inner(g, h) / Math.sqrt(inner(g, g) * inner(h, h))));
}

describe('trackstar', () => {
  // Training second moment diag(8/3, 1/3), query second moment I: with λ = 1/2 and ε = 1/6, R = diag(2, 5/6).
  const train = [[2, 0], [0, 1], [2, 0]];
  const test = [[1, 1], [1, -1]];

  it('down-weights the direction common to the training gradients (hand-computed)', async () => {
    const m = await trackStarScores(grads(train, 't'), grads(test, 'e'), { mix: 0.5, damping: 1 / 6, engine: 'js' });
    // g = (2, 0): gᵀR⁻¹h = 1, ‖g‖² = 2, ‖h‖² = 1/2 + 6/5 = 17/10 → √(5/17); g = (0, 1): ±(6/5) / √(6/5 · 17/10) = ±√(12/17)
    const a = Math.sqrt(5 / 17);
    const b = Math.sqrt(12 / 17);
    [a, a, b, -b, a, a].forEach((x, i) => expect(m.values[i]).toBeCloseTo(x, 12));
    // plain cosine ranks the two directions alike (1/√2 each): the common direction e1 lost weight
    const plain = gradCosScores(grads(train, 't'), grads(test, 'e'));
    expect(plain.values[0]).toBeCloseTo(plain.values[2]!, 6);
    expect(scoreUnits(m)).toBe('dimensionless (cosine under R⁻¹, in [−1, 1])');
    expect(m.provenance.computedOver).toMatch(/R = 0\.5 × training second moment \(3 gradients\) \+ 0\.5 × query second moment \(2 gradients\) \+ εI, ε = 0\.1667 \(absolute\)/);
  });

  it.each([0, 0.3, 1])('equals the explicit d×d computation (mix %s)', async (mix) => {
    const rng = new SeededRandom(Math.round(mix * 10) + 1);
    const g = randomRows(rng, 9, 6);
    const h = randomRows(rng, 4, 6);
    const eps = 0.05;
    const m = await trackStarScores(grads(g, 't'), grads(h, 'e'), { mix, damping: eps, engine: 'js' });
    const ref = primalReference(g, h, mix, eps);
    m.values.forEach((x, i) => expect(x).toBeCloseTo(ref[i]!, 9));
    // the Gram matrix on onnxruntime's float32 GEMM (the default engine): cosines to float32 precision
    const onnx = await trackStarScores(grads(g, 't'), grads(h, 'e'), { mix, damping: eps, engine: 'onnxruntime' });
    onnx.values.forEach((x, i) => expect(Math.abs(x - ref[i]!)).toBeLessThan(1e-4));
  });

  it('does not change when every gradient is scaled alike (scale-aware damping)', async () => {
    const rng = new SeededRandom(5);
    const g = randomRows(rng, 7, 5);
    const h = randomRows(rng, 3, 5);
    const a = await trackStarScores(grads(g, 't'), grads(h, 'e'), { engine: 'js' });
    const b = await trackStarScores(grads(g.map((r) => r.map((x) => 8 * x)), 't'), grads(h.map((r) => r.map((x) => 8 * x)), 'e'), { engine: 'js' });
    a.values.forEach((x, i) => expect(b.values[i]).toBeCloseTo(x, 10));
  });

  it('refuses what it cannot compute', async () => {
    await expect(trackStarScores(grads(train, 't'), grads(test, 'e'), { mix: 1.5 })).rejects.toThrow(/'mix' must be in \[0, 1\]/);
    await expect(trackStarScores(grads(train, 't'), grads(test, 'e'), { damping: -1 })).rejects.toThrow(/positive finite/);
    await expect(trackStarScores(grads(train, 't'), grads(test, 'e'), { maxSystemSize: 4 })).rejects.toThrow(/5×5 system, above maxSystemSize 4/);
    await expect(trackStarScores(grads([[0, 0]], 't'), grads([[0, 0]], 'e'))).rejects.toThrow(/every gradient is zero/);
  });

  it('is registered with option mix', async () => {
    const s = await scorers.create('trackstar', { mix: 0.5, damping: 1 / 6, engine: 'js' });
    const m = await s.score(input(grads(train, 't'), grads(test, 'e')));
    expect(m.values[2]).toBeCloseTo(Math.sqrt(12 / 17), 12);
  });
});

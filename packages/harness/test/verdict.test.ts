import { describe, expect, it } from 'vitest';
import { preRegisteredVerdict, studentTQuantile, type MeanGate, type RunAuc } from '../src/index.js';

const passing: MeanGate[] = ['G1', 'G2', 'G3', 'G4'].map((id) => ({ id, value: 0, pass: true }));
/** Five runs; `aucs[method]` gives each run's AUC (a number: the same in every run, plus `jitter[seed]`). */
function runs(aucs: Record<string, number | readonly number[]>, n = 5): RunAuc[] {
  const jitter = [0, 1, -1, 0.5, -0.5, 0.25, -0.25];
  return Array.from({ length: n }, (_, seed) =>
    Object.entries(aucs).map(([method, v]) => ({ family: 'f', seed, method, auc: typeof v === 'number' ? v + (jitter[seed] as number) : (v[seed] as number) })),
  ).flat();
}
const plain = { 'grad-dot@loss': 60, 'tracin-cp@loss': 61, bm25: 70, 'grad-dot@contrastive': 65, 'dda(grad-dot@loss)': 55 };

describe('preRegisteredVerdict', () => {
  it('computes a comparison exactly: mean difference and its Student-t interval over the runs', () => {
    const bench: RunAuc[] = [
      ...[80, 82, 90].map((auc, seed) => ({ family: 'f', seed, method: 'dda(grad-dot@contrastive)', auc })),
      ...[70, 70, 70].map((auc, seed) => ({ family: 'f', seed, method: 'bm25', auc })),
    ];
    const v = preRegisteredVerdict(bench, [], passing, { minRuns: 3 });
    const c = v.paper.find((x) => x.reference === 'bm25');
    // differences 10, 12, 20: mean 14, sd √28, half-width t_{2,0.975} · √28 / √3
    const half = studentTQuantile(0.975, 2) * Math.sqrt(28) / Math.sqrt(3);
    expect(c?.n).toBe(3);
    expect(c?.meanDifference).toBeCloseTo(14, 12);
    expect(c?.low).toBeCloseTo(14 - half, 12);
    expect(c?.high).toBeCloseTo(14 + half, 12);
    expect(c?.margin).toBe(5);
    expect(c?.beats).toBe(14 - half > 0);
  });

  it('is inconclusive when a gate fails on average, whatever the AUCs', () => {
    const gates = passing.map((g) => (g.id === 'G1' ? { ...g, value: 12, pass: false } : g));
    const v = preRegisteredVerdict(runs({ ...plain, 'dda(grad-dot@contrastive)': 90 }), runs({ full: 90, 'no-debias': 60, 'no-denoise': 88 }), gates);
    expect(v.outcome).toBe('inconclusive');
    expect(v.reason).toContain('G1');
    expect(preRegisteredVerdict(runs(plain), [], passing.slice(1)).outcome).toBe('inconclusive');
  });

  it('needs five runs', () => {
    const v = preRegisteredVerdict(runs({ ...plain, 'dda(grad-dot@contrastive)': 90 }, 4), [], passing);
    expect(v.outcome).toBe('too-few-runs');
    expect(v.runs).toBe(4);
  });

  it('reproduces the paper: margins beyond noise and the ablation showing the debias', () => {
    const v = preRegisteredVerdict(runs({ ...plain, 'dda(grad-dot@contrastive)': 85 }), runs({ full: 85, 'no-debias': 70, 'no-denoise': 84 }), passing);
    expect(v.outcome).toBe('reproduces-paper');
    expect(v.paper.map((c) => [c.reference, c.beats])).toEqual([['grad-dot@loss', true], ['tracin-cp@loss', true], ['bm25', true], ['no-debias', true], ['no-denoise', true]]);
  });

  it('is not the paper when the ablation has no-debias level with full', () => {
    const v = preRegisteredVerdict(runs({ ...plain, 'dda(grad-dot@contrastive)': 85 }), runs({ full: 85, 'no-debias': [85, 84, 86, 85, 85], 'no-denoise': 84 }), passing);
    expect(v.outcome).not.toBe('reproduces-paper');
  });

  it('reproduces the idea when only a scale-corrected or common-direction variant clears the margins', () => {
    const v = preRegisteredVerdict(runs({ ...plain, 'dda(grad-dot@contrastive)': 62, 'dda-fitted(grad-dot@contrastive)': 80 }), runs({ full: 62, 'no-debias': 66, 'no-denoise': 60 }), passing);
    expect(v.outcome).toBe('reproduces-idea');
    expect(v.reason).toContain('dda-fitted(grad-dot@contrastive)');
    const pc = preRegisteredVerdict(runs({ ...plain, 'dda(grad-dot@contrastive)': 62, 'grad-dot-pc@loss': 81 }), [], passing);
    expect(pc.outcome).toBe('reproduces-idea');
  });

  it('refutes when no debias variant beats the plain scorer beyond noise', () => {
    const v = preRegisteredVerdict(runs({ ...plain, 'dda(grad-dot@contrastive)': [66, 63, 65, 64, 66], 'dda-fitted(grad-dot@loss)': 58 }), [], passing);
    expect(v.outcome).toBe('refutes');
    expect(v.debiasOverPlain.map((c) => c.method).sort()).toEqual(['dda(grad-dot@contrastive)', 'dda(grad-dot@loss)', 'dda-fitted(grad-dot@loss)']);
    expect(v.debiasOverPlain.every((c) => !(c.low > 0))).toBe(true);
  });

  it('refutes when the gain over bm25 is all the contrastive measurement', () => {
    // DDA@contrastive 76 ≈ plain@contrastive 76 ≫ DDA@loss 55, above bm25 70; a variant beats plain@loss (so not the first clause).
    const v = preRegisteredVerdict(runs({ ...plain, 'grad-dot@contrastive': [76, 75, 78, 75, 77], 'dda(grad-dot@contrastive)': [76, 77, 75, 76, 77], 'dda-zscore(grad-dot@loss)': 64 }), [], passing);
    expect(v.outcome).toBe('refutes');
    expect(v.reason).toContain('contrastive measurement');
  });

  it('is none of them when a variant beats plain beyond noise but not by the margins', () => {
    const v = preRegisteredVerdict(runs({ ...plain, 'dda(grad-dot@contrastive)': 62, 'dda-zscore(grad-dot@loss)': 64 }), [], passing);
    expect(v.outcome).toBe('none');
    expect(v.reason).toContain('dda-zscore(grad-dot@loss)');
  });

  it('refuses two AUCs of one method in one run', () => {
    const rows = runs(plain);
    expect(() => preRegisteredVerdict([...rows, rows[0] as RunAuc], [], passing)).toThrow(/two AUCs of grad-dot@loss/);
  });
});

import { describe, expect, it } from 'vitest';
import { createScoreMatrix, DdaError } from '@dda/core';
import { GATE_THRESHOLDS, canaryGradientShare, g1FromBenchRows, g5Report, inRegime, meanGates, pearson, regimeGates, spearman, type BenchRow } from '@dda/harness';

const prov = (method: string, cp: string) => ({ method, computedOver: 'hand-written', checkpoints: [cp], transforms: [] });
// rows r0..r2, columns t0, t1 (and a constant column t2 in the second pair)
const finetuned = createScoreMatrix(['r0', 'r1', 'r2'], ['t0', 't1'], [1, 2, 2, 0, 3, 1], prov('grad-dot', 'epoch-2'));
// column t0 = 2 × fine-tuned (correlation 1), t1 = −2 × fine-tuned (correlation −1)
const base = createScoreMatrix(['r0', 'r1', 'r2'], ['t0', 't1'], [2, -4, 4, 0, 6, -2], prov('grad-dot', 'base'));
const sources = [
  { id: 's1', testIds: ['t0'], labels: [0, 0, 1] }, // base t0 = [2, 4, 6]: the source on top, AUC 100
  { id: 's2', testIds: ['t1'], labels: [1, 0, 0] }, // base t1 = [−4, 0, −2]: the source at the bottom, AUC 0
];

describe('canaryGradientShare', () => {
  it('is ‖Σ canary rows‖ / ‖Σ rows‖ (hand-computed)', () => {
    expect(canaryGradientShare([[3, 0], [0, 4]], [true, false])).toBeCloseTo(3 / 5, 15);
    expect(canaryGradientShare([[1, 0], [2, 0], [0, 0]], [true, false, false])).toBeCloseTo(1 / 3, 15);
    expect(canaryGradientShare([[1, 2], [2, 4]], [true, true])).toBe(1);
    // the other token cancels half of the canary's gradient: the share exceeds 1
    expect(canaryGradientShare([[2, 0], [-1, 0]], [true, false])).toBe(2);
  });
  it('refuses what it cannot compute', () => {
    expect(() => canaryGradientShare([[1, 0]], [true, false])).toThrow(/1 token gradient rows but 2 canary flags/);
    expect(() => canaryGradientShare([[1, 0], [0, 1]], [false, false])).toThrow(/no token is flagged/);
    expect(() => canaryGradientShare([[1, 0], [0]], [true, false])).toThrow(/token row 1 has 1 values/);
    expect(() => canaryGradientShare([[1, 0], [-1, 0]], [true, false])).toThrow(/gradient is zero/);
    expect(() => canaryGradientShare([[NaN, 0]], [true])).toThrow(DdaError);
  });
});

describe('regimeGates on a hand-built run', () => {
  const gates = regimeGates({
    g1: { plainAuc: { a: 80, b: 70 }, bm25Auc: { a: 75, b: 71 } },
    g2: { c1: [0.6, 1 / 3], c2: [0.1] },
    g3: 1.6,
    g4: { c1: { legitimate: 5, sources: 2 }, c2: { legitimate: 3, sources: 2 } },
    g5: { base, finetuned, sources, epochAucs: [60, 70.5] },
  });

  it('G1: mean over sources of plain − bm25, passing at exactly the threshold', () => {
    expect(gates.g1).toEqual({ id: 'G1', what: expect.stringContaining('bm25'), value: 2, threshold: 2, bound: 'max', pass: true, detail: { a: 5, b: -1 } });
    const worse = regimeGates({ g1: { plainAuc: { a: 80, b: 70 }, bm25Auc: { a: 75, b: 70.5 } } }).g1!;
    expect(worse.value).toBeCloseTo(2.25, 15);
    expect(worse.pass).toBe(false);
  });

  it('G2: mean share over every source of every canary, with each canary mean and max', () => {
    expect(gates.g2!.value).toBeCloseTo((0.6 + 1 / 3 + 0.1) / 3, 15);
    expect(gates.g2!.detail['c1 mean']).toBeCloseTo((0.6 + 1 / 3) / 2, 15);
    expect(gates.g2!.detail).toMatchObject({ 'c1 max': 0.6, 'c2 mean': 0.1, 'c2 max': 0.1 });
    expect(gates.g2).toMatchObject({ threshold: GATE_THRESHOLDS.g2, bound: 'max', pass: false });
  });

  it('G3 and G4: the loss as given, the smallest legitimate/sources ratio', () => {
    expect(gates.g3).toMatchObject({ id: 'G3', value: 1.6, threshold: 1.5, bound: 'min', pass: true });
    expect(gates.g4).toMatchObject({ id: 'G4', value: 1.5, threshold: 2, bound: 'min', pass: false, detail: { c1: 2.5, c2: 1.5 } });
  });

  it('G5: |IS_θ0| / |IS_θ′|, column correlations, base-only AUC and the epoch AUCs', () => {
    // mean |base| = 18 / 6 = 3, mean |fine-tuned| = 9 / 6 = 1.5
    expect(gates.g5!.meanAbsRatio).toBe(2);
    expect(gates.g5!.columnCorrelations.map((x) => Number(x.toFixed(12)))).toEqual([1, -1]);
    expect(gates.g5!.columnCorrelation).toBeCloseTo(0, 12);
    expect(gates.g5!.constantColumns).toBe(0);
    expect(gates.g5!.baseAuc).toBe(50);
    expect(gates.g5!.epochAucs).toEqual([60, 70.5]);
  });

  it('a constant column is left out of the mean correlation and counted', () => {
    const f = createScoreMatrix(['r0', 'r1', 'r2'], ['t0', 't1'], [1, 5, 2, 5, 3, 5], prov('grad-dot', 'epoch-2'));
    const b = createScoreMatrix(['r0', 'r1', 'r2'], ['t0', 't1'], [1, 1, 3, 2, 2, 0], prov('grad-dot', 'base'));
    const g5 = g5Report(b, f, [{ id: 's', testIds: ['t0'], labels: [0, 1, 0] }], []);
    // t0: corr([1, 2, 3], [1, 3, 2]) = 0.5; t1 is constant in the fine-tuned scores
    expect(g5.columnCorrelation).toBeCloseTo(0.5, 12);
    expect(g5.columnCorrelations[1]).toBeNaN();
    expect(g5.constantColumns).toBe(1);
    expect(g5.baseAuc).toBe(100);
  });

  it('inRegime: false when a gate fails, undefined when one is missing, true when all pass', () => {
    expect(inRegime(gates)).toBe(false);
    expect(inRegime({ g1: gates.g1!, g3: gates.g3! })).toBeUndefined();
    const pass = regimeGates({ g1: { plainAuc: { a: 60 }, bm25Auc: { a: 70 } }, g2: { c: [0.2] }, g3: 2, g4: { c: { legitimate: 4, sources: 2 } } });
    expect(inRegime(pass)).toBe(true);
  });

  it('meanGates averages each gate over runs and judges the mean', () => {
    const other = regimeGates({ g1: { plainAuc: { a: 60 }, bm25Auc: { a: 61 } }, g3: 1.2 });
    const mean = meanGates([gates, other]);
    expect(mean.g1).toMatchObject({ value: 0.5, pass: true, detail: { 'run 0': 2, 'run 1': -1 } });
    expect(mean.g3!.value).toBeCloseTo(1.4, 15);
    expect(mean.g3!.pass).toBe(false);
    expect(mean.g2).toBeUndefined(); // the second run has no G2
    expect(() => meanGates([])).toThrow(/no runs/);
  });

  it('refuses inconsistent inputs', () => {
    expect(() => regimeGates({ g1: { plainAuc: { a: 1 }, bm25Auc: { b: 1 } } })).toThrow(/same, non-empty set of sources/);
    expect(() => regimeGates({ g2: { c: [] } })).toThrow(/no gradient-norm shares/);
    expect(() => regimeGates({ g3: Number.NaN })).toThrow(/not a finite number/);
    expect(() => regimeGates({ g4: { c: { legitimate: 2, sources: 0 } } })).toThrow(/at least one source/);
    const short = createScoreMatrix(['r0', 'r1'], ['t0', 't1'], [1, 2, 3, 4], prov('grad-dot', 'base'));
    expect(() => regimeGates({ g5: { base: short, finetuned, sources, epochAucs: [] } })).toThrow(DdaError);
  });
});

describe('g1FromBenchRows', () => {
  const row = (method: string, source: string, auc: number, seed = 0): BenchRow => ({
    family: 'f', method, scorer: method, variant: 'plain', measurement: 'loss', seed, seconds: 0, source, k: 1,
    nPositives: 1, nTrain: 3, nTests: 1, metrics: { auc },
  });
  it("takes one cell's per-source AUCs of the two methods, without average and error-kind rows", () => {
    const rows = [row('grad-dot@loss', 'a', 80), row('grad-dot@loss', 'average', 80), row('grad-dot@loss', 'a[kind]', 1), row('bm25', 'a', 75), row('bm25', 'a', 10, 1), row('dda(grad-dot@loss)', 'a', 50)];
    expect(g1FromBenchRows(rows, 'f', 0)).toEqual({ plainAuc: { a: 80 }, bm25Auc: { a: 75 } });
    expect(regimeGates({ g1: g1FromBenchRows(rows, 'f', 0) }).g1!.value).toBe(5);
    expect(() => g1FromBenchRows(rows, 'f', 0, 'grad-dot')).toThrow(/no per-source rows of 'grad-dot'/);
  });

  it('reads the AUC under the key of the registry metric `auc` in the run\'s metric list, not a fixed field', async () => {
    const { G1_METRIC, metricKeyOf } = await import('../src/gates.js');
    expect(G1_METRIC).toBe('auc');
    const list = [{ key: 'roc', metric: { id: 'auc' } }, { key: 'r', metric: { id: 'recall-at-5' } }];
    const rows = [row('grad-dot@loss', 'a', 0), row('bm25', 'a', 0)].map((r, i) => ({ ...r, metrics: { roc: [80, 75][i]!, auc: 0 } }));
    expect(g1FromBenchRows(rows, 'f', 0, 'grad-dot@loss', 'bm25', metricKeyOf(G1_METRIC, list))).toEqual({ plainAuc: { a: 80 }, bm25Auc: { a: 75 } });
    expect(metricKeyOf(G1_METRIC)).toBe('auc'); // the default list's column
    expect(() => metricKeyOf(G1_METRIC, list.slice(1))).toThrow(/no metric 'auc' among the benchmark's metrics \(recall-at-5\)/);
  });
});

describe('pearson', () => {
  it('matches hand-computed values; NaN for a constant sample (spearman keeps 0)', () => {
    expect(pearson([1, 2, 3], [1, 3, 2])).toBeCloseTo(0.5, 15);
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 15);
    expect(pearson([1, 2, 3], [5, 5, 5])).toBeNaN();
    expect(spearman([1, 2, 3], [5, 5, 5])).toBe(0);
    expect(() => pearson([1], [1])).toThrow(/at least 2 pairs/);
  });
});

import { describe, expect, it } from 'vitest';
import { createScoreMatrix, evaluateMetrics, metrics } from '@dda/core';
import { checkMetric } from '@dda/conformance';
import { metricConformance } from '@dda/conformance/vitest';
import { ldsMetric, leaveOutMetric, linearDatamodelingScore, topRows } from '@dda/harness';

// The counterfactual metrics of the metrics registry against the metric contract, their inputs
// (retrainedLosses, retraining) made by the suite's synthetic world.
metricConformance('lds');
metricConformance('leave-out', {
  optOut: { 'row-order': 'ties at the k-th score are broken by row order (topRows), as the committed results were made; without ties the value does not depend on the order' },
});
metricConformance('leave-out-random', {
  optOut: {
    'row-order': 'a random baseline: it draws k rows by position (seeded by the source), so a shuffled training set gets another draw',
    ranking: 'the baseline of leave-out ignores the scores: every method of a source gets the same value',
  },
});

describe('the counterfactual metrics', () => {
  it('declare their inputs and descriptors, and are registered by @dda/harness', () => {
    expect(metrics.entry('lds').plugin).toBe('@dda/harness');
    expect(ldsMetric).toMatchObject({ needs: ['retrainedLosses'], label: 'LDS', units: 'correlation', range: [-1, 1] });
    expect(leaveOutMetric(20)).toMatchObject({ needs: ['retraining'], units: 'fraction', range: [0, 1] });
  });

  it('are computed by evaluateMetrics from the inputs given, as the harness computed them before, and not where none are given', async () => {
    const m = createScoreMatrix(['a', 'b', 'c', 'd'], ['q1', 'q2', 'q3'], [3, 0, 1, 2, 1, 0, 1, 2, 2, 0, 3, 1], { method: 't', computedOver: 'test', checkpoints: [], transforms: [] });
    const subsets = [[0, 1], [1, 2], [2, 3], [0, 3]];
    const losses = subsets.map((s, j) => Float64Array.of(-s.length - j, j % 2, -j));
    const removed: number[][] = [];
    const sources = [{ id: 's', testIds: ['q1', 'q3'], labels: [1, 0, 0, 1] }];
    const [e] = await evaluateMetrics(m, sources, [ldsMetric, leaveOutMetric(2, ['mine'])], () => ({
      method: 'mine', retrainedLosses: { subsets, losses }, retraining: { fractionFixed: async (remove) => (removed.push([...remove]), 0.5) },
    }));
    expect(e!.values[0]).toBe(linearDatamodelingScore(m, subsets, losses, { columns: [0, 2] }).mean.mean);
    expect(e!.values[1]).toBe(0.5);
    expect(removed).toEqual([topRows(m, [0, 2], 2)]);
    // Another method than the ones leave-out is asked to retrain for, and a row without inputs: not computed.
    const [other] = await evaluateMetrics(m, sources, [leaveOutMetric(2, ['mine'])], () => ({ method: 'theirs', retraining: { fractionFixed: async () => 1 } }));
    expect(Number.isNaN(other!.values[0])).toBe(true);
    const [none] = await evaluateMetrics(m, sources, [ldsMetric]);
    expect(Number.isNaN(none!.values[0])).toBe(true);
  });

  it("leave-out's opt-out of row-order is for ties only", async () => {
    const report = await checkMetric('leave-out', { optOut: { 'row-order': 'ties at the k-th score are broken by row order (topRows)' } });
    expect(report.findings.find((f) => f.check === 'row-order')?.message).toMatch(/run anyway: fail: shuffling the rows of scores with ties changes the value/);
  });

  it('a counterfactual metric that ignores its inputs fails the contract', async () => {
    // "Leave-out" that removes the lowest-scoring rows instead: true sources ranked first fix nothing.
    const report = await checkMetric({ id: 'bad-leave-out', create: () => ({ id: 'bad-leave-out', description: 'removes the bottom k instead of the top k', needs: ['retraining'], compute: async (scores, _l, inputs) => inputs!.retraining!.fractionFixed(topRows(inputs!.matrix, [0], scores.length).slice(-20)) }) });
    expect(report.findings.find((f) => f.check === 'ranking')?.status).toBe('fail');
  });
});

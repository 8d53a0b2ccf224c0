import { describe, expect, it } from 'vitest';
import { type Metric, metrics } from '@dda/core';
import { checkMetric } from '@dda/conformance';
import { metricConformance } from '@dda/conformance/vitest';

// The core's metrics against the metric contract.
metricConformance('auc');
metricConformance('recall-at-k');
metricConformance('recall-at-k', { options: { k: 50 } });
metricConformance('average-precision');
metricConformance('mrr');

describe('the metric checks catch a broken metric', () => {
  const subject = (compute: Metric['compute']) => ({ id: 'broken', create: (): Metric => ({ id: 'broken', description: 'a metric that breaks a contract', compute }) });
  it.each([
    // Where the first true source is in the training set: depends on its order.
    ['row-order', (_s: ArrayLike<number>, l: ArrayLike<number>) => Array.from(l).indexOf(1)],
    // The mean score of the true sources: depends on the scores' units.
    ['score-scale', (s: ArrayLike<number>, l: ArrayLike<number>) => Array.from(s).reduce((a, x, i) => a + (l[i] === 1 ? x : 0), 0)],
    // The rank of the first true source, lower is better, without saying so.
    ['ranking', (s: ArrayLike<number>, l: ArrayLike<number>) => Array.from(s).filter((x, i) => l[i] === 0 && x > Math.max(...Array.from(s).filter((_, j) => l[j] === 1))).length],
    ['finite', () => Number.NaN],
  ] as const)('%s', async (check, compute) => {
    const report = await checkMetric(subject(compute));
    const f = report.findings.find((x) => x.check === check)!;
    expect(f.status, f.message).toBe('fail');
  });
});

describe('the options check', () => {
  const metric: Metric = { id: 'conformance-undeclared', description: 'a metric whose entry does not say its options', compute: () => 0 };
  it('fails a registered metric whose entry does not declare its options, passes one that does, and does not apply to a bare subject', async () => {
    if (!metrics.has('conformance-undeclared')) metrics.register({ id: 'conformance-undeclared', description: metric.description, priority: 0, create: () => metric });
    const f = (await checkMetric('conformance-undeclared')).findings.find((x) => x.check === 'options')!;
    expect(f.status).toBe('fail');
    expect(f.message).toMatch(/does not declare its options/);
    expect((await checkMetric('recall-at-k', { options: { k: 50 } })).findings.find((x) => x.check === 'options')).toMatchObject({ status: 'pass', message: 'declares its options k' });
    expect((await checkMetric({ id: 'conformance-undeclared', create: () => metric })).findings.find((x) => x.check === 'options')!.status).toBe('not-applicable');
  });
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { metrics, type Metric } from '@dda/core';
import { benchMetricList, pairedAgainst, parseBenchConfig, summarize, summaryMarkdown, writeBenchOutputs, type BenchResult } from '@dda/harness';
import { syntheticBench } from './helpers/synthetic-bench.js';

// A metric of the `metrics` registry, as a plugin would register it: the harness names no metric
// id, yet the metric reaches the CSVs, the summary, the paired tests and the report.
const dir = mkdtempSync(join(tmpdir(), 'dda-registry-metrics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const topHit: Metric = { id: 'top-hit', description: 'test metric', compute: (_s, labels) => labels[0] as number };
if (!metrics.has('top-hit')) metrics.register({ id: 'top-hit', description: topHit.description, priority: 1, create: () => topHit });

/** The synthetic benchmark with a registry metric on every row (per source a value, `average` their mean). */
function withMetric(): BenchResult {
  const r = syntheticBench('bench');
  const rows = r.rows.map((x) => ({ ...x, metrics: { ...x.metrics, 'top-hit': x.metrics['auc']! / 100 } }));
  const list = [...r.metrics, { key: 'top-hit', metric: topHit, column: 'top-hit', summaryColumn: 'top-hit', lead: false, interval: true, paired: true, computed: true }];
  return { ...r, metrics: list, rows, summary: summarize(rows, list), paired: pairedAgainst(rows, 'grad-dot', list) };
}

function csvRecords(path: string): Record<string, string>[] {
  const [head, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
  const cols = (head as string).split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i] as string, v])));
}

describe('registry metrics in the benchmark outputs', () => {
  const r = withMetric();

  it('are summarised as mean and 95% interval over the units, and paired against the reference', () => {
    for (const s of r.summary) {
      const sel = r.rows.filter((x) => x.source === 'average' && x.method === s.method && (s.family === 'all' || x.family === s.family));
      expect(s.metrics?.['top-hit']?.mean).toBeCloseTo(sel.reduce((a, x) => a + x.metrics['auc']! / 100, 0) / sel.length, 12);
      expect(s.metrics!['top-hit']!.low).toBeLessThanOrEqual(s.metrics!['top-hit']!.mean);
    }
    const auc = r.paired.filter((p) => p.metric === 'auc');
    const extra = r.paired.filter((p) => p.metric === 'top-hit');
    expect(extra.map((p) => p.method)).toEqual(auc.map((p) => p.method));
    // The metric is AUC / 100 here: the same test on the same units, the difference in its unit.
    extra.forEach((p, i) => {
      expect(p.meanDifference).toBeCloseTo(auc[i]!.meanDifference / 100, 12);
      expect(p.pValue).toBe(auc[i]!.pValue);
    });
  });

  it('are columns of the CSVs, the Markdown summary and the report', async () => {
    const paths = await writeBenchOutputs(r, dir, 'dda bench --name synthetic');
    const rows = csvRecords(join(dir, 'synthetic.csv'));
    rows.forEach((row, i) => expect(Number(row['top-hit'])).toBe(Number((r.rows[i]!.metrics['auc']! / 100).toFixed(4))));
    const summary = csvRecords(join(dir, 'synthetic-summary.csv'));
    summary.forEach((row, i) => {
      expect(Number(row['top-hit_mean'])).toBe(Number(r.summary[i]!.metrics!['top-hit']!.mean.toFixed(4)));
      expect(row).toHaveProperty('top-hit_low');
      expect(row).toHaveProperty('top-hit_high');
    });
    expect(csvRecords(join(dir, 'synthetic-paired.csv')).some((p) => p.metric === 'top-hit')).toBe(true);
    expect(summaryMarkdown(r).split('\n')[0]).toMatch(/\| MRR \| top-hit \|$/);
    const html = readFileSync(paths.find((p) => p.endsWith('-report.html'))!, 'utf8');
    expect(html).toContain('<th class="num">top-hit</th>');
  });

  it('come from the config by id (with options), and unknown or clashing ids are refused', async () => {
    const o = { kind: 'bench' as const, retrainedMethods: [] };
    const made = await benchMetricList(parseBenchConfig({ metrics: ['auc', 'recall', 'top-hit', { id: 'recall-at-k', k: 7 }] }, 'test'), o);
    // The default list (the committed results' columns) first, then the configuration's registry metrics.
    expect(made.map((m) => m.key)).toEqual(['auc', 'recall_at_k', 'lds', 'leave_out', 'leave_out_random', 'average_precision', 'recall_at_50', 'mrr', 'top-hit', 'recall-at-7']);
    expect(made.map((m) => m.metric.id)).toEqual(['auc', 'recall-at-20', 'lds', 'leave-out', 'leave-out-random', 'average-precision', 'recall-at-50', 'mrr', 'top-hit', 'recall-at-7']);
    expect(made.filter((m) => !m.computed).map((m) => m.key)).toEqual(['lds', 'leave_out', 'leave_out_random']);
    const lds = await benchMetricList(parseBenchConfig({ metrics: ['auc', 'lds'] }, 'test'), o);
    expect(lds.filter((m) => m.computed).map((m) => m.key)).toEqual(['auc', 'recall_at_k', 'lds', 'average_precision', 'recall_at_50', 'mrr']);
    expect(lds.find((m) => m.key === 'lds')?.metric.needs).toEqual(['retrainedLosses']);
    await expect(benchMetricList(parseBenchConfig({ metrics: ['auc', 'ndcg'] }, 'test'), o)).rejects.toThrow(/unknown metric 'ndcg'/);
    if (!metrics.has('seconds')) metrics.register({ id: 'seconds', description: 'clash', priority: 1, create: () => ({ id: 'seconds', description: 'clash', compute: () => 0 }) });
    await expect(benchMetricList(parseBenchConfig({ metrics: ['seconds'] }, 'test'), o)).rejects.toThrow(/metric 'seconds' has the name of a column the harness writes itself/);
  });
});

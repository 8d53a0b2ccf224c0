import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { metrics, type Metric } from '@dda/core';
import { checkPageInBrowser } from '@dda/report';
import { benchMetricList, loadReportData, pairedAgainst, parseBenchConfig, renderReportWithWarnings, summarize, summaryLatex, summaryMarkdown, writeBenchOutputs, type BenchResult } from '@dda/harness';
import { metricChart } from '../src/report-charts.js';
import { syntheticBench } from './helpers/synthetic-bench.js';

// A metric of the `metrics` registry, as a plugin would register it: the harness names no metric
// id, yet the metric reaches the CSVs, the summary, the paired tests and the report.
const dir = mkdtempSync(join(tmpdir(), 'dda-registry-metrics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const topHit: Metric = { id: 'top-hit', description: 'test metric', label: 'top hit', units: 'fraction', range: [0, 1], digits: 2, compute: (_s, labels) => labels[0] as number };
if (!metrics.has('top-hit')) metrics.register({ id: 'top-hit', description: topHit.description, priority: 1, create: () => topHit });

/** The synthetic benchmark with a registry metric on every row (per source a value, `average` their mean). */
function withMetric(): BenchResult {
  const r = syntheticBench('bench');
  const rows = r.rows.map((x) => ({ ...x, metrics: { ...x.metrics, 'top-hit': x.metrics['auc']! / 100 } }));
  const list = [...r.metrics, { key: 'top-hit', metric: topHit, column: 'top-hit', summaryColumn: 'top-hit', lead: false, interval: true, paired: true, computed: true, asked: true }];
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
    expect(summaryMarkdown(r).split('\n')[0]).toMatch(/\| MRR \| top hit \|$/);
    const html = readFileSync(paths.find((p) => p.endsWith('-report.html'))!, 'utf8');
    expect(html).toContain('<th class="num">top hit</th>');
  });

  it('get a column of the LaTeX summary (label, digits, best in bold by direction) and a chart of the report, from a run and from its summary JSON', async () => {
    const base = summaryLatex(syntheticBench('bench'), 'dda bench');
    const tex = summaryLatex(r, 'dda bench');
    const body = (t: string): string[] => t.split('\n').filter((l) => l.endsWith('\\\\') && !l.startsWith('method'));
    // The built-in columns as before; one more column, `top hit (all)`, with the metric's 2 digits.
    expect(tex.split('\n').find((l) => l.startsWith('method'))).toBe(`${base.split('\n').find((l) => l.startsWith('method'))!.slice(0, -3)} & top hit (all) \\\\`);
    expect(tex).toContain('and recall@5, top hit (fraction) over all units');
    const all = r.summary.filter((x) => x.family === 'all');
    const best = Math.max(...all.map((x) => x.metrics['top-hit']!.mean));
    body(tex).forEach((line, i) => {
      const cell = line.slice(line.lastIndexOf('&') + 2, -3);
      const mean = all[i]!.metrics['top-hit']!.mean;
      expect(cell).toBe(mean === best ? `\\textbf{${mean.toFixed(2)}}` : mean.toFixed(2));
      expect(line.slice(0, line.lastIndexOf('&') - 1)).toBe(body(base)[i]!.slice(0, -3));
    });
    // Lower is better: the lowest mean is bold, and the caption says so.
    const lower = { ...r, metrics: r.metrics.map((m) => (m.key === 'top-hit' ? { ...m, metric: { ...m.metric, higherIsBetter: false } } : m)) };
    const worst = Math.min(...all.map((x) => x.metrics['top-hit']!.mean));
    expect(summaryLatex(lower, 'dda bench')).toContain(`\\textbf{${worst.toFixed(2)}} \\\\`);
    expect(summaryLatex(lower, 'dda bench')).toContain('(the lowest where lower is better)');

    // The report's chart of the metric, best first; rebuilt from the summary JSON with the descriptor it recorded.
    const out = join(dir, 'latex');
    await writeBenchOutputs(r, out, 'dda bench --name synthetic', ['latex']);
    const html = readFileSync(join(out, 'synthetic-report.html'), 'utf8');
    expect(html).toContain('id="chart-metric-top-hit"');
    const seen = await checkPageInBrowser(join(out, 'synthetic-report.html'));
    expect(seen.requests).toEqual([]);
    expect(seen.consoleErrors).toEqual([]);
    // One bar and one interval rule per method of the `all` rows.
    expect(seen.charts.find((c) => c.id === 'metric-top-hit')?.marks).toBeGreaterThanOrEqual(all.length);
    const chart = metricChart(all, { key: 'top-hit', metric: topHit }, 't');
    const values = (chart.data as { values: { method: string; value: number }[] }).values;
    expect(values.map((v) => v.value)).toEqual([...values.map((v) => v.value)].sort((a, b) => b - a));
    expect((chart as { layer: { encoding: { x: { title?: string; scale?: unknown } } }[] }).layer[0]!.encoding.x).toMatchObject({ title: 'top hit (fraction)', scale: { domain: [0, 1] } });
    const json = JSON.parse(readFileSync(join(out, 'synthetic-summary.json'), 'utf8')) as { metricDescriptors?: unknown };
    expect(json.metricDescriptors).toEqual({ 'top-hit': { id: 'top-hit', description: 'test metric', label: 'top hit', units: 'fraction', range: [0, 1], digits: 2 } });
    const back = loadReportData(join(out, 'synthetic-summary.json'));
    expect(summaryLatex(back.data, back.command)).toBe(readFileSync(join(out, 'synthetic-summary.tex'), 'utf8'));
    expect((await renderReportWithWarnings(back.data, 'dda bench')).html).toContain('id="chart-metric-top-hit"');
    // Without registry metrics the summary JSON records no descriptors (the committed summaries' format).
    await writeBenchOutputs(syntheticBench('bench'), join(dir, 'plain'), 'dda bench');
    expect(JSON.parse(readFileSync(join(dir, 'plain', 'synthetic-summary.json'), 'utf8'))).not.toHaveProperty('metricDescriptors');
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

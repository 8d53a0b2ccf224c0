import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_COLUMNS, SUMMARY_COLUMNS, loadReportData, summaryJson, summaryMarkdown, writeBenchOutputs } from '@dda/harness';
import { syntheticBench } from './helpers/synthetic-bench.js';

const dir = mkdtempSync(join(tmpdir(), 'dda-ranking-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The CSV file's rows as records (no quoted commas in these files' numeric columns). */
function csvRecords(path: string): Record<string, string>[] {
  const [head, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
  const cols = (head as string).split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i] as string, v])));
}

describe('average precision, Recall@50 and MRR in the benchmark outputs', () => {
  const r = syntheticBench('bench');
  const at = (s: (typeof r.summary)[number], key: string) => s.metrics[key]!;

  it('are summarised per (family, method) as the mean of the average rows, with intervals', () => {
    for (const s of r.summary) {
      const sel = r.rows.filter((x) => x.source === 'average' && x.method === s.method && (s.family === 'all' || x.family === s.family));
      const mean = (key: string): number => sel.reduce((a, x) => a + x.metrics[key]!, 0) / sel.length;
      for (const key of ['average_precision', 'recall_at_50', 'mrr']) {
        expect(at(s, key).mean).toBeCloseTo(mean(key), 12);
        expect(at(s, key).low).toBeLessThanOrEqual(at(s, key).mean + 1e-12);
        expect(at(s, key).high).toBeGreaterThanOrEqual(at(s, key).mean - 1e-12);
      }
    }
  });

  it('are columns of the per-run CSV and of the summary CSV, and read back from the summary JSON', async () => {
    await writeBenchOutputs(r, dir, 'dda bench --name synthetic');
    // The published schema of the committed results, which the default metric list must reproduce.
    expect(BENCH_COLUMNS).toEqual(['family', 'method', 'scorer', 'variant', 'source', 'seed', 'auc', 'recall_at_k', 'k', 'n_positives', 'n_train', 'n_tests', 'seconds', 'measurement', 'lds', 'leave_out', 'leave_out_random', 'average_precision', 'recall_at_50', 'mrr']);
    expect(SUMMARY_COLUMNS).toEqual(['family', 'method', 'n', 'auc_mean', 'auc_low', 'auc_high', 'recall_mean', 'recall_low', 'recall_high', 'seconds_mean', 'lds_mean', 'lds_low', 'lds_high', 'leave_out_mean', 'leave_out_random_mean', 'ap_mean', 'ap_low', 'ap_high', 'recall50_mean', 'recall50_low', 'recall50_high', 'mrr_mean', 'mrr_low', 'mrr_high']);
    const rows = csvRecords(join(dir, 'synthetic.csv'));
    expect(rows).toHaveLength(r.rows.length);
    rows.forEach((row, i) => {
      const x = r.rows[i]!;
      for (const key of ['average_precision', 'recall_at_50', 'mrr']) expect(Number(row[key])).toBe(Number(x.metrics[key]!.toFixed(4)));
    });
    const summary = csvRecords(join(dir, 'synthetic-summary.csv'));
    summary.forEach((row, i) => {
      const s = r.summary[i]!;
      expect(Number(row.ap_mean)).toBe(Number(at(s, 'average_precision').mean.toFixed(4)));
      expect(Number(row.recall50_high)).toBe(Number(at(s, 'recall_at_50').high.toFixed(4)));
      expect(Number(row.mrr_low)).toBe(Number(at(s, 'mrr').low.toFixed(4)));
    });
    // The summary JSON keeps its flat fields (apMean, recall50High, ...), and reads back into the same rows.
    const j = JSON.parse(readFileSync(join(dir, 'synthetic-summary.json'), 'utf8')) as { summary: Record<string, unknown>[] };
    expect(Object.keys(j.summary[0]!)).toEqual(['family', 'method', 'n', 'aucMean', 'aucLow', 'aucHigh', 'recallMean', 'recallLow', 'recallHigh', 'secondsMean', 'ldsMean', 'ldsLow', 'ldsHigh', 'leaveOutMean', 'leaveOutRandomMean', 'apMean', 'apLow', 'apHigh', 'recall50Mean', 'recall50Low', 'recall50High', 'mrrMean', 'mrrLow', 'mrrHigh']);
    const back = loadReportData(join(dir, 'synthetic-summary.json')).data;
    expect(back.summary.map((x) => summaryJson(x, back.metrics))).toEqual(r.summary.map((x) => summaryJson(x, r.metrics)));
  });

  it('are columns of the Markdown summary, under their descriptors\' labels', () => {
    const lines = summaryMarkdown(r).split('\n');
    expect(lines[0]).toBe('| method | n | AUC (%) | 95% CI (Student-t over n) | recall@5 | LDS | leave-out (errors fixed) | random k | AP | recall@50 | MRR |');
    const s = r.summary.find((x) => x.family === 'all')!;
    const f3 = (key: string): string => (Number.isFinite(at(s, key).mean) ? at(s, key).mean.toFixed(3) : '–');
    expect(lines[2]).toBe(`| ${s.method} | ${s.n} | ${at(s, 'auc').mean.toFixed(2)} | [${at(s, 'auc').low.toFixed(2)}, ${at(s, 'auc').high.toFixed(2)}] | ${['recall_at_k', 'lds', 'leave_out', 'leave_out_random', 'average_precision', 'recall_at_50', 'mrr'].map(f3).join(' | ')} |`);
  });

  it('read back as NaN from a summary stored before they were computed', () => {
    const path = join(dir, 'old-summary.json');
    const j = JSON.parse(readFileSync(join(dir, 'synthetic-summary.json'), 'utf8')) as { summary: Record<string, unknown>[] };
    for (const s of j.summary) for (const f of ['apMean', 'apLow', 'apHigh', 'recall50Mean', 'recall50Low', 'recall50High', 'mrrMean', 'mrrLow', 'mrrHigh']) delete s[f];
    writeFileSync(path, JSON.stringify(j));
    const back = loadReportData(path).data.summary[0]!;
    expect([back.metrics['average_precision']!.mean, back.metrics['recall_at_50']!.mean, back.metrics['mrr']!.high].every(Number.isNaN)).toBe(true);
    expect(back.metrics['auc']!.mean).toBe(r.summary[0]!.metrics['auc']!.mean);
  });
});

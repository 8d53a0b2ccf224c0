import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_COLUMNS, SUMMARY_COLUMNS, loadReportData, summaryMarkdown, writeBenchOutputs } from '@dda/harness';
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

  it('are summarised per (family, method) as the mean of the average rows, with intervals', () => {
    for (const s of r.summary) {
      const sel = r.rows.filter((x) => x.source === 'average' && x.method === s.method && (s.family === 'all' || x.family === s.family));
      const mean = (f: (x: (typeof sel)[number]) => number): number => sel.reduce((a, x) => a + f(x), 0) / sel.length;
      expect(s.apMean).toBeCloseTo(mean((x) => x.averagePrecision), 12);
      expect(s.recall50Mean).toBeCloseTo(mean((x) => x.recallAt50), 12);
      expect(s.mrrMean).toBeCloseTo(mean((x) => x.mrr), 12);
      for (const [lo, m, hi] of [[s.apLow, s.apMean, s.apHigh], [s.recall50Low, s.recall50Mean, s.recall50High], [s.mrrLow, s.mrrMean, s.mrrHigh]] as const) {
        expect(lo).toBeLessThanOrEqual(m + 1e-12);
        expect(hi).toBeGreaterThanOrEqual(m - 1e-12);
      }
    }
  });

  it('are columns of the per-run CSV and of the summary CSV, and read back from the summary JSON', async () => {
    await writeBenchOutputs(r, dir, 'dda bench --name synthetic');
    expect(BENCH_COLUMNS).toEqual(expect.arrayContaining(['average_precision', 'recall_at_50', 'mrr']));
    const rows = csvRecords(join(dir, 'synthetic.csv'));
    expect(rows).toHaveLength(r.rows.length);
    rows.forEach((row, i) => {
      const x = r.rows[i]!;
      expect(Number(row.average_precision)).toBe(Number(x.averagePrecision.toFixed(4)));
      expect(Number(row.recall_at_50)).toBe(Number(x.recallAt50.toFixed(4)));
      expect(Number(row.mrr)).toBe(Number(x.mrr.toFixed(4)));
    });
    expect(SUMMARY_COLUMNS).toEqual(expect.arrayContaining(['ap_mean', 'ap_low', 'ap_high', 'recall50_mean', 'mrr_mean', 'mrr_high']));
    const summary = csvRecords(join(dir, 'synthetic-summary.csv'));
    summary.forEach((row, i) => {
      const s = r.summary[i]!;
      expect(Number(row.ap_mean)).toBe(Number(s.apMean.toFixed(4)));
      expect(Number(row.recall50_high)).toBe(Number(s.recall50High.toFixed(4)));
      expect(Number(row.mrr_low)).toBe(Number(s.mrrLow.toFixed(4)));
    });
    expect(loadReportData(join(dir, 'synthetic-summary.json')).data.summary).toEqual(r.summary);
  });

  it('are columns of the Markdown summary', () => {
    const lines = summaryMarkdown(r).split('\n');
    expect(lines[0]).toBe('| method | n | AUC (%) | 95% CI (Student-t over n) | recall@5 | AP | Recall@50 | MRR |');
    const s = r.summary.find((x) => x.family === 'all')!;
    expect(lines[2]).toBe(`| ${s.method} | ${s.n} | ${s.aucMean.toFixed(2)} | [${s.aucLow.toFixed(2)}, ${s.aucHigh.toFixed(2)}] | ${s.recallMean.toFixed(3)} | ${s.apMean.toFixed(3)} | ${s.recall50Mean.toFixed(3)} | ${s.mrrMean.toFixed(3)} |`);
  });

  it('read back as NaN from a summary stored before they were computed', () => {
    const path = join(dir, 'old-summary.json');
    const j = JSON.parse(readFileSync(join(dir, 'synthetic-summary.json'), 'utf8')) as { summary: Record<string, unknown>[] };
    for (const s of j.summary) for (const f of ['apMean', 'apLow', 'apHigh', 'recall50Mean', 'recall50Low', 'recall50High', 'mrrMean', 'mrrLow', 'mrrHigh']) delete s[f];
    writeFileSync(path, JSON.stringify(j));
    const back = loadReportData(path).data.summary[0]!;
    expect([back.apMean, back.recall50Mean, back.mrrHigh].every(Number.isNaN)).toBe(true);
    expect(back.aucMean).toBe(r.summary[0]!.aucMean);
  });
});

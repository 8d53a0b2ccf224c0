import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RECOMMENDED_DDA } from '@dda/attribution';
import {
  PAIRED_UNIT, RECOMMENDED_ROW, TOO_FEW_FOR_INTERVAL, leaderboardDda, loadReportData, renderReport, writeBenchOutputs, meanInterval, pairedAgainst, pairedReferences, parseBenchConfig, summarize, summaryMarkdown, defaultBenchMetrics, type BenchConfig, type BenchMetric, type BenchRow,
} from '@dda/harness';
import { syntheticBench } from './helpers/synthetic-bench.js';

/** `average` rows (and per-source rows) of one method for the given families × seeds, AUC from `auc(family, seed)`. */
function rowsOf(method: string, families: string[], seeds: number[], auc: (f: string, s: number) => number): BenchRow[] {
  const { scorer, variant } = /^(.+)\(([^()]+)\)$/.test(method) ? { scorer: method.replace(/^.*\(|\)$/g, ''), variant: method.replace(/\(.*$/, '') } : { scorer: method, variant: 'plain' };
  return families.flatMap((family) => seeds.flatMap((seed) => ['a', 'b', 'average'].map((source) => ({
    family, method, scorer, variant, measurement: 'loss', seed, seconds: 1, source, k: 5, nPositives: 2, nTrain: 10, nTests: 2,
    metrics: { auc: auc(family, seed) + (source === 'a' ? 1 : source === 'b' ? -1 : 0), recall_at_k: 0.5 },
  }))));
}

/** The default metric list of a configuration (the registry's metrics), as a run has it. */
const metricsOf = (c: BenchConfig): BenchMetric[] => defaultBenchMetrics(c, { kind: 'bench', retrainedMethods: [] });
const list = metricsOf(parseBenchConfig({ k: 5 }, 't'));

describe('benchmark statistics sized for the number of runs', () => {
  it('summarises with a Student-t interval over the seeds and gives n; none for one run', () => {
    const rows = rowsOf('grad-dot', ['f'], [0, 1], (_, s) => (s === 0 ? 80 : 90));
    const two = summarize(rows, list).filter((r) => r.family === 'f');
    const [row] = two;
    const t = meanInterval([80, 90]);
    // The percentile bootstrap gave [80, 90] here: [min, max] of two runs. Student-t: 85 ± 63.5, within [0, 100].
    expect(t.low).toBeCloseTo(85 - 12.706204736174707 * 5, 9);
    expect(row).toMatchObject({ n: 2, metrics: { auc: { mean: 85, low: t.low, high: 100 } } });
    const one = summarize(rowsOf('grad-dot', ['f'], [0], () => 80), list);
    expect(Number.isNaN(one[0]?.metrics['auc']?.low)).toBe(true);
    const md = summaryMarkdown({ metrics: list, summary: one });
    expect(md).toContain(`| grad-dot | 1 | 80.00 | ${TOO_FEW_FOR_INTERVAL} (n = 1) |`);
    expect(md).not.toContain('LDS'); // no column for a metric the config did not measure
    // With LDS and leave-out measured, the printed table has their columns.
    const withLds = two.map((r) => ({ ...r, metrics: { ...r.metrics, lds: { mean: 0.25, low: 0.1, high: 0.4 }, leave_out: { mean: 0.5, low: Number.NaN, high: Number.NaN }, leave_out_random: { mean: 0.125, low: Number.NaN, high: Number.NaN } } }));
    const md2 = summaryMarkdown({ metrics: metricsOf(parseBenchConfig({ k: 5, metrics: ['auc', 'recall', 'lds', 'leave-out'] }, 't')), summary: withLds }, 'f');
    expect(md2).toMatch(/\| recall@5 \| LDS \| leave-out \(errors fixed\) \| random k \| AP \| recall@50 \| MRR \|/);
    expect(md2).toMatch(/\| 0\.500 \| 0\.250 \| 0\.500 \| 0\.125 \| – \| – \| – \|/);
  });

  it('pairs family × seed cells, not their sources, and reports the smallest reachable p', () => {
    const fams = ['f1', 'f2'];
    const seeds = [0, 1];
    const rows = [...rowsOf('dda-recommended(grad-dot)', fams, seeds, () => 90), ...rowsOf('grad-dot', fams, seeds, () => 80)];
    const [t] = pairedAgainst(rows, 'dda-recommended(grad-dot)', list);
    // 2 families × 2 seeds = 4 cells (the sources of a cell share its model; 8 source units overstated n).
    expect(t).toMatchObject({ metric: 'auc', method: 'grad-dot', n: 4, unit: PAIRED_UNIT, meanDifference: 10, exact: true, pValue: 2 / 16, minPValue: 2 / 16 });
    expect(PAIRED_UNIT).toMatch(/family × seed cell/);
  });

  it('tests every method against the plain scorer and the recommended DDA, which is on every leaderboard and ablation', () => {
    const c = parseBenchConfig({ scorers: ['grad-dot', 'bm25'] }, 't');
    const dda = leaderboardDda(c);
    expect(dda.map((v) => v.name)).toEqual(['dda', 'dda-zscore', RECOMMENDED_ROW]);
    expect(dda.at(-1)).toMatchObject({ debiaser: RECOMMENDED_DDA.debias, denoiser: RECOMMENDED_DDA.denoise });
    expect(pairedReferences('bench', c)).toEqual(['dda-recommended(grad-dot)', 'grad-dot']);
    expect(pairedReferences('ablation', c)).toEqual([RECOMMENDED_ROW, 'neither']);
    // A config that already has the recommended pair under its own name gets no second copy.
    const own = parseBenchConfig({ dda: [{ name: 'mine', debiaser: 'fitted-beta', denoiser: 'zscore-mean', beta: 1 }] }, 't');
    expect(leaderboardDda(own).map((v) => v.name)).toEqual(['mine']);
    expect(pairedReferences('bench', own)).toEqual(['mine(grad-dot)', 'grad-dot']);
    const r = syntheticBench('bench');
    expect(new Set(r.paired.map((p) => p.reference))).toEqual(new Set(['dda-recommended(grad-dot)', 'grad-dot']));
    expect(r.paired.every((p) => p.n === 4 && p.minPValue === 2 / 16)).toBe(true);
  });

  it('a summary written before (bootstrap intervals, per-source units) is re-rendered as what it is', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dda-old-summary-'));
    try {
      await writeBenchOutputs(syntheticBench('bench'), dir, 'dda bench');
      const path = join(dir, 'synthetic-summary.json');
      const now = loadReportData(path).data;
      expect(now.intervals).toBe('student-t');
      expect(await renderReport(now, 'dda bench')).toContain('95% Student-t intervals over the n runs');
      // The same file as an older version wrote it: no `intervals`, paired rows without unit and smallest p.
      const j = JSON.parse(readFileSync(path, 'utf8')) as { intervals?: string; paired: Record<string, unknown>[] };
      delete j.intervals;
      for (const p of j.paired) {
        delete p.unit;
        delete p.minPValue;
      }
      writeFileSync(path, JSON.stringify(j));
      const old = loadReportData(path).data;
      expect(old.intervals).toBe('percentile-bootstrap');
      expect(old.paired[0]).toMatchObject({ unit: expect.stringMatching(/family × seed × source/), minPValue: 2 / 16 });
      const html = await renderReport(old, 'dda bench');
      expect(html).toContain('95% percentile-bootstrap intervals');
      expect(html).not.toContain('95% Student-t');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

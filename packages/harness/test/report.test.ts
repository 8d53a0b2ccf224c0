import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkPageInBrowser } from '@dda/report';
import {
  BENCH_COLUMNS, SUMMARY_COLUMNS, ablationGridLatex, defaultBenchMetrics, loadReportData, summaryJson, parseBenchConfig, parseMethod, renderReportWithWarnings, summaryLatex, writeBenchOutputs,
  type BenchResult, type SummaryRow,
} from '@dda/harness';
import { syntheticBench } from './helpers/synthetic-bench.js';

const dir = mkdtempSync(join(tmpdir(), 'dda-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('HTML reports in headless Chromium', () => {
  it.each([
    ['bench', ['leaderboard-all', 'leaderboard-llama2-tiny', 'leaderboard-qwen2-tiny', 'roc-llama2-tiny', 'roc-qwen2-tiny', 'recall-llama2-tiny', 'recall-qwen2-tiny', 'lds-vs-auc', 'timings']],
    ['ablation', ['ablation-components', 'ablation-beta', 'ablation-n', 'ablation-grid', 'ablation-grid-cross', 'roc-llama2-tiny', 'roc-qwen2-tiny', 'recall-llama2-tiny', 'recall-qwen2-tiny']],
  ] as const)('the %s report draws every chart, needs no network and logs no error', async (kind, charts) => {
    const r = syntheticBench(kind);
    const { html, warnings } = await renderReportWithWarnings(r, `dda ${kind} --name <synthetic>`);
    expect(warnings).toEqual([]);
    expect(html).not.toMatch(/<script|<link /);
    const path = join(dir, `${kind}.html`);
    writeFileSync(path, html);
    const seen = await checkPageInBrowser(path);
    expect(seen.requests).toEqual([]);
    expect(seen.consoleErrors).toEqual([]);
    expect(seen.charts.map((c) => c.id)).toEqual(charts);
    for (const c of seen.charts) expect(c.marks, c.id).toBeGreaterThan(0);
    expect(seen.text).toContain('dda ' + kind + ' --name <synthetic>'); // escaped in the source, shown as typed
  });

  it('draws one bar and one interval per leaderboard method, each scorer beside its DDA variants', async () => {
    const r = syntheticBench('bench');
    const { html } = await renderReportWithWarnings(r, 'dda bench');
    const path = join(dir, 'marks.html');
    writeFileSync(path, html);
    const seen = await checkPageInBrowser(path);
    const methodsPerFamily = new Set(r.summary.map((s) => s.method)).size; // 7
    // AUC and recall panels: a bar and an interval rule per method each, plus the chance rule of the AUC panel.
    expect(seen.charts.find((c) => c.id === 'leaderboard-all')?.marks).toBe(2 * 2 * methodsPerFamily + 1);
    expect(seen.charts.find((c) => c.id === 'timings')?.marks).toBe(methodsPerFamily);
    // LDS against AUC: a point and an interval rule per method, and the zero line.
    expect(seen.charts.find((c) => c.id === 'lds-vs-auc')?.marks).toBe(2 * methodsPerFamily + 1);
    // The summary table's columns come from the metric descriptors' labels: LDS with its interval, leave-out and its baseline.
    expect(seen.text).toMatch(/LDS 95% CI/);
    expect(seen.text).toMatch(/leave-out \(errors fixed\)/);
    expect(seen.text).toMatch(/random k/);
  });
});

describe('method names', () => {
  it('splits leaderboard methods into scorer and variant', () => {
    expect(parseMethod('grad-dot')).toEqual({ scorer: 'grad-dot', variant: 'plain' });
    expect(parseMethod('dda-zscore(if-lissa)')).toEqual({ scorer: 'if-lissa', variant: 'dda-zscore' });
  });
});

describe('LaTeX export', () => {
  // The default list's AUC and recall@k (its lead metrics, which the tables show); the other metrics have no values.
  const row = (family: string, method: string, auc: number, recall: number): SummaryRow => ({
    family, method, n: 3, secondsMean: 1,
    metrics: { auc: { mean: auc, low: auc - 5, high: auc + 5 }, recall_at_k: { mean: recall, low: recall - 0.1, high: recall + 0.1 } },
  });
  const config = parseBenchConfig({ name: 'my-run', k: 20, ablation: { scorer: 'grad-dot', debiasers: ['raw', 'fitted-beta'], denoisers: ['mean'] } }, 't');
  const metrics = defaultBenchMetrics(config, { kind: 'bench', retrainedMethods: [] });

  it('writes the leaderboard summary as a booktabs table with the best mean in bold', () => {
    const bm25 = row('all', 'bm25', 83.34, 0.218);
    const r = { kind: 'bench' as const, config, metrics, summary: [row('/models/my_model', 'grad-dot', 93.188, 0.5), row('/models/my_model', 'dda(grad-dot)', 44.306, 0.1), row('/models/my_model', 'bm25', 81.65, 0.2),
      row('all', 'grad-dot', 85.43, 0.391), row('all', 'dda(grad-dot)', 45.87, 0.073), { ...bm25, n: 1, metrics: { ...bm25.metrics, auc: { mean: 83.34, low: Number.NaN, high: Number.NaN } } }] };
    expect(summaryLatex(r, 'dda bench --name my-run')).toBe(`% Attribution leaderboard: my-run. Made by: dda bench --name my-run
% Scores: higher = training sample more responsible. AUC in percent (50 = chance).
\\begin{table}[t]
\\centering
\\caption{Attribution leaderboard (\\texttt{my-run}): mean ROC-AUC (\\%) over seeds per model family and over all family $\\times$ seed units (all, with its number of units n and 95\\% Student-t interval), and recall@20 over all units. Best mean per column in bold.}\\label{tab:my-run}
\\begin{tabular}{lrrrcr}
\\toprule
method & /models/my\\_model & all & n (all) & 95\\% CI (all) & recall@20 (all) \\\\
\\midrule
grad-dot & \\textbf{93.19} & \\textbf{85.43} & 3 & {}[80.4, 90.4] & 0.391 \\\\
dda(grad-dot) & 44.31 & 45.87 & 3 & {}[40.9, 50.9] & 0.073 \\\\
\\midrule
bm25 & 81.65 & 83.34 & 1 & too few runs for an interval (n = 1) & 0.218 \\\\
\\bottomrule
\\end{tabular}
\\end{table}
`);
  });

  it('writes the ablation rows and the debiaser × denoiser grid', () => {
    const summary = [row('all', 'full', 45.87, 0.07), row('all', 'neither', 85.43, 0.39), row('all', 'beta=0', 74.57, 0.26), row('all', 'beta=1', 45.87, 0.07),
      row('all', 'dda[raw+mean]', 45.87, 0.07), row('all', 'dda[fitted-beta+mean]', 72.89, 0.28), row('all', 'cross:dda[raw+mean]', 50.5, 0.1), row('all', 'cross:dda[fitted-beta+mean]', 80.25, 0.3)];
    const r = { kind: 'ablation' as const, config, metrics, summary };
    const tex = summaryLatex(r, 'dda ablate');
    expect(tex).toContain('\\caption{DDA ablation over \\texttt{grad-dot} (\\texttt{my-run}):');
    expect(tex).toContain('\\label{tab:my-run-ablation}');
    expect(tex.split('\n').filter((l) => l === '\\midrule')).toHaveLength(4); // header, then before beta=, dda[, cross:
    expect(tex).toContain('neither & \\textbf{85.43} & 3 & {}[80.4, 90.4] & 0.390 \\\\');
    expect(ablationGridLatex(r, 'dda ablate')).toBe(`% DDA ablation grid: my-run. Made by: dda ablate
\\begin{table}[t]
\\centering
\\caption{Every debiaser $\\times$ denoiser pair of DDA over \\texttt{grad-dot} (\\texttt{my-run}): mean ROC-AUC (\\%) over all family $\\times$ seed units, $\\beta = 1$ for the debiasers that take one (fitted-beta fits $\\beta$ per test output). Rows marked cross: base term with training gradients at $\\theta_0$ and test gradients at $\\theta'$. Best in bold.}\\label{tab:my-run-ablation-grid}
\\begin{tabular}{lr}
\\toprule
debiaser / denoiser & mean \\\\
\\midrule
raw & 45.87 \\\\
fitted-beta & 72.89 \\\\
\\midrule
cross: raw & 50.50 \\\\
cross: fitted-beta & \\textbf{80.25} \\\\
\\bottomrule
\\end{tabular}
\\end{table}
`);
    expect(ablationGridLatex({ ...r, kind: 'bench' }, '')).toBeUndefined();
  });
});

describe('benchmark output files', () => {
  it('keep the CSV columns, add LaTeX on request, and rebuild the report data from the summary and curves JSON', async () => {
    const r: BenchResult = syntheticBench('ablation');
    const out = join(dir, 'outputs');
    const files = await writeBenchOutputs(r, out, 'dda ablate --name synthetic', ['latex']);
    expect(files.map((f) => f.slice(out.length + 1))).toEqual([
      'synthetic-ablation.csv', 'synthetic-ablation-summary.csv', 'synthetic-ablation-paired.csv', 'synthetic-ablation-summary.json',
      'synthetic-ablation-curves.json', 'synthetic-ablation-report.html', 'synthetic-ablation-summary.tex', 'synthetic-ablation-grid.tex',
    ]);
    expect(readFileSync(join(out, 'synthetic-ablation.csv'), 'utf8').split('\n')[0]).toBe(BENCH_COLUMNS.join(','));
    expect(readFileSync(join(out, 'synthetic-ablation-summary.csv'), 'utf8').split('\n')[0]).toBe(SUMMARY_COLUMNS.join(','));
    const back = loadReportData(join(out, 'synthetic-ablation-summary.json'));
    expect(back.missing).toEqual([]);
    expect(back.command).toBe('dda ablate --name synthetic');
    // What the summary JSON holds of every row comes back (the units' count of an interval is not stored).
    expect(back.data.summary.map((s) => summaryJson(s, back.data.metrics))).toEqual(r.summary.map((s) => summaryJson(s, r.metrics)));
    expect(back.data.config).toEqual(r.config);
    expect(back.data.recallCurves.map((c) => c.recall)).toEqual(r.recallCurves.map((c) => c.recall.map((x) => Number(x.toFixed(4)))));
    expect(back.data.curves[0]?.points[3]?.fpr).toBeCloseTo(r.curves[0]?.points[3]?.fpr ?? NaN, 4);
    const without = await writeBenchOutputs({ ...r, config: { ...r.config, name: 'plain' } }, out, 'dda ablate');
    expect(without.some((f) => f.endsWith('.tex'))).toBe(false);
    expect(() => loadReportData(join(out, 'synthetic-ablation.csv'))).toThrow(/cannot read the benchmark summary/);
  });
});

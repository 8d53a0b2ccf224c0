/**
 * The HTML report of a benchmark or ablation: Vega-Lite charts rendered offline to inline SVG
 * (@dda/report) beside the tables, in one self-contained page (no scripts, nothing fetched).
 * Which charts a report has is decided here; how they look in report-charts.ts.
 */
import { chartFigure, escapeHtml, htmlPage, htmlTable, renderVegaLiteSvg, type ChartSpec } from '@dda/report';
import { pairedReferences, type BenchResult, type SummaryRow } from './bench.js';
import { leaderboardDda, RECOMMENDED_ROW } from './bench-config.js';
import { metricHeader, type ReportMetric } from './bench-metrics.js';
import { formatInterval, intervalsText, type IntervalKind } from './stats.js';
import { ablationComponentsChart, ablationKind, gridHeatmap, ldsAucChart, leaderboardChart, leaderboardKind, metricChart, parseGridRow, recallChart, rocChart, secondsChart, sweepChart } from './report-charts.js';

export { escapeHtml };

/** What a report is drawn from: a benchmark's result, or the same rebuilt from its summary JSON. */
export type ReportData = Pick<BenchResult, 'kind' | 'config' | 'summary' | 'paired' | 'curves' | 'recallCurves' | 'timings' | 'skipped'> & {
  /** The metrics of the summary, in column order (a run's, or the default list and the summary's registry metrics). */
  readonly metrics: readonly ReportMetric[];
  /** How the summary's intervals were computed (default `student-t`; older summaries: `percentile-bootstrap`). */
  readonly intervals?: IntervalKind;
};

/** Seconds with two decimals below 10 s, one above (the old `toFixed(1)` read 0.0 for fast scorers). */
export const formatSeconds = (s: number): string => (Number.isFinite(s) ? (s < 10 ? s.toFixed(2) : s.toFixed(1)) : '–');

/** A chart rendered to SVG in a `data-chart` figure; Vega's warnings are collected in `warnings`. */
async function figure(id: string, spec: ChartSpec, warnings: string[], caption?: string): Promise<string> {
  const slug = `c-${id.replace(/[^A-Za-z0-9_-]+/g, '-')}`;
  const r = await renderVegaLiteSvg(spec, slug);
  warnings.push(...r.warnings.map((w) => `${id}: ${w}`));
  return chartFigure(id, r.svg, caption);
}

/**
 * The summary table: per method n, then every metric the run computed (the list's order) under its
 * descriptor's label, its mean with the metric's digits and its 95% interval where the summary has
 * one, with the scoring seconds after the lead metrics.
 */
function summaryTable(rows: readonly SummaryRow[], list: readonly ReportMetric[], intervals: IntervalKind = 'student-t'): string {
  const ci = intervals === 'student-t' ? '95% CI (t, over n)' : '95% CI (bootstrap)';
  const shown = list.filter((m) => m.computed);
  const lead = shown.filter((m) => m.lead);
  const rest = shown.filter((m) => !m.lead);
  const headers = (ms: readonly ReportMetric[]): string[] => ms.flatMap((m) => (m.interval ? [metricHeader(m.metric), `${m.metric.label ?? m.metric.id} ${ci}`] : [metricHeader(m.metric)]));
  const cells = (s: SummaryRow, ms: readonly ReportMetric[]): string[] => ms.flatMap((m) => {
    const v = s.metrics[m.key];
    const d = m.metric.digits ?? 3;
    const mean = v !== undefined && Number.isFinite(v.mean) ? v.mean.toFixed(d) : '–';
    return m.interval ? [mean, v !== undefined && Number.isFinite(v.mean) ? formatInterval({ low: v.low, high: v.high, n: s.n }, d) : '–'] : [mean];
  });
  return htmlTable(
    ['method', 'n', ...headers(lead), 'scoring s', ...headers(rest)],
    rows.map((s) => [s.method, String(s.n), ...cells(s, lead), formatSeconds(s.secondsMean), ...cells(s, rest)]),
  );
}

/** `all` first, then the families in the order of the summary. */
function familiesOf(r: ReportData): string[] {
  const fams = [...new Set(r.summary.map((s) => s.family))];
  return [...fams.filter((f) => f === 'all'), ...fams.filter((f) => f !== 'all')];
}
const familyTitle = (f: string): string => (f === 'all' ? 'All families (mean over family × seed)' : f);

/**
 * The whole report as one HTML document, with the charts rendered.
 *
 * @param command - The command line that produced the results (shown in the page).
 * @param notes - Caveats shown at the top, e.g. data the committed results lack (text, escaped).
 * @returns The page and Vega's warnings (empty when every chart rendered cleanly).
 */
export async function renderReportWithWarnings(r: ReportData, command: string, notes: readonly string[] = []): Promise<{ html: string; warnings: string[] }> {
  const warnings: string[] = [];
  const k = r.config.k;
  const digitsOf = (key: string): number => r.metrics.find((m) => m.key === key)?.metric.digits ?? 3;
  const families = familiesOf(r);
  const variantOrder = ['plain', ...leaderboardDda(r.config).map((d) => d.name)];
  const s: string[] = [];
  if (r.kind === 'bench') {
    s.push('<h2>Leaderboard</h2><p>Each scorer with its DDA variants beside it; the variants are transforms over that scorer\'s score matrices (model-free scorers have none).</p>');
    for (const family of families) {
      const rows = r.summary.filter((x) => x.family === family);
      s.push(`<h3>${escapeHtml(familyTitle(family))}</h3>`);
      s.push(await figure(`leaderboard-${family}`, leaderboardChart(rows, k, `${family === 'all' ? 'All families' : family}: mean ROC-AUC and recall@${k}`, variantOrder), warnings));
      s.push(summaryTable(rows, r.metrics, r.intervals));
    }
  } else {
    const all = r.summary;
    s.push(`<h2>DDA components</h2><p>Ablation over <code>${escapeHtml(r.config.ablation.scorer)}</code>: debiaser <code>${escapeHtml(r.config.ablation.debiaser)}</code> (β = ${r.config.ablation.beta} where the debiaser takes one; <code>fitted-beta</code> fits its own per query) over denoiser <code>${escapeHtml(r.config.ablation.denoiser)}</code>; <code>neither</code> is plain influence at the final checkpoint; <code>${RECOMMENDED_ROW}</code> is the recommended DDA (debiaser <code>fitted-beta</code>, β fitted per query, over denoiser <code>zscore-mean</code>; the same scores as the grid's <code>dda[fitted-beta+zscore-mean]</code> where the grid has it).</p>`);
    s.push(await figure('ablation-components', ablationComponentsChart(all, 'DDA with and without debias and denoise'), warnings));
    if (all.some((x) => x.method.startsWith('beta='))) s.push(await figure('ablation-beta', sweepChart(all, 'beta=', 'β sweep (full DDA)', 'β'), warnings));
    if (all.some((x) => x.method.startsWith('N='))) s.push(await figure('ablation-n', sweepChart(all, 'N=', 'N sweep: DDA over the last N epoch checkpoints', 'N (checkpoints)'), warnings));
    const order = { debiasers: r.config.ablation.debiasers, denoisers: r.config.ablation.denoisers };
    if (all.some((x) => parseGridRow(x.method)?.cross === false)) {
      s.push(`<h2>Debiaser × denoiser</h2><p>Every pair, β = ${r.config.ablation.beta} for the debiasers that take one (<code>fitted-beta</code> fits β per query), the base term scored at θ0 (rows <code>dda[debiaser+denoiser]</code>).</p>`);
      s.push(await figure('ablation-grid', gridHeatmap(all, 'Every debiaser × denoiser pair: base term at θ0', false, order), warnings));
    }
    if (all.some((x) => parseGridRow(x.method)?.cross === true)) {
      s.push('<p>The second reading of the debias term: training gradients at θ0, test gradients at the final checkpoint θ\' (rows <code>cross:dda[debiaser+denoiser]</code>).</p>');
      s.push(await figure('ablation-grid-cross', gridHeatmap(all, "Every debiaser × denoiser pair: cross base term (train at θ0, test at θ')", true, order), warnings));
    }
    s.push('<h2>Every row</h2>');
    for (const family of families) {
      s.push(`<h3>${escapeHtml(familyTitle(family))}</h3>`);
      s.push(summaryTable(r.summary.filter((x) => x.family === family), r.metrics, r.intervals));
    }
  }
  // A chart per registry metric the configuration added (over all units), drawn from its descriptor.
  const askedMetrics = r.metrics.filter((m) => m.asked && m.computed);
  const allUnits = r.summary.filter((x) => x.family === 'all');
  if (askedMetrics.length > 0 && allUnits.length > 0) {
    s.push(`<h2>Metrics of the configuration</h2><p>The registry metrics the configuration's <code>metrics:</code> adds, mean over all family × seed units per ${r.kind === 'bench' ? 'method' : 'ablation row'}, best first; per family in the tables above.</p>`);
    for (const m of askedMetrics) {
      s.push(`<p>${escapeHtml(metricHeader(m.metric))}: ${escapeHtml(m.metric.description)}</p>`);
      s.push(await figure(`metric-${m.key}`, metricChart(allUnits, m, `${metricHeader(m.metric)} per method (all families)`), warnings));
    }
  }
  for (const reference of [...new Set(r.paired.map((p) => p.reference))]) {
    const tests = r.paired.filter((p) => p.reference === reference);
    const units = [...new Set(tests.map((p) => p.unit))].join('; ');
    s.push(`<h2>Paired tests against ${escapeHtml(reference)}</h2><p>Sign-flip permutation test; one unit = one ${escapeHtml(units)}, matched between the two methods; n units per test. Difference = reference − method, in the metric's unit (AUC in points). With n units the p-value cannot go below 2 / 2<sup>n</sup> (column <em>smallest p at n</em>): below 0.05 needs n ≥ 6.</p>`);
    s.push(htmlTable(['metric', 'method', 'n (units)', 'mean difference', 'p (two-sided)', 'smallest p at n', 'exact'], tests.map((p) => [p.metric ?? (r.metrics[0] as ReportMetric).key, p.method, String(p.n), p.meanDifference.toFixed(digitsOf(p.metric ?? (r.metrics[0] as ReportMetric).key)), p.pValue.toPrecision(3), Number.isFinite(p.minPValue) ? p.minPValue.toPrecision(3) : '–', p.exact ? 'yes' : 'Monte Carlo']), [false, false, true, true, true, true, false]));
  }
  // Curves: in a leaderboard every plain method and the reference DDA methods (the other DDA variants are in the tables).
  const references = new Set([...pairedReferences(r.kind, r.config), ...r.paired.map((p) => p.reference)]);
  const shown = (method: string): boolean => r.kind === 'ablation' || !method.includes('(') || references.has(method);
  const kind = r.kind === 'bench' ? leaderboardKind : ablationKind;
  const curveFamilies = [...new Set(r.curves.map((c) => c.family))];
  if (curveFamilies.length > 0) {
    s.push(`<h2>ROC curves per source</h2><p>First seed of each family (seed ${escapeHtml(String(r.curves[0]?.seed))}); a training sample's score is its mean over the source's test errors.</p>`);
    for (const family of curveFamilies) {
      const cs = r.curves.filter((c) => c.family === family && shown(c.method));
      s.push(await figure(`roc-${family}`, rocChart(cs, `${family}: ROC curves`, kind), warnings));
    }
  }
  const recallFamilies = [...new Set(r.recallCurves.map((c) => c.family))];
  if (recallFamilies.length > 0) {
    s.push(`<h2>Recall@k curves per source</h2><p>Fraction of a source's true sources among the k top-scoring training samples, k = 1..${k} (ties in expectation).</p>`);
    for (const family of recallFamilies) {
      const cs = r.recallCurves.filter((c) => c.family === family && shown(c.method));
      s.push(await figure(`recall-${family}`, recallChart(cs, `${family}: recall@k curves`, kind), warnings));
    }
  } else if (curveFamilies.length > 0) {
    s.push(`<h2>Recall@k curves per source</h2><p class="note">Not available: these results were stored without recall@k curves (only recall@${k} is in the tables).</p>`);
  }
  s.push('<h2>Timings</h2>');
  const allRows = r.summary.filter((x) => x.family === 'all');
  if (r.kind === 'bench' && allRows.some((x) => Number.isFinite(x.metrics['lds']?.mean ?? Number.NaN))) {
    s.push('<h2>Counterfactual evidence: LDS against ROC-AUC</h2><p>Linear datamodeling score (Spearman correlation between a method\'s predicted effect of retraining on a random half of the training set and the measured effect, over the retrained models) against the hallucination-tracing AUC, mean over all units.</p>');
    s.push(await figure('lds-vs-auc', ldsAucChart(allRows, 'LDS and ROC-AUC per method (all families)'), warnings));
  }
  if (r.kind === 'bench' && allRows.length > 0) s.push(await figure('timings', secondsChart(allRows, 'Scoring seconds per method (all families)', variantOrder), warnings));
  const fams = families.filter((f) => f !== 'all');
  const methods = [...new Set(r.summary.map((x) => x.method))];
  s.push(htmlTable(['method', ...fams.map((f) => `${f} (s)`), 'all (s)'], methods.map((m) => [m, ...[...fams, 'all'].map((f) => {
    const row = r.summary.find((x) => x.method === m && x.family === f);
    return row ? formatSeconds(row.secondsMean) : '–';
  })])));
  s.push('<p>Per family × seed cell, wall-clock seconds of this run: training and generation, per-example gradients, the whole cell. A reused artifact is loaded, not recomputed, so a cell that reused many reads short.</p>');
  s.push(htmlTable(['family', 'seed', 'train + generate', 'gradients', 'total', 'artifacts reused'], r.timings.map((t) => [t.family, String(t.seed), t.train.toFixed(1), t.gradients.toFixed(1), t.total.toFixed(1), String(t.reused)])));
  if (r.skipped.length > 0) {
    s.push('<h2>Skipped cells</h2>');
    s.push(htmlTable(['family', 'seed', 'reason'], r.skipped.map((x) => [x.family, String(x.seed), x.reason]), [false, true, false]));
  }
  s.push(`<h2>Configuration</h2><pre>${escapeHtml(JSON.stringify(r.config, null, 2))}</pre>`);
  const title = r.kind === 'bench' ? `Attribution leaderboard: ${r.config.name}` : `DDA ablation: ${r.config.name}`;
  const intro = `<p>Scores: higher = training sample more responsible for the erroneous output. ROC-AUC in percent (50 = chance), recall@k as a fraction; each mean is over the n runs in its row (seeds, or family × seed cells for <em>all</em>); ${escapeHtml(intervalsText(r.intervals))}. Command: <code>${escapeHtml(command)}</code></p>`
    + notes.map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('');
  return { html: htmlPage({ title, intro, body: s.join('\n') }), warnings };
}

/** The report as one self-contained HTML document (see {@link renderReportWithWarnings}). */
export async function renderReport(r: ReportData, command: string, notes: readonly string[] = []): Promise<string> {
  return (await renderReportWithWarnings(r, command, notes)).html;
}

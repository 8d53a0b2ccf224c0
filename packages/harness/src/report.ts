import { writeToBuffer } from 'fast-csv';
import { readFileSync, existsSync } from 'node:fs';
import { DdaError, labelMetricColumns, metricTableHeader, type MetricColumn } from '@dda/core';
import { escapeLatex, latexTable, type LatexCell } from '@dda/report';
import { writeFileAtomic } from '@dda/attribution';
import type { DdaRunResult, ResultRow } from './demo.js';
import { join } from 'node:path';
import { PAIRED_COLUMNS, defaultBenchMetrics, metricHeader, rowColumns, summaryColumns, type MetricDescriptor, type ReportMetric } from './bench-metrics.js';
import { parseMethod, type BenchResult, type MetricSummary, type PairedRow, type SummaryRow } from './bench.js';

/** The unit of the paired tests in summaries written before it was one family × seed cell. */
const OLD_PAIRED_UNIT = 'family × seed × source (written by an older version: the sources of one cell are not independent)';
import { formatInterval, intervalsText, type IntervalKind } from './stats.js';
import { parseBenchConfig } from './bench-config.js';
import { meanGates, type CellGates, type RegimeGates } from './gates.js';
import { parseGridRow } from './report-charts.js';
import { renderReport, type ReportData } from './report-html.js';

export { BENCH_COLUMNS, PAIRED_COLUMNS, SUMMARY_COLUMNS } from './columns.js';

/** A number rounded to 4 decimals for the CSVs. */
const r4 = (x: number): number => Number(x.toFixed(4));
/** A metric that may not have been computed (NaN): rounded, or an empty cell. */
const opt = (x: number | undefined): number | string => (x !== undefined && Number.isFinite(x) ? r4(x) : '');

/** The columns of `results.csv` besides the metrics': before the lead metrics, after them, and after the other label metrics (the asked metrics come last). */
const RESULT_ROW_COLUMNS = { first: ['variant', 'scorer', 'source'], afterLead: ['k'], tail: ['n_positives', 'n_train', 'n_tests', 'description'] } as const;

/** The columns of `results.csv` for the metrics `list` (a run's {@link DdaRunResult.metrics}). */
export function resultColumns(list: readonly MetricColumn[]): string[] {
  return metricTableHeader(list, RESULT_ROW_COLUMNS);
}

/** CSV columns of the results file with the label metrics alone, in order (a run's `--metrics` add theirs at the end). */
export const RESULT_COLUMNS: readonly string[] = resultColumns(labelMetricColumns(1));

/**
 * One CSV record per (variant, source), plus the `average` source row of each variant: every
 * metric of `list` under its column, from the row's values (AUC in percent; recall, average
 * precision and reciprocal rank as fractions, MRR in the `average` row; an asked metric in its own
 * unit), rounded to 4 decimals.
 */
export function resultRecords(rows: readonly ResultRow[], list: readonly MetricColumn[]): Record<string, string | number>[] {
  return rows.map((r) => ({
    variant: r.variant,
    scorer: r.scorer,
    source: r.source,
    k: r.k,
    n_positives: r.nPositives,
    n_train: r.nTrain,
    n_tests: r.nTests,
    description: r.description,
    ...Object.fromEntries(list.map((c) => [c.column, r4(r.values[c.column] ?? Number.NaN)])),
  }));
}

/** Writes results.csv (through fast-csv) atomically, a column per metric of `list` (the run's {@link DdaRunResult.metrics}). */
export async function writeResultsCsv(path: string, rows: readonly ResultRow[], list: readonly MetricColumn[]): Promise<void> {
  const buf = await writeToBuffer(resultRecords(rows, list), { headers: resultColumns(list) });
  writeFileAtomic(path, buf);
}

/** A fixed-width text table: one line per variant, AUC (%) and recall@k per source and averaged. */
export function formatTable(result: DdaRunResult): string {
  const sources = [...new Set(result.rows.map((r) => r.source))];
  const variants = [...new Set(result.rows.map((r) => r.variant))];
  const k = result.options.k;
  const head = ['variant', ...sources.flatMap((s) => [`${s} AUC`, `R@${k}`])];
  const lines = variants.map((v) => [
    v,
    ...sources.flatMap((s) => {
      const r = result.rows.find((x) => x.variant === v && x.source === s);
      return r ? [r.auc.toFixed(2), r.recallAtK.toFixed(3)] : ['-', '-'];
    }),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...lines.map((l) => (l[c] ?? '').length)));
  const fmt = (cells: string[]): string => `| ${cells.map((x, c) => (c === 0 ? x.padEnd(widths[c] ?? 0) : x.padStart(widths[c] ?? 0))).join(' | ')} |`;
  return [fmt(head), `|${widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...lines.map(fmt)].join('\n');
}



/** Extra output formats of {@link writeBenchOutputs}. */
export type BenchFormat = 'latex';

/**
 * Writes a benchmark's outputs atomically into `outDir`, named after the config (`<name>` for the
 * leaderboard, `<name>-ablation` for the ablation): `.csv` (every row), `-summary.csv`,
 * `-paired.csv`, `-summary.json` (with the command), `-curves.json` (ROC and recall@k curves of
 * the report) and `-report.html`; with `formats: ['latex']` also `-summary.tex` (booktabs) and, for
 * an ablation with a debiaser × denoiser grid, `-grid.tex`. Returns the paths.
 */
export async function writeBenchOutputs(r: BenchResult, outDir: string, command: string, formats: readonly BenchFormat[] = []): Promise<string[]> {
  const base = join(outDir, r.kind === 'bench' ? r.config.name : `${r.config.name}-ablation`);
  const list = r.metrics;
  // Every metric of the run: a column each in the rows, a mean (and interval) each in the summary, in the list's order.
  const lead = list.filter((m) => m.lead);
  const rest = list.filter((m) => !m.lead);
  const rowValues = (x: BenchResult['rows'][number], ms: typeof list): [string, number | string][] => ms.map((m) => [m.column, opt(x.metrics[m.key])]);
  const rows = r.rows.map((x) => ({
    family: x.family, method: x.method, scorer: x.scorer, variant: x.variant, measurement: x.measurement, source: x.source, seed: x.seed,
    ...Object.fromEntries(rowValues(x, lead)), k: x.k, n_positives: x.nPositives, n_train: x.nTrain, n_tests: x.nTests, seconds: Number(x.seconds.toFixed(2)),
    ...Object.fromEntries(rowValues(x, rest)),
  }));
  const summaryValues = (s: SummaryRow, ms: typeof list): [string, number | string][] => ms.flatMap((m) => {
    const v = s.metrics[m.key];
    return m.interval ? [[`${m.summaryColumn}_mean`, opt(v?.mean)], [`${m.summaryColumn}_low`, opt(v?.low)], [`${m.summaryColumn}_high`, opt(v?.high)]] : [[`${m.summaryColumn}_mean`, opt(v?.mean)]];
  });
  const summary = r.summary.map((s) => ({
    family: s.family, method: s.method, n: s.n, ...Object.fromEntries(summaryValues(s, lead)), seconds_mean: Number(s.secondsMean.toFixed(2)), ...Object.fromEntries(summaryValues(s, rest)),
  }));
  const paired = r.paired.map((p) => ({ metric: p.metric, reference: p.reference, method: p.method, unit: p.unit, n: p.n, mean_difference: r4(p.meanDifference), p_value: Number(p.pValue.toPrecision(4)), min_p_value: Number(p.minPValue.toPrecision(4)), exact: p.exact }));
  const files: [string, Uint8Array | string][] = [
    [`${base}.csv`, await writeToBuffer(rows, { headers: rowColumns(list) })],
    [`${base}-summary.csv`, await writeToBuffer(summary, { headers: summaryColumns(list) })],
    [`${base}-paired.csv`, await writeToBuffer(paired, { headers: [...PAIRED_COLUMNS] })],
    [`${base}-summary.json`, JSON.stringify({ command, kind: r.kind, config: r.config, summary: r.summary.map((s) => summaryJson(s, list)), ...askedDescriptors(list), paired: r.paired, timings: r.timings, skipped: r.skipped, ...(r.gates ? { gates: gatesJson(r.gates) } : {}), sign: 'higher score = training sample more responsible for the erroneous output; AUC in percent', intervals: intervalsText('student-t') }, null, 2)],
    [`${base}-curves.json`, curvesJson(r)],
    [`${base}-report.html`, await renderReport(r, command)],
  ];
  if (formats.includes('latex')) {
    files.push([`${base}-summary.tex`, summaryLatex(r, command)]);
    const grid = ablationGridLatex(r, command);
    if (grid !== undefined) files.push([`${base}-grid.tex`, grid]);
  }
  for (const [path, data] of files) writeFileAtomic(path, data);
  return files.map(([p]) => p);
}

/**
 * A summary row as `-summary.json` holds it: `family`, `method`, `n`, the lead metrics' flat fields
 * (`<jsonField>Mean`, `Low`, `High`; the mean only for a metric without an interval), `secondsMean`,
 * the other metrics' flat fields, and the metrics without a flat field under `metrics` by key.
 */
export function summaryJson(s: SummaryRow, list: readonly ReportMetric[]): Record<string, unknown> {
  const flat = (ms: readonly ReportMetric[]): [string, number][] => ms.filter((m) => m.jsonField !== undefined).flatMap((m) => {
    const v = s.metrics[m.key] ?? NOT_COMPUTED;
    return m.interval ? [[`${m.jsonField}Mean`, v.mean], [`${m.jsonField}Low`, v.low], [`${m.jsonField}High`, v.high]] : [[`${m.jsonField}Mean`, v.mean]];
  });
  const nested = list.filter((m) => m.jsonField === undefined);
  return {
    family: s.family, method: s.method, n: s.n, ...Object.fromEntries(flat(list.filter((m) => m.lead))), secondsMean: s.secondsMean, ...Object.fromEntries(flat(list.filter((m) => !m.lead))),
    ...(nested.length > 0 ? { metrics: Object.fromEntries(nested.map((m) => [m.key, s.metrics[m.key] ?? NOT_COMPUTED])) } : {}),
  };
}

/** What a summary JSON keeps of a metric's descriptor, so that its report can be rebuilt without its plugin. */
const DESCRIPTOR_FIELDS = ['id', 'description', 'label', 'higherIsBetter', 'units', 'range', 'digits'] as const;

/**
 * The summary JSON's `metricDescriptors`: the descriptor of every metric the configuration asked for
 * (label, direction, units, range, digits, by key), read back by {@link loadReportData}; nothing
 * when there is none (the default list's descriptors come from the registry).
 */
function askedDescriptors(list: readonly ReportMetric[]): { metricDescriptors?: Record<string, MetricDescriptor> } {
  const asked = list.filter((m) => m.asked);
  if (asked.length === 0) return {};
  const pick = (d: MetricDescriptor): MetricDescriptor => Object.fromEntries(DESCRIPTOR_FIELDS.filter((f) => d[f] !== undefined).map((f) => [f, d[f]])) as unknown as MetricDescriptor;
  return { metricDescriptors: Object.fromEntries(asked.map((m) => [m.key, pick(m.metric)])) };
}

/** The summary of a metric without values. */
const NOT_COMPUTED: MetricSummary = { mean: Number.NaN, low: Number.NaN, high: Number.NaN };

/** The summary JSON's `gates`: every cell's gates, and G1–G4 averaged over the cells that have them (`mean`, judged on the mean). */
export function gatesJson(cells: readonly CellGates[]): { cells: readonly CellGates[]; mean: RegimeGates; meanOver: string } {
  const counted = cells.filter((x) => x.notEvidence === undefined);
  const withG1 = counted.filter((x) => x.gates.g1 !== undefined).map((x) => x.gates);
  const left = cells.length - counted.length;
  return { cells, mean: withG1.length ? meanGates(withG1) : {}, meanOver: `${withG1.length} cell(s) with G1${left > 0 ? `; ${left} cell(s) left out as no evidence for the verdict (see their notEvidence)` : ''}` };
}

/**
 * The summary as a Markdown table (for the README and the console): n, then every metric the run
 * computed, in the list's order, under its descriptor's label (its mean with the metric's digits,
 * and the 95% interval of the first), then the seconds.
 */
export function summaryMarkdown(r: Pick<BenchResult, 'summary' | 'metrics'>, family = 'all'): string {
  const rows = r.summary.filter((s) => s.family === family);
  const shown = r.metrics.filter((m) => m.computed);
  const first = shown[0];
  const lines = [
    `| method | n |${shown.map((m) => ` ${metricHeader(m.metric)} |${m === first && m.interval ? ' 95% CI (Student-t over n) |' : ''}`).join('')}`,
    `|---|---:|${shown.map((m) => `---:|${m === first && m.interval ? '---|' : ''}`).join('')}`,
  ];
  for (const s of rows) {
    const cells = shown.map((m) => {
      const v = s.metrics[m.key];
      const mean = v !== undefined && Number.isFinite(v.mean) ? v.mean.toFixed(m.metric.digits ?? 3) : '–';
      return ` ${mean} |${m === first && m.interval ? ` ${v && Number.isFinite(v.mean) ? formatInterval({ low: v.low, high: v.high, n: s.n }, m.metric.digits ?? 3) : '–'} |` : ''}`;
    });
    lines.push(`| ${s.method} | ${s.n} |${cells.join('')}`);
  }
  return lines.join('\n');
}

/** The curves of a report as compact JSON (`-curves.json`): ROC points and recall@k for k = 1..K, 4 decimals. */
export function curvesJson(r: Pick<BenchResult, 'curves' | 'recallCurves'>): string {
  return JSON.stringify({
    roc: r.curves.map((c) => ({ family: c.family, source: c.source, seed: c.seed, method: c.method, fpr: c.points.map((p) => r4(p.fpr)), tpr: c.points.map((p) => r4(p.tpr)) })),
    recall: r.recallCurves.map((c) => ({ family: c.family, source: c.source, seed: c.seed, method: c.method, nTrain: c.nTrain, recall: c.recall.map(r4) })),
  });
}

/**
 * The report data of a finished benchmark rebuilt from its files (`<base>-summary.json` and, when
 * present, `<base>-curves.json`), so that the HTML report can be re-rendered without re-running it.
 * `missing` says what the files lack (e.g. curves of results stored before they were kept).
 *
 * @throws DdaError naming the file when it is missing or not a summary written by `dda bench` / `dda ablate`.
 */
export function loadReportData(summaryJsonPath: string): { data: ReportData; command: string; missing: string[] } {
  let j: { command?: unknown; kind?: unknown; config?: unknown; summary?: unknown; metricDescriptors?: unknown; paired?: unknown; timings?: unknown; skipped?: unknown; intervals?: unknown };
  try {
    j = JSON.parse(readFileSync(summaryJsonPath, 'utf8')) as typeof j;
  } catch (e) {
    throw new DdaError(`${summaryJsonPath}: cannot read the benchmark summary (${e instanceof Error ? e.message : String(e)})`, 'pass a <name>-summary.json written by dda bench or dda ablate');
  }
  if ((j.kind !== 'bench' && j.kind !== 'ablation') || !Array.isArray(j.summary)) {
    throw new DdaError(`${summaryJsonPath}: not a benchmark summary (needs "kind": "bench" or "ablation" and a "summary" array)`, 'pass a <name>-summary.json written by dda bench or dda ablate');
  }
  const missing: string[] = [];
  const curvesPath = summaryJsonPath.replace(/-summary\.json$/, '-curves.json');
  let curves: ReportData['curves'] = [];
  let recallCurves: ReportData['recallCurves'] = [];
  if (existsSync(curvesPath)) {
    const c = JSON.parse(readFileSync(curvesPath, 'utf8')) as { roc?: { family: string; source: string; seed: number; method: string; fpr: number[]; tpr: number[] }[]; recall?: { family: string; source: string; seed: number; method: string; nTrain: number; recall: number[] }[] };
    curves = (c.roc ?? []).map((x) => ({ family: x.family, source: x.source, seed: x.seed, method: x.method, points: x.fpr.map((fpr, i) => ({ fpr, tpr: x.tpr[i] as number })) }));
    recallCurves = c.recall ?? [];
  } else {
    missing.push(`no ${curvesPath}: no ROC or recall@k curves`);
  }
  if (recallCurves.length === 0) missing.push('no recall@k curves');
  const config = parseBenchConfig(j.config ?? {}, summaryJsonPath);
  // The default list's descriptors, then the metrics a summary holds under `metrics`: a registry metric's, with the descriptor
  // the summary recorded (its plugin may not be loaded here; a summary written before they were recorded: its id only).
  const nested = [...new Set((j.summary as Record<string, unknown>[]).flatMap((row) => Object.keys((row.metrics ?? {}) as object)))];
  const recorded = (j.metricDescriptors ?? {}) as Record<string, MetricDescriptor>;
  const list: ReportMetric[] = [
    ...defaultBenchMetrics(config, { kind: j.kind, retrainedMethods: [] }),
    ...nested.map((key): ReportMetric => ({
      key, metric: recorded[key] ?? { id: key, description: `the registry metric '${key}' of this summary` }, column: key, summaryColumn: key, lead: false, interval: true, paired: true, computed: true, asked: true,
    })),
  ];
  return {
    data: {
      kind: j.kind,
      // Summaries written before the intervals were Student-t do not say how theirs were made: percentile bootstrap.
      intervals: typeof j.intervals === 'string' ? 'student-t' : 'percentile-bootstrap',
      config,
      // JSON writes NaN (a metric not computed) as null, and older summaries have no LDS fields.
      metrics: list,
      summary: (j.summary as Record<string, unknown>[]).map((row) => summaryFromJson(row, list)),
      // Older summaries paired (family, seed, source) units and did not record the smallest reachable p.
      paired: ((j.paired ?? []) as (Omit<PairedRow, 'unit' | 'minPValue'> & Partial<PairedRow>)[]).map((p) => ({
        ...p, unit: p.unit ?? OLD_PAIRED_UNIT, minPValue: p.minPValue ?? (p.exact ? Math.min(1, 2 / 2 ** p.n) : Number.NaN),
      })),
      timings: (j.timings ?? []) as BenchResult['timings'],
      skipped: (j.skipped ?? []) as BenchResult['skipped'],
      curves, recallCurves,
    },
    command: typeof j.command === 'string' ? j.command : '',
    missing,
  };
}

/**
 * A summary row of `-summary.json` as a {@link SummaryRow}: every metric of `list` from its flat
 * fields or from `metrics.<key>` (JSON writes NaN as null; a field an older summary lacks is NaN).
 */
function summaryFromJson(row: Record<string, unknown>, list: readonly ReportMetric[]): SummaryRow {
  const num = (x: unknown): number => (typeof x === 'number' ? x : Number.NaN);
  const nested = (row.metrics ?? {}) as Record<string, Record<string, unknown>>;
  return {
    family: String(row.family), method: String(row.method), n: num(row.n), secondsMean: num(row.secondsMean),
    metrics: Object.fromEntries(list.map((m) => {
      const v = m.jsonField !== undefined ? { mean: row[`${m.jsonField}Mean`], low: row[`${m.jsonField}Low`], high: row[`${m.jsonField}High`] } : nested[m.key] ?? {};
      return [m.key, { mean: num(v.mean), low: num(v.low), high: num(v.high) }];
    })),
  };
}

/** The first two lead metrics (the default list's AUC and recall@k), which the LaTeX tables show. */
function leadMetrics(list: readonly ReportMetric[]): [ReportMetric, ReportMetric] {
  const lead = list.filter((m) => m.lead);
  if (lead.length < 2) throw new DdaError(`the LaTeX summary needs two lead metrics, the run has ${lead.length}`);
  return [lead[0] as ReportMetric, lead[1] as ReportMetric];
}

/** The best of `values` by the metric's direction (its descriptor's `higherIsBetter`); NaN when one is NaN (then none is bold). */
function bestOf(m: MetricDescriptor, values: readonly number[]): number {
  return m.higherIsBetter === false ? Math.min(...values) : Math.max(...values);
}

/** `\textbf{x}` when `bold`, else x. */
const bold = (x: string, isBest: boolean): LatexCell => (isBest ? { latex: `\\textbf{${x}}` } : x);
/** A LaTeX label from a name: letters, digits, `:` and `-` only. */
const labelOf = (name: string): string => name.replace(/[^A-Za-z0-9:-]+/g, '-');

/** Rows grouped for rules in the LaTeX tables: a scorer with its DDA variants, or an ablation block. */
function groupOf(kind: BenchResult['kind'], method: string): string {
  if (kind === 'bench') return parseMethod(method).scorer;
  if (method.startsWith('beta=')) return 'beta';
  if (method.startsWith('N=')) return 'N';
  const g = parseGridRow(method);
  return g ? (g.cross ? 'cross-grid' : 'grid') : 'components';
}

/**
 * The summary as a booktabs LaTeX table (`-summary.tex`): one row per method (leaderboard: each
 * scorer followed by its DDA variants; ablation: components, β sweep, N sweep, grid), mean ROC-AUC
 * (%) per family and over all units with its 95% Student-t interval and its n, and recall@k over all units.
 * The best mean of each AUC column is bold. Needs `\usepackage{booktabs}`.
 */
export function summaryLatex(r: Pick<BenchResult, 'kind' | 'config' | 'summary'> & { readonly metrics: readonly ReportMetric[]; readonly intervals?: IntervalKind }, command: string): string {
  const [headMetric, secondMetric] = leadMetrics(r.metrics);
  const head = headMetric.key;
  // The configuration's registry metrics: a column each over all units, after recall@k, best in bold.
  const asked = r.metrics.filter((m) => m.asked && m.computed);
  const at = (s: SummaryRow, key: string): MetricSummary => s.metrics[key] ?? NOT_COMPUTED;
  const families = [...new Set(r.summary.map((s) => s.family))].filter((f) => f !== 'all');
  const methods = [...new Set(r.summary.map((s) => s.method))];
  const get = (m: string, f: string): SummaryRow | undefined => r.summary.find((s) => s.method === m && s.family === f);
  const meansOf = (key: string, f: string): number[] => methods.flatMap((m) => ((s) => (s ? [at(s, key).mean] : []))(get(m, f)));
  const cols = [...families, 'all'];
  const bests = new Map(cols.map((f) => [f, bestOf(headMetric.metric, meansOf(head, f))]));
  const askedBests = new Map(asked.map((x) => [x.key, bestOf(x.metric, meansOf(x.key, 'all'))]));
  const digits = (m: ReportMetric): number => m.metric.digits ?? 3;
  const rows = methods.map((m) => [
    m,
    ...cols.map((f) => {
      const s = get(m, f);
      return s ? bold(at(s, head).mean.toFixed(digits(headMetric)), at(s, head).mean === bests.get(f)) : '--';
    }),
    ((s) => (s ? String(s.n) : '--'))(get(m, 'all')),
    ((s) => (s ? formatInterval({ low: at(s, head).low, high: at(s, head).high, n: s.n }, 1) : '--'))(get(m, 'all')),
    ((s) => (s ? at(s, secondMetric.key).mean.toFixed(digits(secondMetric)) : '--'))(get(m, 'all')),
    ...asked.map((x) => ((s) => (s && Number.isFinite(at(s, x.key).mean) ? bold(at(s, x.key).mean.toFixed(digits(x)), at(s, x.key).mean === askedBests.get(x.key)) : '--'))(get(m, 'all'))),
  ]);
  const rulesBefore = methods.flatMap((m, i) => (i > 0 && groupOf(r.kind, m) !== groupOf(r.kind, methods[i - 1] as string) && (r.kind === 'ablation' || groupSize(r.kind, methods, m) > 1 || groupSize(r.kind, methods, methods[i - 1] as string) > 1) ? [i] : []));
  const what = r.kind === 'bench' ? 'Attribution leaderboard' : `DDA ablation over ${r.config.ablation.scorer}`;
  const whatTex = r.kind === 'bench' ? what : `DDA ablation over \\texttt{${escapeLatex(r.config.ablation.scorer)}}`;
  return latexTable({
    comment: `${what}: ${r.config.name}. Made by: ${command}\nScores: higher = training sample more responsible. AUC in percent (50 = chance).`,
    caption: `${whatTex} (\\texttt{${escapeLatex(r.config.name)}}): mean ROC-AUC (\\%) over seeds per model family and over all family $\\times$ seed units (all, with its number of units n and 95\\% ${(r.intervals ?? 'student-t') === 'student-t' ? 'Student-t' : 'percentile-bootstrap'} interval), and recall@${r.config.k}${askedCaption(asked)} over all units. Best mean per column in bold${asked.some((x) => x.metric.higherIsBetter === false) ? ' (the lowest where lower is better)' : ''}.`,
    label: `tab:${labelOf(r.config.name)}${r.kind === 'ablation' ? '-ablation' : ''}`,
    columns: [
      { header: 'method', align: 'l' }, ...cols.map((f) => ({ header: f, align: 'r' as const })), { header: 'n (all)', align: 'r' }, { header: '95% CI (all)', align: 'c' }, { header: `recall@${r.config.k} (all)`, align: 'r' },
      ...asked.map((x) => ({ header: `${metricHeader(x.metric)} (all)`, align: 'r' as const })),
    ],
    rows,
    rulesBefore,
  });
}

/** The caption's words for the configuration's registry metrics: `, top-1 hit (fraction)` each, with their units where they have them (LaTeX-escaped). */
function askedCaption(asked: readonly ReportMetric[]): string {
  return asked.map((x) => `, ${escapeLatex(metricHeader(x.metric))}${x.metric.units ? ` (${escapeLatex(x.metric.units)})` : ''}`).join('');
}

function groupSize(kind: BenchResult['kind'], methods: readonly string[], m: string): number {
  return methods.filter((x) => groupOf(kind, x) === groupOf(kind, m)).length;
}

/**
 * The ablation's debiaser × denoiser grid as a booktabs LaTeX table (`-grid.tex`): mean ROC-AUC (%)
 * over all family × seed units, debiasers as rows, denoisers as columns, the `cross:` reading of the
 * base term below a rule; the best cell in bold. Undefined when the summary has no grid rows.
 */
export function ablationGridLatex(r: Pick<BenchResult, 'kind' | 'config' | 'summary'> & { readonly metrics: readonly ReportMetric[] }, command: string): string | undefined {
  const [headMetric] = leadMetrics(r.metrics);
  const cells = r.summary.filter((s) => s.family === 'all').flatMap((s) => {
    const g = parseGridRow(s.method);
    return g ? [{ ...g, auc: (s.metrics[headMetric.key] ?? NOT_COMPUTED).mean }] : [];
  });
  if (r.kind !== 'ablation' || cells.length === 0) return undefined;
  const order = (xs: readonly string[], seen: readonly string[]): string[] => [...new Set([...xs.filter((x) => seen.includes(x)), ...seen])];
  const debiasers = order(r.config.ablation.debiasers, cells.map((c) => c.debiaser));
  const denoisers = order(r.config.ablation.denoisers, cells.map((c) => c.denoiser));
  const top = bestOf(headMetric.metric, cells.map((c) => c.auc));
  const readings = [false, true].filter((cross) => cells.some((c) => c.cross === cross));
  const rows = readings.flatMap((cross) => debiasers.map((db) => [
    cross ? `cross: ${db}` : db,
    ...denoisers.map((dn) => {
      const c = cells.find((x) => x.cross === cross && x.debiaser === db && x.denoiser === dn);
      return c ? bold(c.auc.toFixed(headMetric.metric.digits ?? 3), c.auc === top) : '--';
    }),
  ]));
  return latexTable({
    comment: `DDA ablation grid: ${r.config.name}. Made by: ${command}`,
    caption: `Every debiaser $\\times$ denoiser pair of DDA over \\texttt{${escapeLatex(r.config.ablation.scorer)}} (\\texttt{${escapeLatex(r.config.name)}}): mean ROC-AUC (\\%) over all family $\\times$ seed units, $\\beta = ${r.config.ablation.beta}$ for the debiasers that take one (fitted-beta fits $\\beta$ per test output).${readings.includes(true) ? " Rows marked cross: base term with training gradients at $\\theta_0$ and test gradients at $\\theta'$." : ''} Best in bold.`,
    label: `tab:${labelOf(r.config.name)}-ablation-grid`,
    columns: [{ header: 'debiaser / denoiser', align: 'l' }, ...denoisers.map((d) => ({ header: d, align: 'r' as const }))],
    rows,
    rulesBefore: readings.length === 2 ? [debiasers.length] : [],
  });
}

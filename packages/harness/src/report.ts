import { writeToBuffer } from 'fast-csv';
import { readFileSync, existsSync } from 'node:fs';
import { DdaError } from '@dda/core';
import { escapeLatex, latexTable, type LatexCell } from '@dda/report';
import { writeFileAtomic } from '@dda/attribution';
import type { DdaRunResult, ResultRow } from './demo.js';
import { join } from 'node:path';
import { BENCH_COLUMNS, PAIRED_COLUMNS, SUMMARY_COLUMNS } from './columns.js';
import { RANKING_SUMMARY_FIELDS, metricIdsOf, parseMethod, type BenchResult, type PairedRow, type SummaryRow } from './bench.js';

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

/** CSV columns of the results file, in order. */
export const RESULT_COLUMNS = ['variant', 'scorer', 'source', 'auc', 'recall_at_k', 'k', 'average_precision', 'recall_at_50', 'mrr', 'n_positives', 'n_train', 'n_tests', 'description'] as const;

/** One CSV record per (variant, source), plus the `average` source row of each variant. AUC in percent; recall, average precision and reciprocal rank (MRR in the `average` row) as fractions. */
export function resultRecords(rows: readonly ResultRow[]): Record<(typeof RESULT_COLUMNS)[number], string | number>[] {
  return rows.map((r) => ({
    variant: r.variant,
    scorer: r.scorer,
    source: r.source,
    auc: r4(r.auc),
    recall_at_k: r4(r.recallAtK),
    k: r.k,
    average_precision: r4(r.averagePrecision),
    recall_at_50: r4(r.recallAt50),
    mrr: r4(r.mrr),
    n_positives: r.nPositives,
    n_train: r.nTrain,
    n_tests: r.nTests,
    description: r.description,
  }));
}

/** Writes results.csv (through fast-csv) atomically. */
export async function writeResultsCsv(path: string, rows: readonly ResultRow[]): Promise<void> {
  const buf = await writeToBuffer(resultRecords(rows), { headers: [...RESULT_COLUMNS] });
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
  // Registry metrics (the config's `metrics` beyond auc, recall, lds, leave-out): a column each, a mean and interval each in the summary.
  const extra = metricIdsOf(r.rows);
  const rows = r.rows.map((x) => ({
    family: x.family, method: x.method, scorer: x.scorer, variant: x.variant, measurement: x.measurement, source: x.source, seed: x.seed,
    auc: r4(x.auc), recall_at_k: r4(x.recallAtK), k: x.k, n_positives: x.nPositives, n_train: x.nTrain, n_tests: x.nTests, seconds: Number(x.seconds.toFixed(2)),
    lds: opt(x.lds), leave_out: opt(x.leaveOut), leave_out_random: opt(x.leaveOutRandom),
    average_precision: opt(x.averagePrecision), recall_at_50: opt(x.recallAt50), mrr: opt(x.mrr),
    ...Object.fromEntries(extra.map((id) => [id, opt(x.metrics?.[id])])),
  }));
  const summary = r.summary.map((s) => ({
    family: s.family, method: s.method, n: s.n, auc_mean: r4(s.aucMean), auc_low: opt(s.aucLow), auc_high: opt(s.aucHigh),
    recall_mean: r4(s.recallMean), recall_low: opt(s.recallLow), recall_high: opt(s.recallHigh), seconds_mean: Number(s.secondsMean.toFixed(2)),
    lds_mean: opt(s.ldsMean), lds_low: opt(s.ldsLow), lds_high: opt(s.ldsHigh), leave_out_mean: opt(s.leaveOutMean), leave_out_random_mean: opt(s.leaveOutRandomMean),
    ap_mean: opt(s.apMean), ap_low: opt(s.apLow), ap_high: opt(s.apHigh), recall50_mean: opt(s.recall50Mean), recall50_low: opt(s.recall50Low), recall50_high: opt(s.recall50High),
    mrr_mean: opt(s.mrrMean), mrr_low: opt(s.mrrLow), mrr_high: opt(s.mrrHigh),
    ...Object.fromEntries(extra.flatMap((id) => [[`${id}_mean`, opt(s.metrics?.[id]?.mean)], [`${id}_low`, opt(s.metrics?.[id]?.low)], [`${id}_high`, opt(s.metrics?.[id]?.high)]])),
  }));
  const paired = r.paired.map((p) => ({ metric: p.metric, reference: p.reference, method: p.method, unit: p.unit, n: p.n, mean_difference: r4(p.meanDifference), p_value: Number(p.pValue.toPrecision(4)), min_p_value: Number(p.minPValue.toPrecision(4)), exact: p.exact }));
  const files: [string, Uint8Array | string][] = [
    [`${base}.csv`, await writeToBuffer(rows, { headers: [...BENCH_COLUMNS, ...extra] })],
    [`${base}-summary.csv`, await writeToBuffer(summary, { headers: [...SUMMARY_COLUMNS, ...extra.flatMap((id) => [`${id}_mean`, `${id}_low`, `${id}_high`])] })],
    [`${base}-paired.csv`, await writeToBuffer(paired, { headers: [...PAIRED_COLUMNS] })],
    [`${base}-summary.json`, JSON.stringify({ command, kind: r.kind, config: r.config, summary: r.summary, paired: r.paired, timings: r.timings, skipped: r.skipped, ...(r.gates ? { gates: gatesJson(r.gates) } : {}), sign: 'higher score = training sample more responsible for the erroneous output; AUC in percent', intervals: intervalsText('student-t') }, null, 2)],
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

/** The summary JSON's `gates`: every cell's gates, and G1–G4 averaged over the cells that have them (`mean`, judged on the mean). */
export function gatesJson(cells: readonly CellGates[]): { cells: readonly CellGates[]; mean: RegimeGates; meanOver: string } {
  const counted = cells.filter((x) => x.notEvidence === undefined);
  const withG1 = counted.filter((x) => x.gates.g1 !== undefined).map((x) => x.gates);
  const left = cells.length - counted.length;
  return { cells, mean: withG1.length ? meanGates(withG1) : {}, meanOver: `${withG1.length} cell(s) with G1${left > 0 ? `; ${left} cell(s) left out as no evidence for the verdict (see their notEvidence)` : ''}` };
}

/** The summary as a Markdown table (for the README and the console). */
export function summaryMarkdown(r: BenchResult, family = 'all'): string {
  const rows = r.summary.filter((s) => s.family === family);
  const extra = [...new Set(rows.flatMap((s) => Object.keys(s.metrics ?? {})))];
  // LDS and leave-out (retraining metrics) when the config measured them: their columns.
  const asked = (m: string): boolean => (r.config.metrics as readonly unknown[]).includes(m);
  const lds = asked('lds');
  const leaveOut = asked('leave-out');
  const lines = [
    `| method | n | AUC (%) | 95% CI (Student-t over n) | recall@${r.config.k} | AP | Recall@50 | MRR |${lds ? ' LDS | LDS 95% CI |' : ''}${leaveOut ? ' leave-out (errors fixed) | random k |' : ''}${extra.map((id) => ` ${id} |`).join('')}`,
    `|---|---:|---:|---|---:|---:|---:|---:|${lds ? '---:|---|' : ''}${leaveOut ? '---:|---:|' : ''}${extra.map(() => '---:|').join('')}`,
  ];
  const f3 = (x: number | undefined): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(3) : '–');
  for (const s of rows) {
    const retrain = `${lds ? ` ${f3(s.ldsMean)} | ${Number.isFinite(s.ldsMean) ? formatInterval({ low: s.ldsLow, high: s.ldsHigh, n: s.n }, 3) : '–'} |` : ''}${leaveOut ? ` ${f3(s.leaveOutMean)} | ${f3(s.leaveOutRandomMean)} |` : ''}`;
    lines.push(`| ${s.method} | ${s.n} | ${s.aucMean.toFixed(2)} | ${formatInterval({ low: s.aucLow, high: s.aucHigh, n: s.n }, 2)} | ${s.recallMean.toFixed(3)} | ${f3(s.apMean)} | ${f3(s.recall50Mean)} | ${f3(s.mrrMean)} |${retrain}${extra.map((id) => ` ${f3(s.metrics?.[id]?.mean)} |`).join('')}`);
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
  let j: { command?: unknown; kind?: unknown; config?: unknown; summary?: unknown; paired?: unknown; timings?: unknown; skipped?: unknown; intervals?: unknown };
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
  return {
    data: {
      kind: j.kind,
      // Summaries written before the intervals were Student-t do not say how theirs were made: percentile bootstrap.
      intervals: typeof j.intervals === 'string' ? 'student-t' : 'percentile-bootstrap',
      config: parseBenchConfig(j.config ?? {}, summaryJsonPath),
      // JSON writes NaN (a metric not computed) as null, and older summaries have no LDS fields.
      summary: (j.summary as Record<string, unknown>[]).map((row) => {
        const out: Record<string, unknown> = { ...row };
        for (const f of ['aucLow', 'aucHigh', 'recallLow', 'recallHigh', 'ldsMean', 'ldsLow', 'ldsHigh', 'leaveOutMean', 'leaveOutRandomMean', ...RANKING_SUMMARY_FIELDS]) if (typeof out[f] !== 'number') out[f] = Number.NaN;
        return out as unknown as SummaryRow;
      }),
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
export function summaryLatex(r: Pick<BenchResult, 'kind' | 'config' | 'summary'> & { readonly intervals?: IntervalKind }, command: string): string {
  const families = [...new Set(r.summary.map((s) => s.family))].filter((f) => f !== 'all');
  const methods = [...new Set(r.summary.map((s) => s.method))];
  const get = (m: string, f: string): SummaryRow | undefined => r.summary.find((s) => s.method === m && s.family === f);
  const best = (f: string): number => Math.max(...methods.map((m) => get(m, f)?.aucMean ?? -Infinity));
  const cols = [...families, 'all'];
  const bests = new Map(cols.map((f) => [f, best(f)]));
  const rows = methods.map((m) => [
    m,
    ...cols.map((f) => {
      const s = get(m, f);
      return s ? bold(s.aucMean.toFixed(2), s.aucMean === bests.get(f)) : '--';
    }),
    ((s) => (s ? String(s.n) : '--'))(get(m, 'all')),
    ((s) => (s ? formatInterval({ low: s.aucLow, high: s.aucHigh, n: s.n }, 1) : '--'))(get(m, 'all')),
    ((s) => (s ? s.recallMean.toFixed(3) : '--'))(get(m, 'all')),
  ]);
  const rulesBefore = methods.flatMap((m, i) => (i > 0 && groupOf(r.kind, m) !== groupOf(r.kind, methods[i - 1] as string) && (r.kind === 'ablation' || groupSize(r.kind, methods, m) > 1 || groupSize(r.kind, methods, methods[i - 1] as string) > 1) ? [i] : []));
  const what = r.kind === 'bench' ? 'Attribution leaderboard' : `DDA ablation over ${r.config.ablation.scorer}`;
  const whatTex = r.kind === 'bench' ? what : `DDA ablation over \\texttt{${escapeLatex(r.config.ablation.scorer)}}`;
  return latexTable({
    comment: `${what}: ${r.config.name}. Made by: ${command}\nScores: higher = training sample more responsible. AUC in percent (50 = chance).`,
    caption: `${whatTex} (\\texttt{${escapeLatex(r.config.name)}}): mean ROC-AUC (\\%) over seeds per model family and over all family $\\times$ seed units (all, with its number of units n and 95\\% ${(r.intervals ?? 'student-t') === 'student-t' ? 'Student-t' : 'percentile-bootstrap'} interval), and recall@${r.config.k} over all units. Best mean per column in bold.`,
    label: `tab:${labelOf(r.config.name)}${r.kind === 'ablation' ? '-ablation' : ''}`,
    columns: [{ header: 'method', align: 'l' }, ...cols.map((f) => ({ header: f, align: 'r' as const })), { header: 'n (all)', align: 'r' }, { header: '95% CI (all)', align: 'c' }, { header: `recall@${r.config.k} (all)`, align: 'r' }],
    rows,
    rulesBefore,
  });
}

function groupSize(kind: BenchResult['kind'], methods: readonly string[], m: string): number {
  return methods.filter((x) => groupOf(kind, x) === groupOf(kind, m)).length;
}

/**
 * The ablation's debiaser × denoiser grid as a booktabs LaTeX table (`-grid.tex`): mean ROC-AUC (%)
 * over all family × seed units, debiasers as rows, denoisers as columns, the `cross:` reading of the
 * base term below a rule; the best cell in bold. Undefined when the summary has no grid rows.
 */
export function ablationGridLatex(r: Pick<BenchResult, 'kind' | 'config' | 'summary'>, command: string): string | undefined {
  const cells = r.summary.filter((s) => s.family === 'all').flatMap((s) => {
    const g = parseGridRow(s.method);
    return g ? [{ ...g, auc: s.aucMean }] : [];
  });
  if (r.kind !== 'ablation' || cells.length === 0) return undefined;
  const order = (xs: readonly string[], seen: readonly string[]): string[] => [...new Set([...xs.filter((x) => seen.includes(x)), ...seen])];
  const debiasers = order(r.config.ablation.debiasers, cells.map((c) => c.debiaser));
  const denoisers = order(r.config.ablation.denoisers, cells.map((c) => c.denoiser));
  const top = Math.max(...cells.map((c) => c.auc));
  const readings = [false, true].filter((cross) => cells.some((c) => c.cross === cross));
  const rows = readings.flatMap((cross) => debiasers.map((db) => [
    cross ? `cross: ${db}` : db,
    ...denoisers.map((dn) => {
      const c = cells.find((x) => x.cross === cross && x.debiaser === db && x.denoiser === dn);
      return c ? bold(c.auc.toFixed(2), c.auc === top) : '--';
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

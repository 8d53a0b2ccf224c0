import { writeToBuffer } from 'fast-csv';
import type { DdaRunResult, ResultRow } from './demo.js';
import { join } from 'node:path';
import { writeFileAtomic } from '@dda/attribution';
import type { BenchResult } from './bench.js';
import { renderReport } from './report-html.js';

/** A number rounded to 4 decimals for the CSVs. */
const r4 = (x: number): number => Number(x.toFixed(4));

/** CSV columns of the results file, in order. */
export const RESULT_COLUMNS = ['variant', 'scorer', 'source', 'auc', 'recall_at_k', 'k', 'n_positives', 'n_train', 'n_tests', 'description'] as const;

/** One CSV record per (variant, source), plus the `average` source row of each variant. AUC in percent. */
export function resultRecords(rows: readonly ResultRow[]): Record<(typeof RESULT_COLUMNS)[number], string | number>[] {
  return rows.map((r) => ({
    variant: r.variant,
    scorer: r.scorer,
    source: r.source,
    auc: r4(r.auc),
    recall_at_k: r4(r.recallAtK),
    k: r.k,
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

/** CSV columns of a benchmark's per-run results (one row per family × method × source × seed). */
export const BENCH_COLUMNS = ['family', 'method', 'scorer', 'variant', 'source', 'seed', 'auc', 'recall_at_k', 'k', 'n_positives', 'n_train', 'n_tests', 'seconds'] as const;
/** CSV columns of a benchmark's summary (mean over seeds with 95% bootstrap intervals). */
export const SUMMARY_COLUMNS = ['family', 'method', 'n', 'auc_mean', 'auc_low', 'auc_high', 'recall_mean', 'recall_low', 'recall_high', 'seconds_mean'] as const;
/** CSV columns of the paired tests. */
export const PAIRED_COLUMNS = ['reference', 'method', 'n', 'mean_difference', 'p_value', 'exact'] as const;


/**
 * Writes a benchmark's outputs atomically into `outDir`, named after the config (`<name>` for the
 * leaderboard, `<name>-ablation` for the ablation): `.csv` (every row), `-summary.csv`,
 * `-paired.csv`, `-summary.json` (with the command) and `-report.html`. Returns the paths.
 */
export async function writeBenchOutputs(r: BenchResult, outDir: string, command: string): Promise<string[]> {
  const base = join(outDir, r.kind === 'bench' ? r.config.name : `${r.config.name}-ablation`);
  const rows = r.rows.map((x) => ({
    family: x.family, method: x.method, scorer: x.scorer, variant: x.variant, source: x.source, seed: x.seed,
    auc: r4(x.auc), recall_at_k: r4(x.recallAtK), k: x.k, n_positives: x.nPositives, n_train: x.nTrain, n_tests: x.nTests, seconds: Number(x.seconds.toFixed(2)),
  }));
  const summary = r.summary.map((s) => ({
    family: s.family, method: s.method, n: s.n, auc_mean: r4(s.aucMean), auc_low: r4(s.aucLow), auc_high: r4(s.aucHigh),
    recall_mean: r4(s.recallMean), recall_low: r4(s.recallLow), recall_high: r4(s.recallHigh), seconds_mean: Number(s.secondsMean.toFixed(2)),
  }));
  const paired = r.paired.map((p) => ({ reference: p.reference, method: p.method, n: p.n, mean_difference: r4(p.meanDifference), p_value: Number(p.pValue.toPrecision(4)), exact: p.exact }));
  const files: [string, Uint8Array | string][] = [
    [`${base}.csv`, await writeToBuffer(rows, { headers: [...BENCH_COLUMNS] })],
    [`${base}-summary.csv`, await writeToBuffer(summary, { headers: [...SUMMARY_COLUMNS] })],
    [`${base}-paired.csv`, await writeToBuffer(paired, { headers: [...PAIRED_COLUMNS] })],
    [`${base}-summary.json`, JSON.stringify({ command, kind: r.kind, config: r.config, summary: r.summary, paired: r.paired, timings: r.timings, skipped: r.skipped, sign: 'higher score = training sample more responsible for the erroneous output; AUC in percent' }, null, 2)],
    [`${base}-report.html`, renderReport(r, command)],
  ];
  for (const [path, data] of files) writeFileAtomic(path, data);
  return files.map(([p]) => p);
}

/** The summary as a Markdown table (for the README and the console). */
export function summaryMarkdown(r: BenchResult, family = 'all'): string {
  const rows = r.summary.filter((s) => s.family === family);
  const lines = ['| method | n | AUC (%) | 95% CI | recall@' + String(r.config.k) + ' |', '|---|---:|---:|---|---:|'];
  for (const s of rows) lines.push(`| ${s.method} | ${s.n} | ${s.aucMean.toFixed(2)} | [${s.aucLow.toFixed(2)}, ${s.aucHigh.toFixed(2)}] | ${s.recallMean.toFixed(3)} |`);
  return lines.join('\n');
}

import { writeToBuffer } from 'fast-csv';
import type { DdaRunResult, ResultRow } from './pipeline.js';
import { writeFileAtomic } from './artifacts.js';

/** CSV columns of the results file, in order. */
export const RESULT_COLUMNS = ['variant', 'scorer', 'source', 'auc', 'recall_at_k', 'k', 'n_positives', 'n_train', 'n_tests', 'description'] as const;

/** One CSV record per (variant, source), plus the `average` source row of each variant. AUC in percent. */
export function resultRecords(rows: readonly ResultRow[]): Record<(typeof RESULT_COLUMNS)[number], string | number>[] {
  return rows.map((r) => ({
    variant: r.variant,
    scorer: r.scorer,
    source: r.source,
    auc: Number(r.auc.toFixed(4)),
    recall_at_k: Number(r.recallAtK.toFixed(4)),
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

/**
 * The column names of a benchmark's CSVs with the default metric list (bench-metrics.ts): the
 * published schema of the committed results. A run's registry metrics add their columns after these.
 */
import { DEFAULT_BENCH_METRICS, rowColumns, summaryColumns } from './bench-metrics.js';

export { PAIRED_COLUMNS } from './bench-metrics.js';
/** CSV columns of a benchmark's per-run results (one row per family × method × source × seed). */
export const BENCH_COLUMNS: readonly string[] = rowColumns(DEFAULT_BENCH_METRICS);
/** CSV columns of a benchmark's summary (mean over the n runs with 95% Student-t intervals; empty bounds when n < 2). */
export const SUMMARY_COLUMNS: readonly string[] = summaryColumns(DEFAULT_BENCH_METRICS);

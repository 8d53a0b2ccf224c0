/** The column names of a benchmark's CSVs (report.ts writes them; bench.ts keeps registry metric ids off them). */
/** CSV columns of a benchmark's per-run results (one row per family × method × source × seed). */
export const BENCH_COLUMNS = ['family', 'method', 'scorer', 'variant', 'source', 'seed', 'auc', 'recall_at_k', 'k', 'n_positives', 'n_train', 'n_tests', 'seconds', 'measurement', 'lds', 'leave_out', 'leave_out_random', 'average_precision', 'recall_at_50', 'mrr'] as const;
/** CSV columns of a benchmark's summary (mean over the n runs with 95% Student-t intervals; empty bounds when n < 2). */
export const SUMMARY_COLUMNS = ['family', 'method', 'n', 'auc_mean', 'auc_low', 'auc_high', 'recall_mean', 'recall_low', 'recall_high', 'seconds_mean', 'lds_mean', 'lds_low', 'lds_high', 'leave_out_mean', 'leave_out_random_mean', 'ap_mean', 'ap_low', 'ap_high', 'recall50_mean', 'recall50_low', 'recall50_high', 'mrr_mean', 'mrr_low', 'mrr_high'] as const;
/** CSV columns of the paired tests. */
export const PAIRED_COLUMNS = ['metric', 'reference', 'method', 'unit', 'n', 'mean_difference', 'p_value', 'min_p_value', 'exact'] as const;

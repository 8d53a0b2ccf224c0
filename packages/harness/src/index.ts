/**
 * @dda/harness: the benchmark harness. The demo and the benchmarks make experiments
 * (@dda/experiment) and attribute them through the same code as `dda attribute`
 * (@dda/attribution); leaderboards, ablations, statistics and reports.
 *
 * The public entry point, listed name by name (issue 25): what the CLI, the tests, the benchmark
 * scripts and the docs use. The pieces the harness only uses itself (the result records, gate and
 * chart internals, the summary and paired-row shapes) are not exported; the progress contract is
 * @dda/core's.
 */
// the demo: one experiment made and attributed, its variants and their results
export {
  DEFAULT_RUN_OPTIONS, experimentTask, runDda, type DdaRunOptions, type DdaRunResult,
} from './demo.js';
// results and summaries written to disk: CSV columns, tables, Markdown and LaTeX summaries
export {
  ablationGridLatex, BENCH_COLUMNS, formatTable, gatesJson, loadReportData, PAIRED_COLUMNS, RESULT_COLUMNS, SUMMARY_COLUMNS,
  summaryJson, summaryLatex, summaryMarkdown, writeBenchOutputs, writeResultsCsv, type BenchFormat,
} from './report.js';
// statistics: Student-t intervals of means and paired sign-flip tests
export {
  formatInterval, meanInterval, pairedPermutationTest, studentTCdf, studentTQuantile, TOO_FEW_FOR_INTERVAL,
} from './stats.js';
// benchmark configurations (JSON or YAML), validated
export {
  leaderboardDda, loadBenchConfig, parseBenchConfig, RECOMMENDED_ROW, type BenchConfig,
} from './bench-config.js';
// `dda bench` and `dda ablate`: the runs, their rows, summaries and paired tests
export {
  checkIds, evaluateBench, type GridOptions, PAIRED_UNIT, pairedAgainst, pairedReferences, parseMethod, runAblation, runBench,
  benchRunOptions, runOptionsFor, summarize, type BenchResult, type BenchRow, type MetricSummary, type RecallSet, type RocSet, type SummaryRow,
} from './bench.js';
// the cells of `dda bench --jobs`: the claims and results of a run's workers
export { releaseClaims, removeCellResults } from './cell-results.js';
// the metrics of a benchmark: the default list (the committed results' columns) and a configuration's registry metrics
export {
  benchMetricList, DEFAULT_BENCH_METRICS, defaultBenchMetrics, rowColumns, summaryColumns,
  type BenchMetric, type MetricDescriptor, type ReportMetric,
} from './bench-metrics.js';
// the counterfactual metrics of the metrics registry (lds, leave-out, leave-out-random)
export { ldsMetric, leaveOutMetric, leaveOutRandomMetric } from './counterfactual-metrics.js';
// the HTML report of a benchmark or ablation
export { renderReport, renderReportWithWarnings } from './report-html.js';
// counterfactual evaluation: rank correlations and the linear datamodeling score
export {
  averageRanks, ldsSubsets, linearDatamodelingScore, pearson, spearman, topRows,
} from './counterfactual.js';
// the regime gates G1–G5
export {
  canaryGradientShare, g1FromBenchRows, g5Report, GATE_THRESHOLDS, inRegime, meanGates, regimeGates,
} from './gates.js';
// regime gate G2 measured on a run: the canary tokens' share of a source's gradient
export { measureCanaryShares } from './canary-share.js';
// the pre-registered verdict on DDA from per-run AUCs (benchmarks/verdict.mjs)
export {
  preRegisteredVerdict, type MeanGate, type RunAuc, type Verdict, type VerdictComparison,
  type VerdictOptions, type VerdictOutcome,
} from './verdict.js';

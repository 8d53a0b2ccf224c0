/**
 * @dda/harness: the benchmark harness. The demo and the benchmarks make experiments
 * (@dda/experiment) and attribute them through the same code as `dda attribute`
 * (@dda/attribution); leaderboards, ablations, statistics and reports.
 */
export * from './demo.js';
export * from './report.js';
export * from './progress.js';
export * from './stats.js';
export * from './bench-config.js';
export * from './bench.js';
export * from './report-html.js';
export * from './counterfactual.js';
export * from './gates.js';
export * from './canary-share.js';
export * from './verdict.js';

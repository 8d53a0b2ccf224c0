/**
 * @dda/harness: the end-to-end attribution pipeline (data → model → errors → gradients →
 * scores → debias/denoise → metrics) and its reports.
 */
export * from './artifacts.js';
export * from './pipeline.js';
export * from './report.js';
export * from './progress.js';
export * from './stats.js';
export * from './bench-config.js';
export * from './bench.js';
export * from './report-html.js';
export * from './gradient-store.js';
export * from './plugins.js';

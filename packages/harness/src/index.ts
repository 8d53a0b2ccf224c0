/**
 * @dda/harness: the end-to-end attribution pipeline (data → model → errors → gradients →
 * scores → debias/denoise → metrics) and its reports.
 */
export * from './artifacts.js';
export * from './pipeline.js';
export * from './report.js';

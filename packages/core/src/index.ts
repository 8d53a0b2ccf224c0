/**
 * @dda/core: the contracts every other package builds on.
 *
 * Data flows one way: dataset → model/checkpoints → gradients → scores (Scorer)
 * → debias/denoise (Debiaser, Denoiser) → metrics → reports.
 * Sign convention everywhere: higher score = training sample more responsible for the test output.
 */
export * from './errors.js';
export * from './score-matrix.js';
export * from './gradients.js';
export * from './plugins.js';
export * from './streamed-fit.js';
export * from './combine.js';
export * from './registry.js';
export * from './suggestions.js';
export * from './registries.js';
export * from './datasets.js';
export * from './plugin-loader.js';
export * from './metrics.js';
export * from './random.js';
export * from './yield.js';
export * from './progress.js';
export * from './rope.js';
export * from './decoder-layout.js';
export * from './text.js';

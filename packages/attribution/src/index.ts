/**
 * @dda/attribution: training data attribution of a fine-tuned model from its files. A task (base
 * model θ0, checkpoints θ1..θN, training data, queries, optional labels) → per-example gradients →
 * scores (any Scorer plugin) → debias / denoise (DDA) → top-k samples, score matrix, HTML page,
 * metrics. Every artifact is cached by the content of its inputs.
 */
export * from './plugins.js';
export * from './artifacts.js';
export * from './hashing.js';
export * from './checkpoints.js';
export * from './base-match.js';
export * from './task.js';
export * from './truncation.js';
export * from './engine.js';
export * from './gradient-blocks.js';
export * from './run.js';
export * from './method.js';
export * from './evaluate.js';
export * from './outputs.js';
export * from './page.js';
export * from './token-attribution.js';
export * from './training-loss.js';
export * from './attribute.js';
export * from './shards.js';
export * from './gradient-index.js';
export * from './projection.js';

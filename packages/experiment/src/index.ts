/**
 * @dda/experiment: making a hallucination-tracing experiment (data with canaries → θ0 → fine-tuning
 * checkpoints → test errors) as the files a fine-tuning run leaves on disk, ready for
 * `dda attribute` and the benchmark.
 */
export * from './experiment.js';
export * from './datasets.js';
export * from './training-engine.js';

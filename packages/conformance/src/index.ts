/**
 * @dda/conformance: checks that a plugin's scorer, debiaser or denoiser honours the contracts of
 * @dda/core (shapes and ids, ordering, determinism, finite values, the sign convention, clear errors).
 * `checkScorer`, `checkDebiaser` and `checkDenoiser` return a report; `assertConformance` throws on
 * its failures. For vitest, `@dda/conformance/vitest` runs them as one test per check in one line.
 */
export * from './report.js';
export * from './scorer.js';
export * from './dataset.js';
export * from './engine.js';
export { decoderFixtureReferences } from './references.js';
export * from './metric.js';
export * from './transforms.js';
export { CHECKPOINT, COPY_OF, CORRECTIONS, TEST, TRAIN, UnigramModel, gradientBlocksOf, gradientsOf, representationsOf } from './task.js';

/**
 * @dda/conformance: checks that a plugin's scorer, debiaser or denoiser honours the contracts of
 * @dda/core (shapes and ids, ordering, determinism, finite values, the sign convention, clear errors).
 * `checkScorer`, `checkDebiaser` and `checkDenoiser` return a report; `assertConformance` throws on
 * its failures. For vitest, `@dda/conformance/vitest` runs them as one test per check in one line.
 *
 * The public entry point, listed name by name (issue 25): what plugins' tests, the generated
 * packages of @dda/nx-plugin, the package's own tests and the docs use. The check runner's
 * internals and the option and check-id types (which `@dda/conformance/vitest` takes) are not
 * exported here.
 */
// a conformance report: its formatting, and the assertion that throws on its failures
export { assertConformance, formatReport, type ConformanceReport, type Subject } from './report.js';
// the scorer checks
export { checkScorer, SCORER_CHECKS } from './scorer.js';
// the data set checks
export { checkDataset, DATASET_CHECKS } from './dataset.js';
// the engine checks
export { checkEngine, checkEngineReferences, ENGINE_CHECKS, type EngineReference } from './engine.js';
// the PyTorch float64 references of the engine checks, shipped with the package
export { decoderFixtureReferences, realWidthReferences } from './references.js';
// the metric checks
export { checkMetric, METRIC_CHECKS, worldInputs } from './metric.js';
// the debiaser and denoiser checks
export { checkDebiaser, checkDenoiser } from './transforms.js';
// the tiny attribution task the scorer checks run on
export { CORRECTIONS, gradientsOf, TEST, TRAIN, UnigramModel } from './task.js';

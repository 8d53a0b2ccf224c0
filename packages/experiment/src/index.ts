/**
 * @dda/experiment: making a hallucination-tracing experiment (data with canaries → θ0 → fine-tuning
 * checkpoints → test errors) as the files a fine-tuning run leaves on disk, ready for
 * `dda attribute` and the benchmark.
 *
 * The public entry point, listed name by name (issue 25): what the harness, the tests and the docs
 * use. The built-in data sets register themselves in @dda/core's `datasets` registry when this
 * package is imported; the registration, the registry and realtext builders and the choice of the
 * training engine are not exported.
 */
// making an experiment: its plan, data, θ0, checkpoints and test errors, and retraining on a subset
export {
  CellSkipped, DEFAULT_EXPERIMENT, DEFAULT_MIN_ERRORS, entityMatching, instruction, makeExperiment,
  planExperiment, retrainOnSubset, type Experiment, type ExperimentOptions, type Log, type TestError,
} from './experiment.js';
// the built-in data sets (news, registry, realtext), registered on import
export { newsDataset } from './datasets.js';
// the engine an experiment trains and generates with
export { openExperimentModel, type ExperimentModel } from './training-engine.js';

/**
 * @dda/attribution: training data attribution of a fine-tuned model from its files. A task (base
 * model θ0, checkpoints θ1..θN, training data, queries, optional labels) → per-example gradients →
 * scores (any Scorer plugin) → debias / denoise (DDA) → top-k samples, score matrix, HTML page,
 * metrics. Every artifact is cached by the content of its inputs.
 *
 * The public entry point, listed name by name (issue 25): what the CLI, the harness, the
 * experiment maker, the tests and the docs use. The pieces only the package uses (truncation
 * reports, the task's rendering internals, output writers, shard manifests, the index's header
 * shapes) are not exported.
 */
// the plugins dda loads: the built-in ones and a user's own
export { BUILTIN_ENGINE_PLUGINS, BUILTIN_PLUGINS, ensurePlugins, loadUserPlugins } from './plugins.js';
// the content-addressed artifact store
export { ArtifactStore, hashOf, writeFileAtomic } from './artifacts.js';
// content hashes of input files
export { hashFiles } from './hashing.js';
// the checkpoints of a fine-tuning run and the learning rates its trainer logged
export {
  epochEnd, learningRateAt, learningRateOver, loadCheckpoints, readTrainerState, stepsPerEpoch, trainingSetSizeWarning, type Checkpoint, type IntervalRate, type TrainerLog,
} from './checkpoints.js';
// whether LoRA checkpoints were trained on the given base model
export { baseFolderNames, baseMatchWarning, checkAdapterBase, describeBaseMatch, modelNameKey } from './base-match.js';
// the attribution task, built from files
export {
  endTokensInText, loadBaseModel, loadTask, tokenizerRecord, type AttributionTask, type TaskFiles,
} from './task.js';
// the model of a task at any checkpoint, on an engine of the registry
export { checkEngineIds, CheckpointModel, resolveEngine, type GradientEngine } from './engine.js';
// per-example gradients on disk, in blocks
export { gradientBlock, gradientBlockStream, type GradientBlockSpec } from './gradient-blocks.js';
// gradients and scores of a task, cached by content, block by block
export {
  AttributionRun, DEFAULT_BLOCK_ROWS, DEFAULT_MAX_BLOCK_BYTES, blockRowsFor, combineGradientTerms, isModelFree, scoreBlocksTogether, type BlockJob,
  type CheckpointScores, type RunOptions,
} from './run.js';
// a scorer's options checked against what it reads
export { checkScorerOptions, parseScorerOptions, refuseUnknownScorerOptions } from './scorer-options.js';
// the attribution method: scorer, debias, denoise (DDA) and their variants
export {
  checkMethod, checkRequirements, ddaMatrix, debiasBeta, describeScores, methodVariants, noteSameScores,
  plainVariant, RECOMMENDED_DDA, variantOf, type Variant,
} from './method.js';
// evaluation against labels of true sources
export { evaluateMatrix, sourcesOf } from './evaluate.js';
// what `dda attribute` writes: top-k, the score matrix, metrics
export { METRIC_COLUMNS, npyBytes, topK, writeMetrics } from './outputs.js';
// the HTML page of an attribution
export { contentWords, highlight, renderAttributionPage, swappedWords, tokenHeatMap } from './page.js';
// per-token attribution of the top training samples of a gradient scorer
export {
  directionOf, FD_LOSS_STEP, FD_MAX_RELATIVE_STEP, finiteDifferenceStep, tokenAttribution,
  tokenDirectionalDerivatives, tokenPieces,
} from './token-attribution.js';
// the training-loss and query-loss checks of the rendering
export {
  checkQueryLoss, checkTrainingLoss, QUERY_LOSS_RATIO, TRAINING_LOSS_RATIO, type QueryLossCheck,
  type TrainingLossCheck,
} from './training-loss.js';
// `dda attribute`
export { ATTRIBUTE_FILES, runAttribute, type AttributeOptions, type AttributeResult } from './attribute.js';
// sharding an attribution over machines, and the merge
export { mergeShards, resolveShard, runShard, shardManifestPath } from './shards.js';
// the compressed gradient index: `dda index build` and `dda index query`
export {
  buildGradientIndex, DEFAULT_INDEX_BLOCK_ROWS, INDEX_FILES, readIndexHeader, readIndexRows, type IndexBuildOptions,
} from './gradient-index.js';
export { queryGradientIndex, queryGradientIndexesDda } from './index-query.js';
// the index's sketch, for approximate queries (`dda index sketch`, `dda index query --candidates`)
export { buildIndexSketch, DEFAULT_SKETCH_DIM, readIndexSketch, SKETCH_FILES, type SketchHeader } from './index-sketch.js';
// the index built in shards (`dda index build --shard i/n`), and their merge (`dda index merge`)
export {
  buildGradientIndexShard, indexShardPart, indexShardRows, mergeGradientIndexShards, type IndexMergeResult, type IndexShardResult,
} from './gradient-index-shards.js';
// seeded random projections of gradient rows
export {
  DEFAULT_INDEX_DIM, GradientProjector, planProjection, PROJECTION_KINDS, type ProjectionKind,
} from './projection.js';

/**
 * @dda/core: the contracts every other package builds on.
 *
 * Data flows one way: dataset → model/checkpoints → gradients → scores (Scorer)
 * → debias/denoise (Debiaser, Denoiser) → metrics → reports.
 * Sign convention everywhere: higher score = training sample more responsible for the test output.
 *
 * The public entry point, listed name by name (issue 25), one group per module.
 */
// errors for the user: what went wrong and what to change
export {
  DdaError,
} from './errors.js';
// score matrices [nTrain × nTest] with their provenance and units
export {
  type ScoreProvenance, type ScoreMatrix, scoreUnits, createScoreMatrix, assertFiniteScores,
  scoreAt, assertSameShape, aggregateColumns,
} from './score-matrix.js';
// per-example gradient rows, whole or in blocks
export {
  type GradientMatrix, validateGradientMatrix, type GradientBlocks,
} from './gradients.js';
// the plugin contracts: scorer, debiaser, denoiser, measurement, metric, backend, dot-product kernel
export {
  type ChatMessage, type TextSegment, type TextSample, type ScorerNeed, type RepresentationMatrix,
  type ScoringInput, type ModelStepOptions, type ScoringModel, type CheckpointCombination,
  type Scorer, type StreamedFit, type BlockSummaries, type Debiaser, type CheckpointInfo,
  type DenoiserNeed, type Denoiser, type MeasurementTerm, type Measurement, type Metric,
  type MetricInput, type MetricInputs,
  type Backend, type DotKernel,
} from './plugins.js';
// DDA_ORT_THREADS: onnxruntime's intra-op threads per session
export { ORT_THREADS_ENV, ortThreadsFromEnvironment } from './engine-threads.js';
// row products on a registered dot-product kernel, or null for the caller's float64 loop
export {
  FLOAT64_LOOP_HOW, FLOAT64_CHUNK_BYTES, type KernelProducts, type KernelProductOptions, kernelProducts, kernelProducts64,
} from './dot-products.js';
// the two-pass streamed form of a scorer (StreamedFit): partial sums, stacked blocks
export {
  addPartial, stackScoreBlocks, scoreByStreamedFit,
} from './streamed-fit.js';
// a scorer's scores of the fine-tuned model over its checkpoints
export {
  scoreForFineTuned,
} from './combine.js';
// the registry of one plugin axis, and which plugin registered what
export {
  type RegistryEntry, type ResolveFailure, currentPlugin, registerAsPlugin, withPluginContext,
  Registry, type RegisteredId, registeredEntries, removePluginEntries,
} from './registry.js';
// "did you mean" suggestions for misspelt ids and flags
export {
  editDistance, closestNames, didYouMean,
} from './suggestions.js';
// the registries of every axis
export {
  type PluginOptions, scorers, debiasers, denoisers, metrics, backends, measurements, dotKernels, datasets,
  registerDataset, datasetPlugin, numberOption,
} from './registries.js';
// the contract of a benchmark data set
export {
  type DatasetTokenizer, type EntityMatching, type DatasetCanary, type DatasetTrainSample,
  type DatasetHeldOut, type BuiltDataset, type DatasetTokenLimits, type DatasetContext,
  type DatasetPlugin, type DatasetOptionKind, type CheckedDatasetOptions, checkDatasetOptions,
} from './datasets.js';
// the plugin loader: plugins by npm name or path, and what each registered
export {
  PLUGINS_ENV, type PluginInstallation, type LoadPluginsOptions, type LoadedPlugin, parsePluginList,
  isPathSpecifier, loadPlugins, loadedPlugins, type PluginCode, pluginCode, pluginCodeKey,
} from './plugin-loader.js';
// evaluation metrics: ROC-AUC, recall@k, average precision, reciprocal rank
export {
  rocAuc, type RocPoint, rocCurve, recallAtK, recallCurve, averagePrecision, reciprocalRank,
  aucMetric, recallAtKMetric, DEFAULT_RECALL_K, RECALL_AT_50, averagePrecisionMetric, mrrMetric,
  registerCoreMetrics, type SourceSpec, type SourceEvaluation, evaluateSources, createMetrics, trivialRecallWarnings, refuseLabelMetricsAsked,
  averageEvaluations, type MetricEvaluation, evaluateMetrics, averageMetricEvaluations,
  type MetricSpec, type MetricColumn, LABEL_METRICS, labelMetricColumns, createMetricSync, metricTableHeader, metricHeader,
} from './metrics.js';
// a seeded pseudo-random generator (mulberry32, Box–Muller): every random choice reproducible
export {
  SeededRandom, fnv1a, evenlySpaced,
} from './random.js';
// letting the event loop run between long synchronous steps
export {
  yieldToEventLoop,
} from './yield.js';
// the progress contract of long steps
export {
  type ProgressUpdate, type ProgressSink, trackProgress, formatDuration,
} from './progress.js';
// rotary position embeddings (RoPE), shared by the engines
export {
  type Llama3RopeScaling, type LinearRopeScaling, type RopeScaling, ropeInverseFrequencies,
  ropeCosSin,
} from './rope.js';
// per-layer attention, embedding scale and activation of the decoder, shared by the engines
export {
  type HiddenAct, type AttentionLayerType, type LayerAttentionFields, type LayerAttention,
  layerAttention, attentionMaskRow, attentionMask, embeddingScale, attentionScale, GELU_TANH_C,
} from './decoder-layout.js';
// words of text in any script (BM25's tokens, entity matching, the attribution page)
export {
  UNSPACED_SCRIPT_CLASS, WORD_PATTERN, wordTokens,
} from './text.js';

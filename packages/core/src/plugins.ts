import type { GradientBlocks, GradientMatrix } from './gradients.js';
import type { ScoreMatrix } from './score-matrix.js';
import type { ProgressSink } from './progress.js';

/** One turn of a conversation (the role/content records of chat data sets and chat templates). */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/**
 * One piece of a multi-turn sample's text: `loss` marks the pieces whose tokens carry the loss
 * (the assistant turns, with the end-of-turn token the chat template writes after them).
 */
export interface TextSegment {
  readonly text: string;
  readonly loss: boolean;
}

/**
 * A prompt/response pair as the model sees it; the loss is taken over the response tokens only
 * (and the end-of-sequence token the encoder appends).
 *
 * A multi-turn conversation whose loss covers several assistant turns also carries `segments`: the
 * whole rendered text, in order, each piece marked with whether it carries the loss. The model
 * encodes `segments` when present (no end-of-sequence token is appended: the chat template
 * writes one after each assistant turn); `prompt` and `response` are then a text view for
 * text-based scorers: `prompt` = the pieces without loss joined, `response` = the pieces with loss.
 */
export interface TextSample {
  readonly id: string;
  /** Everything before the response (system + user turns, already formatted). */
  readonly prompt: string;
  /** The response whose tokens carry the loss (a training summary, or an erroneous output). */
  readonly response: string;
  /** The whole text of a multi-turn sample, piece by piece (see above); absent for a prompt/response pair. */
  readonly segments?: readonly TextSegment[];
}

/**
 * What a scorer may need from the harness; the harness computes only what is asked for.
 * `model`: {@link ScoringInput.model} (optimizer steps on the model); `corrections`:
 * {@link ScoringInput.testCorrections} (the corrected version of every test output).
 */
export type ScorerNeed = 'gradients' | 'text' | 'representations' | 'model' | 'corrections';

/**
 * Hidden representations, one row per sample: the mean of the model's final hidden states
 * (after the last norm) over the response tokens, at one checkpoint. Units: those of the hidden state.
 */
export interface RepresentationMatrix {
  readonly ids: readonly string[];
  readonly dim: number;
  readonly rows: readonly Float32Array[];
  readonly checkpoint: string;
}

/**
 * Everything a scorer may use at one checkpoint. Gradients are computed lazily and cached by the
 * harness, so a scorer that only needs text (e.g. BM25) costs no model work.
 */
export interface ScoringInput {
  /** Checkpoint id the scores are computed at (e.g. `base`, `epoch-3`). */
  readonly checkpoint: string;
  readonly train: readonly TextSample[];
  /** The test outputs z_e (e.g. erroneous generations). */
  readonly test: readonly TextSample[];
  /** Per-example gradients of the training loss ℓ(z_t, θ), one row per training sample. */
  trainGradients(): Promise<GradientMatrix>;
  /**
   * The same training gradients block by block (offered by harnesses with an on-disk gradient
   * store); scorers whose scores are row-separable use it to keep memory bounded.
   */
  trainGradientBlocks?(): Promise<GradientBlocks>;
  /** Per-example gradients of the test measurement f(z_e, θ), one row per test output. */
  testGradients(): Promise<GradientMatrix>;
  /** Response representations of the training samples (offered by harnesses that run a model). */
  trainRepresentations?(): Promise<RepresentationMatrix>;
  /** Response representations of the test outputs. */
  testRepresentations?(): Promise<RepresentationMatrix>;
  /**
   * The corrected version of every test output (e.g. the erroneous summary with the hallucinated
   * entity swapped back), same ids and order as `test`, same prompts. Offered by harnesses that
   * know the corrections; needed by contrastive scorers such as `cea`.
   */
  readonly testCorrections?: readonly TextSample[];
  /** The model at `checkpoint`, for scorers that take optimizer steps on it (e.g. `cea`). */
  readonly model?: ScoringModel;
  /**
   * Where a scorer whose own work takes long (minutes: `cea`'s optimizer steps and training losses
   * per query) reports its progress, through `trackProgress` with a label naming the scorer and the
   * checkpoint. Absent: report nothing. The gradients a harness computes report on their own.
   */
  readonly progress?: ProgressSink;
}

/** Options of {@link ScoringModel.lossesAfterSteps}. */
export interface ModelStepOptions {
  /** Number of full-batch optimizer steps (positive integer). */
  readonly steps: number;
  /** Learning rate of the optimizer (positive). */
  readonly learningRate: number;
  /** `adam` (fresh moments, the fine-tuning optimizer) or plain `sgd`. */
  readonly optimizer: 'adam' | 'sgd';
}

/**
 * Model access for scorers that re-train briefly from the scoring checkpoint. Implementations must
 * be deterministic and must leave the model exactly as it was (the trainable adapter restored bit
 * for bit) when the call returns or throws.
 */
export interface ScoringModel {
  /**
   * Takes `steps` full-batch optimizer steps on the mean training loss of `updateOn` (the
   * trainable parameters of the checkpoint, e.g. the LoRA adapters), evaluates the loss of every
   * sample of `evaluate`, and restores the parameters.
   *
   * @returns Float64Array of `evaluate.length` losses: mean response-token cross-entropy, nats/token.
   */
  lossesAfterSteps(updateOn: readonly TextSample[], evaluate: readonly TextSample[], options: ModelStepOptions): Promise<Float64Array>;
}

/**
 * How a scorer's answer for a fine-tuned model is made from its per-checkpoint scores. By default
 * (no `combine`) the answer is the score at the final checkpoint. With `combine`, it is the
 * combination of the scores at the epoch checkpoints θ1..θN by the registered denoiser `denoiser`
 * (given each checkpoint's {@link CheckpointInfo}); e.g. TracIn-CP declares
 * `{ denoiser: 'lr-weighted' }`. Harnesses report that combination as the scorer's plain score
 * (see `scoreForFineTuned` in @dda/core).
 */
export interface CheckpointCombination {
  /** Id of a registered {@link Denoiser}, e.g. `lr-weighted`. */
  readonly denoiser: string;
}

/**
 * A training data attribution method at one checkpoint. Returns scores [nTrain × nTest] with the
 * project's sign convention: higher = training sample more responsible for the test output.
 */
export interface Scorer {
  /** Stable kebab-case id (`grad-dot`, `if-lissa`, ...). */
  readonly id: string;
  /** What the score is, its sign and its units, in one or two sentences. */
  readonly description: string;
  readonly needs: readonly ScorerNeed[];
  /** When set, the scorer's answer is combined over the epoch checkpoints (see {@link CheckpointCombination}). */
  readonly combine?: CheckpointCombination;
  /**
   * True when the scores of a training sample depend on that sample (and the test outputs) only,
   * not on the rest of the training set (dot products, cosines, BM25 over a fixed corpus is not).
   * A harness may then score blocks of training samples independently (bounded memory, resumable
   * and shardable block by block) and concatenate the rows; the result must equal scoring the
   * whole set at once.
   */
  readonly rowSeparable?: boolean;
  /**
   * The scorer's streaming form, for a scorer that needs every training row at once (not
   * row-separable) but can reduce each block of training gradients to a small summary: a harness
   * then streams the training gradients (computes a block, stores its summary, drops the block)
   * instead of storing them. Optional; see {@link BlockSummaries}.
   */
  readonly blockSummaries?: BlockSummaries;
  /**
   * The scorer's two-pass streamed form, for a scorer that needs a statistic of every training row
   * (a Hessian, a Fisher, a second moment) and then scores each row against that statistic alone:
   * a harness streams the training gradients once per fit pass and once more to score, never
   * holding all rows. Optional; see {@link StreamedFit}. A scorer declares at most one of
   * `rowSeparable`, `blockSummaries` and `streamedFit`.
   */
  readonly streamedFit?: StreamedFit;
  score(input: ScoringInput): Promise<ScoreMatrix>;
}

/**
 * A scorer in passes over streamed training gradients, fit then score (as kronfluence's
 * `fit_all_factors` then `compute_pairwise_scores` phases):
 *
 * 1. fit passes p = 0 .. `fitPasses` − 1: every training block (rows in training order, any
 *    consecutive split) is folded into a partial statistic by `fold(block, test, p, previous)`,
 *    the partials of all blocks are **summed elementwise** (so the order and the split of the
 *    blocks change the result by float rounding only), and `finalize(sum, nTrain, test, p,
 *    previous)` turns the sum into the fit of pass p, the `previous` of pass p + 1 (null for p = 0);
 * 2. the score pass: every training block is scored against the last fit by `scoreBlock`, and the
 *    blocks' rows concatenated are the matrix.
 *
 * Example: DataInf's fit is, per parameter tensor l and query j, x_jl = H_l⁻¹ h_jl by its
 * Sherman–Morrison closed form, a sum over training rows; with the scale-aware damping a first
 * pass sums ‖g_il‖² for λ_l. A harness (@dda/attribution) keeps each pass's running sum of the
 * partials of blocks 0 .. k − 1 on disk after every block (a killed run resumes at block k), stores
 * a block folded out of order (a shard's) as its own partial, deletes both once the pass's fit is
 * stored, and computes every training gradient `fitPasses` + 1 times. Memory while folding: one
 * partial, the running sum and the previous fit (sizes in `description`); no training rows beyond
 * one block. Disk: two copies of the running sum, the fits (only the latest of an `iterative` fit),
 * and the blocks of scores. A second example, `iterative`: LiSSA's recursion x_{t+1} = h + (1 −
 * λ/s)·x_t − (1/(s·n)) Σ g gᵀ x_t is one fit pass per step, Σ g gᵀ x_t the sum over training rows.
 *
 * Contract (checked by @dda/conformance for every scorer that declares it): scoring the training
 * set in blocks this way equals `score` on the whole set, to float rounding.
 */
export interface StreamedFit {
  /** What the partial statistic and the fit hold, with their sizes in terms of dim and nTest, for logs. */
  readonly description: string;
  /** Number of fit passes before the score pass (a positive integer, fixed for the scorer's options). */
  readonly fitPasses: number;
  /**
   * True when the fit passes are the steps of one iteration, often many (LiSSA: one pass per
   * step, `fitPasses` = its depth): pass p needs only the fit of pass p − 1 (as for every streamed
   * fit), and a harness keeps only the latest fit, deleting fit p − 1 once fit p is stored (its
   * compute seconds carried into fit p's) and resuming from the latest stored fit, so the disk
   * holds at most two fits whatever `fitPasses`. Absent or false: every pass's fit is kept.
   */
  readonly iterative?: boolean;
  /**
   * Why the scorer cannot, or should not, be streamed at this size (e.g. a dim × dim statistic
   * above its size limit, or so many passes that storing small gradients is far cheaper), or
   * undefined when it can. A harness then stores the gradients and scores them with `score`, and
   * says why in its log.
   */
  refuse?(dim: number, nTrain: number, nTest: number): string | undefined;
  /**
   * The partial statistic of `block` for fit pass `pass` (0-based), a function of `block`, `test`
   * and `previous` (the fit of pass − 1, null for pass 0) only; partials of all blocks are summed.
   * @throws DdaError on malformed or mismatched gradients.
   */
  fold(block: GradientMatrix, test: GradientMatrix, pass: number, previous: Float64Array | null): Promise<Float64Array>;
  /**
   * The fit of pass `pass` from `sum`, the elementwise sum of every block's partial over the
   * `nTrain` training rows.
   * @throws DdaError when the fit cannot be made (e.g. no training rows, all gradients zero).
   */
  finalize(sum: Float64Array, nTrain: number, test: GradientMatrix, pass: number, previous: Float64Array | null): Promise<Float64Array>;
  /**
   * Scores [block rows × nTest] of `block` against the last pass's `fit`, with the provenance of the
   * whole matrix, at `checkpoint` (as {@link ScoringInput.checkpoint}).
   * @throws DdaError on a `fit` of another size than the one `finalize` makes for `test`.
   */
  scoreBlock(fit: Float64Array, block: GradientMatrix, test: GradientMatrix, checkpoint: string): Promise<ScoreMatrix>;
}

/**
 * A scorer reduced over streamed training gradients, as a map and a reduce: `summarize` maps one
 * block of training gradients (and the test gradients) to a summary that depends on that block
 * alone, `combine` makes the scores from every block's summary in training order. A harness stores
 * each block's summary, so a killed run resumes at its first block without one and shards may
 * fill disjoint blocks. Contract (checked by @dda/conformance for every scorer that declares it):
 * `combine` over the summaries of any split of the training set into consecutive blocks equals
 * `score` on the whole set, to float rounding. Example: `trak`'s summary is the block's projected
 * gradients (k per row), its `combine` the ridge kernel over them.
 */
export interface BlockSummaries {
  /** What a summary holds, per training row, for logs (e.g. `512 projected dimensions (float64)`). */
  readonly description: string;
  /**
   * The summary of `block` (rows in training order), a function of `block` and `test` only.
   * @throws DdaError on malformed or mismatched gradients.
   */
  summarize(block: GradientMatrix, test: GradientMatrix): Promise<Float64Array>;
  /**
   * Scores [nTrain × nTest] of the training samples `trainIds` (the blocks' ids concatenated) from
   * their blocks' summaries in order, at `checkpoint` (as {@link ScoringInput.checkpoint}).
   * @throws DdaError when the summaries do not add up to `trainIds`, and whatever `score` throws.
   */
  combine(summaries: readonly Float64Array[], trainIds: readonly string[], test: GradientMatrix, checkpoint: string): Promise<ScoreMatrix>;
}

/**
 * Debias (DDA strategy 1): removes the base model's knowledge bias from the fine-tuned scores,
 * e.g. IS_DB = IS_θ' − β·IS_θ0. Works over any scorer's matrices.
 */
export interface Debiaser {
  readonly id: string;
  readonly description: string;
  /** `finetuned` and `base` must have the same train and test ids in the same order. */
  debias(finetuned: ScoreMatrix, base: ScoreMatrix): ScoreMatrix;
}

/** Per-checkpoint metadata a denoiser may use (e.g. learning-rate weighting). */
export interface CheckpointInfo {
  readonly id: string;
  /** Epoch number (1-based) of the checkpoint. */
  readonly epoch: number;
  /**
   * Learning rate in effect over the epoch (or the steps) that ended at this checkpoint; NaN when
   * it is unknown (e.g. a checkpoint folder without trainer_state.json), which learning-rate
   * weighted denoisers refuse with an error that says how to give it.
   */
  readonly learningRate: number;
}

/**
 * What a denoiser needs beyond the score matrices, declared so that a harness checks it before any
 * model work: `learning-rates`, a known, finite, non-negative {@link CheckpointInfo.learningRate}
 * at every checkpoint (not all zero).
 */
export type DenoiserNeed = 'learning-rates';

/**
 * Denoise (DDA strategy 2): combines the scores of the epoch checkpoints θ1..θN of one
 * fine-tuning run into one matrix, e.g. their mean. Works over any scorer's matrices.
 */
export interface Denoiser {
  readonly id: string;
  readonly description: string;
  /** What it needs beyond the matrices (see {@link DenoiserNeed}); none when absent. */
  readonly needs?: readonly DenoiserNeed[];
  /** `perCheckpoint[i]` was computed at `checkpoints[i]`; all must line up. */
  denoise(perCheckpoint: readonly ScoreMatrix[], checkpoints: readonly CheckpointInfo[]): ScoreMatrix;
}

/** One term of a test measurement: `weight` × the mean response-token loss of `sample` (see {@link Measurement}). */
export interface MeasurementTerm {
  /** A sample whose loss tokens are the ones this term measures (e.g. the whole output, or only an entity). */
  readonly sample: TextSample;
  readonly weight: number;
}

/**
 * The test measurement f(z_e, θ) whose gradient scorers take as the test gradient (METHOD.md,
 * "Influence at one checkpoint"): a weighted sum of mean response-token losses,
 * f = Σ_k w_k · ℓ(s_k, θ) (nats/token). Every measurement is oriented like the loss of the error:
 * lowering f makes the erroneous output more likely (relative to its correction, for contrastive
 * measurements), so a training sample whose gradient step lowers f is more responsible.
 * Examples: `loss` (ℓ of the output), `contrastive` (ℓ(error) − ℓ(correction)), `entity-margin`.
 */
export interface Measurement {
  /** Stable kebab-case id (`loss`, `contrastive`, ...). */
  readonly id: string;
  /** What f is, its sign and units. */
  readonly description: string;
  /** `corrections`: needs the corrected output of every query. */
  readonly needs: readonly 'corrections'[];
  /**
   * The terms of f for one query (its prompt and output as `query`; its corrected output as
   * `correction`, or null). Term sample ids must be unique within the query.
   *
   * @throws DdaError naming the query when it cannot be measured (e.g. no correction, or a
   *   correction equal to the output).
   */
  terms(query: TextSample, correction: TextSample | null): readonly MeasurementTerm[];
}

/**
 * An input a metric needs beyond one source's scores and labels, declared in {@link Metric.needs}
 * and provided by the benchmark harness (`dda bench`) where it can make it:
 * - `retrainedLosses`: models fine-tuned again on random subsets of the training set, and the test
 *   measurement of every test output after each ({@link MetricInputs.retrainedLosses});
 * - `retraining`: fine-tuning again without chosen training rows, and the fraction of the source's
 *   errors that then disappear ({@link MetricInputs.retraining}).
 */
export type MetricInput = 'retrainedLosses' | 'retraining';

/**
 * What a metric that declares {@link Metric.needs} receives for one source of one method (a row of
 * a benchmark): the method's score matrix with the source's test columns in it, and the inputs it
 * declared. A declared input that is absent means the harness cannot make it for this row (an
 * error-kind row, a `dda attribute` run): the metric is then not computed (an empty cell).
 */
export interface MetricInputs {
  /** The row's method, as the leaderboard names it (e.g. `grad-dot@loss`, `dda(grad-dot@loss)`). */
  readonly method: string;
  /** The source's id. */
  readonly source: string;
  /** The method's scores [nTrain × nTest]; higher = more responsible. */
  readonly matrix: ScoreMatrix;
  /** The source's test outputs: column indices of `matrix`. */
  readonly columns: readonly number[];
  /**
   * `retrainedLosses`: the training-row subsets the model was fine-tuned again on, and
   * `losses[j][t]`, the test measurement f of test output t (column t of `matrix`) after
   * fine-tuning on `subsets[j]`.
   */
  readonly retrainedLosses?: { readonly subsets: readonly (readonly number[])[]; readonly losses: readonly Float64Array[] };
  /** `retraining`: fine-tunes again without the training rows `remove` and returns the fraction (0–1) of the source's errors that disappeared. */
  readonly retraining?: { fractionFixed(remove: readonly number[]): Promise<number> };
}

/**
 * An evaluation metric over one score vector and binary ground-truth labels (1 = true source),
 * described for the tables that show it.
 */
export interface Metric {
  /** Stable kebab-case id, also the CSV column name (e.g. `auc`, `recall-at-20`). */
  readonly id: string;
  readonly description: string;
  /** A short column header for printed tables and reports (e.g. `AUC (%)`, `MRR`); default the id. */
  readonly label?: string;
  /** False when a lower value is better (default true: higher is better). */
  readonly higherIsBetter?: boolean;
  /** The unit of the value, for tables (e.g. `percent`, `fraction`, `correlation`). */
  readonly units?: string;
  /** The values the metric can take, e.g. [0, 100] for a percentage: a summary's interval is cut to it. */
  readonly range?: readonly [number, number];
  /** Decimals a table prints the value with (default 3). */
  readonly digits?: number;
  /**
   * Inputs beyond the scores and labels (see {@link MetricInput}); `compute` then receives them
   * as its third argument and may return a promise. Absent or empty: scores and labels only,
   * computed synchronously (every metric `dda attribute --metrics` takes).
   */
  readonly needs?: readonly MetricInput[];
  /**
   * The value for one source: `scores` are every training sample's scores averaged over the
   * source's test outputs, `labels` its 0/1 labels. A metric with {@link needs} gets its inputs
   * as `inputs` and returns NaN where its inputs say the row is not one it measures.
   */
  compute(scores: ArrayLike<number>, labels: ArrayLike<number>, inputs?: MetricInputs): number | Promise<number>;
}

/**
 * A compute backend: an initialised engine the model code runs on. Created through the
 * `backends` registry, which tries backends by priority and reports why each one failed.
 */
export interface Backend {
  /** Stable kebab-case id, e.g. `tfjs-wasm`. */
  readonly id: string;
  /** Engine family the model code targets (e.g. `tfjs`). */
  readonly engine: string;
  /** What it runs on, for logs and reports, e.g. "tfjs wasm backend (SIMD, 1 thread)". */
  readonly device: string;
}

/**
 * A dot-product kernel: the inner products of every training gradient row with every query row,
 * on some compute engine (onnxruntime's float32 GEMM, a GPU, ...). The gradient scorers
 * (`grad-dot`, `grad-cos`, `tracin-cp` and the influence family's products) find one in the
 * `dotKernels` registry by priority, and fall back to their float64 JavaScript loop where none
 * starts; no scorer imports an engine by name. Registered by an engine plugin; `create` starts the
 * engine (lazily, once) and rejects with the reason when it cannot.
 */
export interface DotKernel {
  /** Registry id, e.g. `onnxruntime`. */
  readonly id: string;
  /** The backend it runs on, e.g. `onnxruntime-cpu` (recorded as the engine of the products). */
  readonly backend: string;
  /** One phrase for score provenance, e.g. "float32 GEMM on onnxruntime-cpu". */
  readonly how: string;
  /**
   * `values[i·nTest + j] = train[i] · test[j·dim .. (j+1)·dim)`, row-major [nTrain × nTest].
   *
   * @param train - Training rows, each of length `dim`.
   * @param test - The query rows, concatenated: [nTest × dim].
   * @param o.blockRows - At most this many training rows per product call (the kernel may use fewer).
   * @throws Error when the engine fails while computing.
   */
  dot(train: readonly Float32Array[], dim: number, test: Float32Array, nTest: number, o?: { readonly blockRows?: number }): Promise<Float64Array>;
  /**
   * Optional: the products of training rows stored as IEEE half floats (`bits`: the float16 bit
   * patterns, row-major [rows × dim], as a gradient index holds them), widened exactly to float32
   * inside the kernel, with each row's sum of squares; both float32 accumulation. Lets a caller
   * scan rows read from disk without widening them in JavaScript.
   *
   * @returns `scoresT[j·rows + i]` = row i · test row j, [nTest × rows], and `sumSquares[i]` = Σ row i².
   * @throws Error when the engine fails while computing.
   */
  dotHalf?(bits: Uint16Array, rows: number, dim: number, test: Float32Array, nTest: number): Promise<{ readonly scoresT: Float32Array; readonly sumSquares: Float32Array }>;
  /**
   * Optional: products of float64 rows with float64 accumulation (a float64 GEMM), for the
   * influence scorers' Gram matrices, solves and eigenbasis rotations, where float32 accumulation
   * is not accurate enough. The result may differ from an in-order float64 loop only by the order
   * of the sums (rounding of float64).
   *
   * @param a - [nA × dim] row-major. @param b - [nB × dim] row-major.
   * @returns `c[i·nB + j] = a_i · b_j`, [nA × nB] row-major.
   * @throws Error when the engine fails while computing.
   */
  dot64?(a: Float64Array, nA: number, b: Float64Array, nB: number, dim: number): Promise<Float64Array>;
}

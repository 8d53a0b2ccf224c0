/**
 * Gradients and scores of a task, cached by content: per-example gradients in blocks at θ0 and
 * every checkpoint, the queries' test-measurement gradients, and every scorer's score matrix at
 * every checkpoint. Row-separable scorers are scored block by block (bounded memory, resumable and
 * shardable per block) and, unless {@link RunOptions.storeGradients} is set, their training
 * gradients are streamed: computed once per block, folded into the block's stored scores, and
 * dropped, so the disk holds scores, not gradients. Scorers with block summaries (trak) stream
 * into per-block summaries; scorers with a streamed fit (datainf, if-ekfac; if-exact, trackstar
 * and grad-dot-pc where dim allows) stream their gradients once per fit pass and once more to
 * score ({@link StreamedFit}). The others see
 * the whole training set, read from the stored gradient blocks.
 */
import {
  DdaError, createScoreMatrix, measurements, pluginCode, pluginCodeKey, scorers, trackProgress, type Measurement, type MeasurementTerm, type GradientMatrix, type ModelStepOptions, type ProgressSink,
  type BlockSummaries, type ScoreMatrix, type Scorer, type ScoringInput, type StreamedFit, type TextSample, addPartial, stackScoreBlocks,
} from '@dda/core';
import { engines } from '@dda/model';
import { ArtifactStore, hashOf } from './artifacts.js';
import type { Checkpoint } from './checkpoints.js';
import { CheckpointModel, resolveGradientEngine, type GradientEngine, type Log } from './engine.js';
import { type GradientBlockSpec, gradientBlock, gradientBlockStream, readGradientBlock } from './gradient-blocks.js';
import { measurementTermsOf, type AttributionTask } from './task.js';
import { ensurePlugins } from './plugins.js';
import { GradientProjector, type ModuleProjection, type ProjectionSpec } from './projection.js';
import { refuseUnknownScorerOptions } from './scorer-options.js';

/** Default number of samples per gradient block. */
export const DEFAULT_BLOCK_ROWS = 128;
/**
 * Largest block of float32 training gradient rows held in memory when the block size is not given:
 * 1 GiB. A block's rows are computed together (then scored, summarized or stored, and dropped), so
 * at real size the default {@link DEFAULT_BLOCK_ROWS} would hold 4.5 GB for Qwen2-0.5B with rank-16
 * LoRA on every linear map (35 MB a row) and 20 GB for a 7B model's.
 */
export const DEFAULT_MAX_BLOCK_BYTES = 2 ** 30;
/**
 * Gradient blocks are also held to a quarter of the base model's stored bytes (issue 27's memory
 * target is a peak of 2× the BF16 folder: the weights take 1×, the engine's run up to about ¾),
 * but never below this, 128 MiB: at most a few real-size rows, and 128 rows of every tiny or mini
 * model (0.6 MB a row at most with rank-16 LoRA on every linear map), whose blocks stay as they were.
 */
export const MIN_MAX_BLOCK_BYTES = 2 ** 27;

/**
 * Largest block of float32 training gradient rows held at once when the block size is not given:
 * {@link DEFAULT_MAX_BLOCK_BYTES}, or a quarter of the base model's stored bytes where that is
 * smaller, at least {@link MIN_MAX_BLOCK_BYTES} (246 MB for the 0.99 GB Qwen2-0.5B folder: 7 rows
 * of 35.2 MB, where 1 GiB held 30 and 1.06 GB).
 */
export function maxBlockBytes(task: Pick<AttributionTask, 'base'>): number {
  const stored = task.base.storedBytes;
  return stored === undefined ? DEFAULT_MAX_BLOCK_BYTES : Math.min(DEFAULT_MAX_BLOCK_BYTES, Math.max(MIN_MAX_BLOCK_BYTES, stored / 4));
}

/** Entries of one full (unprojected) per-example gradient row at `cp`: its LoRA tensors, or every weight of a full checkpoint. */
function fullGradientDim(task: AttributionTask, cp: Checkpoint): number {
  let d = 0;
  for (const t of (cp.kind === 'lora' ? cp.weights : task.base.weights).values()) d += t.data.length;
  return d;
}

/** Bytes of one full float32 training gradient row of the task's largest checkpoint (θ0 included). */
function largestGradientRowBytes(task: AttributionTask): number {
  return 4 * Math.max(...[task.baseCheckpoint, ...task.checkpoints].map((cp) => fullGradientDim(task, cp)));
}

/**
 * Samples per gradient block: `options.blockRows` when given, else {@link DEFAULT_BLOCK_ROWS}
 * lowered (to at least 1) so that one block of full float32 gradient rows of the largest checkpoint
 * fits {@link maxBlockBytes}. The same in every process of a run (shards, merge).
 */
export function blockRowsFor(task: AttributionTask, options: Pick<RunOptions, 'blockRows'>): number {
  if (options.blockRows !== undefined) return options.blockRows;
  return Math.max(1, Math.min(DEFAULT_BLOCK_ROWS, Math.floor(maxBlockBytes(task) / largestGradientRowBytes(task))));
}

/** Options of an {@link AttributionRun}. */
export interface RunOptions {
  /** Folder of the cached artifacts (gradients, scores). */
  readonly artifactsDir: string;
  /** Engine of the per-example gradients (default `tfjs`). */
  readonly gradientEngine?: GradientEngine;
  /** Samples per gradient block (default {@link DEFAULT_BLOCK_ROWS}). */
  readonly blockRows?: number;
  /**
   * Keep every training block's per-example gradients in the store (`gradients/<checkpoint>/train/`,
   * float32, dim × 4 bytes per sample), so that new queries or other scorers reuse them. Default
   * false: row-separable scorers stream them (computed, scored, dropped; a killed run resumes at
   * its first block without stored scores). Scorers that need every row at once store them
   * whatever this says (the log names them).
   */
  readonly storeGradients?: boolean;
  /** tfjs backends to try in order. */
  readonly backends?: readonly string[];
  /** Test measurement f whose gradient is the queries' test gradient (default `loss`; see `dda methods`). */
  readonly measurement?: string;
  /** Options passed to every scorer's factory, by scorer id. */
  readonly scorerOptions?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /**
   * Project every per-example gradient row (training samples and queries) to `dim` dimensions with
   * the gradient index's seeded projection (projection.ts: one matrix per tensor, dimensions split
   * in proportion to the tensors' sizes) before any scorer sees it, to measure what compression costs.
   * The rows' layout becomes one block of k_m dimensions per tensor, without the tensors' shapes
   * (scorers that need a tensor's 2-D shape, `if-ekfac`, refuse them). Absent: the full gradients.
   */
  readonly projection?: ProjectionSpec;
  /**
   * Training gradient rows read instead of computed at some checkpoints (the rows of gradient
   * indexes, `dda attribute --index`: see indexed-rows.ts). They are projected rows, so
   * {@link projection} must be theirs; the queries' gradients are computed and projected with it.
   * Absent: every training gradient is computed.
   */
  readonly trainRows?: TrainRowSource;
  /**
   * The model to use, shared with other runs of the same task (e.g. one run per test measurement):
   * one engine's decoders and onnxruntime sessions instead of one set per run (each set holds up to
   * gigabytes). It must be opened for this task on the run's gradient engine and backends. Absent:
   * the run opens its own on first use.
   */
  readonly model?: Promise<CheckpointModel>;
  readonly log?: Log;
  readonly progress?: ProgressSink;
}

/**
 * Training gradient rows that a run reads rather than computes, by checkpoint (gradient indexes:
 * indexed-rows.ts).
 */
export interface TrainRowSource {
  /** The rows at the checkpoint with this id (`base` = θ0), or undefined where the run computes them. */
  at(checkpointId: string): TrainRowsAt | undefined;
}

/** The training gradient rows at one checkpoint, projected (see {@link TrainRowSource}). */
export interface TrainRowsAt {
  /** What the rows are (their source's identity): part of the key of every block and of every score computed from them. */
  readonly key: unknown;
  /** The projected layout of a row, tensor by tensor; the queries' projection at the checkpoint must give the same. */
  readonly modules: readonly ModuleProjection[];
  /** Where the rows are (a folder), for the log and errors. */
  readonly where: string;
  /** Rows [start, end) of the training set in task order, float32, k entries each. */
  read(start: number, end: number): Float32Array[];
}

/** Scores of one scorer at θ0 and at every checkpoint. */
export interface CheckpointScores {
  readonly scorer: Scorer;
  /** At θ0 (for model-free scorers: the same matrix as every checkpoint). */
  readonly base: ScoreMatrix;
  /** At θ1..θN, in order. */
  readonly epochs: readonly ScoreMatrix[];
}

function scoresToFiles(m: ScoreMatrix): Map<string, Uint8Array> {
  const meta = { trainIds: m.trainIds, testIds: m.testIds, provenance: m.provenance };
  return new Map([
    ['scores.f64', new Uint8Array(m.values.buffer.slice(m.values.byteOffset, m.values.byteOffset + m.values.byteLength))],
    ['scores.json', new TextEncoder().encode(JSON.stringify(meta))],
  ]);
}

function scoresFromFiles(files: Map<string, Uint8Array>, what: string): ScoreMatrix {
  const json = files.get('scores.json');
  const bytes = files.get('scores.f64');
  if (!json || !bytes) throw new DdaError(`${what}: score artifact is missing a file`, 'delete it to recompute');
  const meta = JSON.parse(new TextDecoder().decode(json)) as Pick<ScoreMatrix, 'trainIds' | 'testIds' | 'provenance'>;
  const values = new Float64Array(bytes.byteLength / 8);
  new Uint8Array(values.buffer).set(bytes);
  return createScoreMatrix(meta.trainIds, meta.testIds, values, meta.provenance);
}

/** A scorer that does not use the model (bm25, random): the same scores at every checkpoint, so debias and denoise do not apply. */
export function isModelFree(scorer: Scorer): boolean {
  return !scorer.needs.includes('gradients') && !scorer.needs.includes('representations') && !scorer.needs.includes('model');
}

/**
 * One attribution of a task: the model (opened on first use), the artifact store, and what was
 * reused or computed. Call {@link dispose} when done.
 */
export class AttributionRun {
  readonly store: ArtifactStore;
  /** Artifacts loaded from earlier runs instead of recomputed (names). */
  readonly reused: string[] = [];
  /** Artifacts computed by this run (names). */
  readonly computed: string[] = [];
  /** Seconds spent computing, by artifact kind (`gradients`, `scores:<scorer>`). */
  readonly seconds: Record<string, number> = {};
  /** Training gradient blocks computed and not stored (names as in {@link computed}, where they are listed too). */
  readonly streamed: string[] = [];
  /** Training gradient blocks read from {@link RunOptions.trainRows} (names as in {@link computed}; in neither list). */
  readonly readRows: string[] = [];
  readonly blockRows: number;
  /** Whether computed training gradients are written to the store ({@link RunOptions.storeGradients}). */
  readonly storeGradients: boolean;
  /** The query gradients of the last two checkpoints asked for, oldest first (see {@link queryGradients}). */
  private readonly queryMemo = new Map<Checkpoint, Promise<GradientMatrix>>();
  /** Scorers whose gradient path was logged (once per run). */
  private readonly pathLogged = new Set<string>();
  private modelPromise: Promise<CheckpointModel> | null = null;
  private measurementPromise: Promise<Measurement> | null = null;
  private readonly progressBars = new Map<string, { tick(n?: number): void }>();
  private readonly log: Log;
  private readonly scorerCache = new Map<string, Promise<Scorer>>();
  /** Projectors by gradient layout (with `options.projection`). */
  private readonly projectors = new Map<string, GradientProjector>();
  /** Gradient artifacts whose blocks were projected from stored full gradients (logged once each). */
  private readonly projectedFromStore = new Set<string>();
  /** Compute seconds of every score artifact used in this run (undefined: not recorded). */
  private readonly artifactSeconds = new Map<string, number | undefined>();
  /** The last few finalized fits of streamed-fit scorers read or made (by artifact name and key). */
  private readonly fitMemo = new Map<string, Float64Array>();
  /** Partial statistics of streamed fits known to be stored (so each is verified once per run, not once per block). */
  private readonly knownStored = new Set<string>();
  /** The running sums of the fit passes under way (see {@link runningSum}). */
  private readonly runningSums = new Map<string, RunningSum>();
  /** The latest stored fit pass of each `iterative` streamed fit (by its pass-0 fit's name and key), see {@link latestFitPass}. */
  private readonly latestFits = new Map<string, number>();
  /** What a plugin's reused results were logged for (once per run each). */
  private readonly reuseLogged = new Set<string>();

  constructor(readonly task: AttributionTask, readonly options: RunOptions) {
    this.store = new ArtifactStore(options.artifactsDir);
    this.blockRows = blockRowsFor(task, options);
    this.storeGradients = options.storeGradients ?? false;
    if (!Number.isInteger(this.blockRows) || this.blockRows < 1) throw new DdaError(`blockRows must be a positive integer, got ${this.blockRows}`);
    this.log = options.log ?? (() => {});
    if (this.blockRows < DEFAULT_BLOCK_ROWS && options.blockRows === undefined && this.blockRows < task.train.samples.length) {
      const rowMb = largestGradientRowBytes(task) / 1e6;
      this.log(`gradient blocks of ${this.blockRows} samples (not ${DEFAULT_BLOCK_ROWS}): a training gradient row is ${rowMb.toFixed(1)} MB and a block's rows are held in memory together (at most ${(maxBlockBytes(task) / 2 ** 20).toFixed(0)} MiB: 1 GiB, or a quarter of the base model's stored bytes, at least 128 MiB); --block-rows sets another size`);
    }
  }

  /**
   * A run on the gradient engine that will actually run ({@link resolveGradientEngine}: onnxruntime
   * by default, tfjs where it does not start), which is part of every artifact key.
   */
  static async open(task: AttributionTask, options: RunOptions): Promise<AttributionRun> {
    return new AttributionRun(task, { ...options, gradientEngine: await resolveGradientEngine(options.gradientEngine, options.log) });
  }

  /** θ0 (`base`) and θ1..θN, in order. */
  get allCheckpoints(): readonly Checkpoint[] {
    return [this.task.baseCheckpoint, ...this.task.checkpoints];
  }

  /** The checkpoint with this id (`base` is θ0). */
  checkpoint(id: string): Checkpoint {
    const cp = this.allCheckpoints.find((c) => c.id === id);
    if (!cp) throw new DdaError(`no checkpoint '${id}'`, `use one of: ${this.allCheckpoints.map((c) => c.id).join(', ')}`);
    return cp;
  }

  /** The model: {@link RunOptions.model} if given, else opened on first use. */
  model(): Promise<CheckpointModel> {
    this.modelPromise ??= this.options.model ?? CheckpointModel.open(this.task, {
      log: this.log,
      ...(this.options.gradientEngine ? { gradientEngine: this.options.gradientEngine } : {}),
      ...(this.options.backends ? { backends: this.options.backends } : {}),
    });
    return this.modelPromise;
  }

  /** A scorer by id, created once per run with the run's options for it (a key it does not declare refused). */
  scorer(id: string): Promise<Scorer> {
    let s = this.scorerCache.get(id);
    if (!s) {
      s = ensurePlugins().then(() => {
        const o = this.options.scorerOptions?.[id] ?? {};
        refuseUnknownScorerOptions(id, o);
        return scorers.create(id, o);
      });
      this.scorerCache.set(id, s);
    }
    return s;
  }

  private note(name: string, reused: boolean, kind: string, seconds: number): void {
    (reused ? this.reused : this.computed).push(name);
    this.seconds[kind] = (this.seconds[kind] ?? 0) + seconds;
    if (reused && kind.startsWith('scores:')) this.logPluginReuse(`scores of ${kind.slice('scores:'.length)}`, pluginOf(scorers, kind.slice('scores:'.length)));
  }

  /**
   * Logs, once per run, that `what` of a plugin loaded from a path or a package (one with a code
   * identity in its cache keys, see `pluginCode` of @dda/core) was reused from an earlier run.
   */
  private logPluginReuse(what: string, plugin: string | undefined): void {
    if (pluginCode(plugin) === undefined || this.reuseLogged.has(what)) return;
    this.reuseLogged.add(what);
    this.log(`${what} reused from an earlier run (plugin ${plugin}, code unchanged)`);
  }

  /**
   * What the model at a checkpoint depends on: base files, the checkpoint's files, engine, encoding
   * (and the engine's code when a plugin loaded from a path or a package gives it).
   */
  modelKey(cp: Checkpoint): unknown {
    const engine = this.options.gradientEngine ?? 'onnxruntime';
    return { base: this.task.base.hash, checkpoint: { id: cp.id, kind: cp.kind, hash: cp.hash }, engine, ...pluginCodeKey(pluginOf(engines, engine)), encoding: this.task.encoding };
  }

  /** Number of entries of a gradient row at `cp`: the adapter's tensors, or every base tensor (k with a projection). */
  gradientDim(cp: Checkpoint): number {
    if (this.options.projection) return this.options.projection.dim;
    return fullGradientDim(this.task, cp);
  }

  /** The training set's blocks of consecutive samples, each keyed by the model at `cp` and its samples. */
  trainBlocks(cp: Checkpoint): GradientBlockSpec[] {
    const samples = this.task.train.samples;
    const out: GradientBlockSpec[] = [];
    for (let start = 0, index = 0; start < samples.length; start += this.blockRows, index++) {
      const end = Math.min(samples.length, start + this.blockRows);
      const block = samples.slice(start, end);
      const rows = this.options.trainRows?.at(cp.id);
      out.push({ index, start, end, ids: block.map((s) => s.id), key: { step: 'gradients', which: 'train', model: this.modelKey(cp), samples: hashOf(block), ...this.projectionKey(), ...(rows ? { rows: rows.key } : {}) } });
    }
    return out;
  }

  /**
   * The gradients of one training block at `cp`: read from the store when they are there, else
   * computed and, when `save` (default true), stored; a block computed and not stored is listed in
   * {@link streamed}. `pending`: which blocks still need gradients, for the progress bar's total
   * (default: those not in the store).
   */
  async trainGradientBlock(cp: Checkpoint, spec: GradientBlockSpec, save = true, pending?: { key: string; todo: (b: GradientBlockSpec) => boolean }): Promise<GradientMatrix> {
    const name = `gradients/${cp.id}/train`;
    const given = this.options.trainRows?.at(cp.id);
    if (given) {
      // Read, never stored again: the source is their store.
      this.readRows.push(`${name}/${spec.index}`);
      return rowsMatrix(given, spec, cp.id);
    }
    const r = await gradientBlock(this.store, name, spec, async () => {
      const stored = this.storedFullBlock(name, spec.key);
      if (stored) return await this.projected(stored);
      const model = await this.model();
      const bar = this.trainProgress(cp, pending);
      return await this.projected(await model.gradients(cp, this.task.train.samples.slice(spec.start, spec.end), () => bar.tick()));
    }, save);
    this.note(`${name}/${spec.index}`, r.reused, 'gradients', r.reused ? 0 : r.seconds);
    if (!r.reused && !save) this.streamed.push(`${name}/${spec.index}`);
    return r.gradients;
  }

  /**
   * One progress step per checkpoint (and pass, `pending.key`) for the training gradients, over the
   * samples of the blocks still to compute when the first one is computed (so a resumed run's ETA
   * is right).
   */
  private trainProgress(cp: Checkpoint, pending?: { key: string; todo: (b: GradientBlockSpec) => boolean }): { tick(n?: number): void } {
    const key = `${cp.id}${pending ? ` ${pending.key}` : ''}`;
    let bar = this.progressBars.get(key);
    if (!bar) {
      const notStored = (b: GradientBlockSpec): boolean => this.store.locate(`gradients/${cp.id}/train`, b.key) === undefined;
      const todo = this.trainBlocks(cp).filter((b) => notStored(b) && (pending?.todo(b) ?? true)).reduce((a, b) => a + b.end - b.start, 0);
      bar = trackProgress(`gradients of ${todo} training samples at ${cp.id}${pending ? ` (${pending.key})` : ''}`, todo, this.options.progress);
      this.progressBars.set(key, bar);
    }
    return bar;
  }

  /** Every training block's gradients at `cp`, as a stream (computed on first read). */
  trainGradientStream(cp: Checkpoint): ReturnType<typeof gradientBlockStream> {
    return gradientBlockStream(this.task.train.samples.map((s) => s.id), this.gradientDim(cp), cp.id, this.trainBlocks(cp), (spec) => this.trainGradientBlock(cp, spec));
  }

  /** The run's test measurement. */
  async measurement(): Promise<Measurement> {
    this.measurementPromise ??= ensurePlugins().then(() => measurements.create(this.options.measurement ?? 'loss', {}));
    return this.measurementPromise;
  }

  /**
   * The terms of the measurement of every query (see Measurement in @dda/core), checked: every
   * query measurable and every term sample within the context length.
   *
   * @throws DdaError naming the query (and its file line) that cannot be measured; where several
   *   cannot, one error listing each of them (so they are fixed in one go).
   */
  async measurementTerms(): Promise<{ query: string; terms: readonly MeasurementTerm[] }[]> {
    const terms = measurementTermsOf(await this.measurement(), this.task.queries, (s, o) => this.task.encode(s, o));
    return this.task.queries.map((q, i) => ({ query: q.record.id, terms: terms[i] as MeasurementTerm[] }));
  }

  /**
   * The test measurement f of every query at a checkpoint (e.g. a model retrained for LDS), one
   * value per query in task order: Σ_k w_k ℓ(s_k) over the measurement's terms, nats/token.
   */
  async measure(cp: Checkpoint): Promise<Float64Array> {
    const queries = await this.measurementTerms();
    const model = await this.model();
    const losses = await model.losses(cp, queries.flatMap((q) => q.terms.map((t) => t.sample)));
    let k = 0;
    return Float64Array.from(queries, (q) => q.terms.reduce((acc, t) => acc + t.weight * (losses[k++] as number), 0));
  }

  /**
   * The mean response-token loss (nats/token) of each of `samples` at `cp`, stored as the artifact
   * `losses/<checkpoint>/<which>` keyed by the model and the samples (one forward pass per sample).
   */
  async sampleLosses(cp: Checkpoint, samples: readonly TextSample[], which: string): Promise<Float64Array> {
    const name = `losses/${cp.id}/${which}`;
    const r = await this.store.getOrCompute(name, { step: 'losses', model: this.modelKey(cp), samples: hashOf(samples) }, async () => {
      const l = await (await this.model()).losses(cp, samples);
      return new Map([['losses.f64', new Uint8Array(l.buffer.slice(l.byteOffset, l.byteOffset + l.byteLength))]]);
    });
    this.note(name, r.reused, 'losses', r.reused ? 0 : r.seconds ?? 0);
    const bytes = r.files.get('losses.f64');
    if (!bytes || bytes.byteLength !== samples.length * 8) throw new DdaError(`${name}: stored losses do not match the ${samples.length} samples`, 'delete the artifact to recompute it');
    const out = new Float64Array(samples.length);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }

  /** The key of the queries' gradients at `cp`. */
  private queryKey(cp: Checkpoint): unknown {
    const m = this.options.measurement ?? 'loss';
    return { step: 'gradients', which: 'queries', measurement: m, ...pluginCodeKey(pluginOf(measurements, m)), model: this.modelKey(cp), samples: hashOf(this.task.queries.map((q) => (m === 'loss' ? q.sample : [q.sample, q.correction]))), ...this.projectionKey() };
  }

  /** The projection in the gradient keys (nothing without one, so unprojected keys stay as they were). */
  private projectionKey(): { projection?: ProjectionSpec } {
    return this.options.projection ? { projection: this.options.projection } : {};
  }

  /**
   * With a projection, the same block's full (unprojected) gradients where an earlier run stored
   * them (`storeGradients`, the same model, samples and measurement), so that projecting them costs
   * no gradient computation: the rows are the ones a new computation would give, bit for bit. Else null.
   */
  private storedFullBlock(name: string, key: unknown): GradientMatrix | null {
    if (!this.options.projection) return null;
    const { projection: _p, ...full } = key as { projection?: ProjectionSpec };
    const hit = this.store.locate(name, full);
    if (!hit) return null;
    if (!this.projectedFromStore.has(name)) {
      this.projectedFromStore.add(name);
      this.log(`${name}: projected from the full gradients an earlier run stored (--store-gradients), not computed again`);
    }
    return readGradientBlock(hit.dir);
  }

  /** `g` with every row projected (see {@link RunOptions.projection}); `g` itself without a projection. */
  private async projected(g: GradientMatrix): Promise<GradientMatrix> {
    const spec = this.options.projection;
    if (!spec) return g;
    const layout = { names: g.parameterNames, sizes: g.parameterSizes };
    const key = JSON.stringify(layout);
    let p = this.projectors.get(key);
    if (!p) this.projectors.set(key, (p = new GradientProjector(spec, layout)));
    const projector = p;
    const given = this.options.trainRows?.at(g.checkpoint);
    if (given && JSON.stringify(given.modules) !== JSON.stringify(projector.modules)) {
      const k = projector.modules.findIndex((m, i) => JSON.stringify(m) !== JSON.stringify(given.modules[i]));
      throw new DdaError(
        `the training rows of ${given.where} are projected over another gradient layout than this run's at ${g.checkpoint} (${projector.modules.length} tensors here, ${given.modules.length} there; first difference at tensor ${k}: ${JSON.stringify(projector.modules[k] ?? null)} here, ${JSON.stringify(given.modules[k] ?? null)} there)`,
        'build the index again with the base model, checkpoints and version of this run',
      );
    }
    return {
      ids: g.ids, checkpoint: g.checkpoint, dim: projector.dim,
      rows: (await projector.projectRows(g.rows, { log: this.log })).rows.map((row) => Float32Array.from(row)),
      // No parameterShapes: a projected block is not the tensor's matrix (scorers that need one, if-ekfac, refuse the rows).
      parameterNames: projector.modules.map((m) => m.name), parameterSizes: projector.modules.map((m) => m.dims),
    };
  }

  /**
   * Gradients of the test measurement f of every query at `cp`, one row per query, stored as one
   * block: ∇f = Σ_k w_k ∇ℓ(s_k) over the measurement's terms (for `loss`, the per-example gradient
   * of the output's mean response-token loss itself). Units: d(nats/token)/d(parameter).
   */
  queryGradients(cp: Checkpoint): Promise<GradientMatrix> {
    // Those of the last two checkpoints asked for are kept in memory: every block of a streamed
    // pass scores against them (two: the cross reading scores θ0's blocks against θ′'s queries too).
    let memo = this.queryMemo.get(cp);
    if (!memo) {
      const gradients = this.loadQueryGradients(cp);
      memo = gradients;
      gradients.catch(() => {
        if (this.queryMemo.get(cp) === gradients) this.queryMemo.delete(cp);
      });
    }
    this.queryMemo.delete(cp);
    this.queryMemo.set(cp, memo);
    for (const old of this.queryMemo.keys()) if (this.queryMemo.size > 2) this.queryMemo.delete(old);
    return memo;
  }

  private async loadQueryGradients(cp: Checkpoint): Promise<GradientMatrix> {
    const queries = await this.measurementTerms();
    const spec: GradientBlockSpec = { index: 0, start: 0, end: queries.length, ids: queries.map((q) => q.query), key: this.queryKey(cp) };
    const name = `gradients/${cp.id}/queries`;
    const r = await gradientBlock(this.store, name, spec, async () => {
      const stored = this.storedFullBlock(name, spec.key);
      if (stored) return await this.projected(stored);
      const model = await this.model();
      const samples = queries.flatMap((q) => q.terms.map((t) => t.sample));
      const bar = trackProgress(`gradients of ${queries.length} queries at ${cp.id} (measurement ${this.options.measurement ?? 'loss'})`, samples.length, this.options.progress);
      const g = await model.gradients(cp, samples, () => bar.tick());
      let k = 0;
      const rows = queries.map((q) => {
        if (q.terms.length === 1 && q.terms[0]?.weight === 1) return g.rows[k++] as Float32Array;
        const terms = q.terms.map((t) => ({ weight: t.weight, row: g.rows[k++] as Float32Array }));
        return combineGradientTerms(terms, g.dim, `query '${q.query}' at ${cp.id}`);
      });
      return await this.projected({ ...g, ids: queries.map((q) => q.query), rows });
    });
    this.note(name, r.reused, 'gradients', r.reused ? 0 : r.seconds);
    const m = this.options.measurement ?? 'loss';
    if (r.reused) this.logPluginReuse(`query gradients of measurement ${m}`, pluginOf(measurements, m));
    return r.gradients;
  }

  /** The scorer's inputs at `cp` (training samples `train`, whose gradients come from `trainGradients`). */
  private scoringInput(cp: Checkpoint, train: readonly TextSample[], trainGradients: () => Promise<GradientMatrix>, blocks?: () => Promise<ReturnType<typeof gradientBlockStream>>, testCp: Checkpoint = cp): ScoringInput {
    const test = this.task.queries.map((q) => q.sample);
    const corrections = this.task.queries.every((q) => q.correction !== null) ? this.task.queries.map((q) => q.correction as TextSample) : undefined;
    const checkpoint = testCp === cp ? cp.id : `${cp.id}×${testCp.id}`;
    return {
      checkpoint, train, test,
      trainGradients,
      ...(blocks ? { trainGradientBlocks: blocks } : {}),
      testGradients: () => this.queryGradients(testCp),
      trainRepresentations: async () => ({ ids: train.map((s) => s.id), dim: this.task.base.config.hiddenSize, rows: await (await this.model()).representations(cp, train), checkpoint: cp.id }),
      testRepresentations: async () => ({ ids: test.map((s) => s.id), dim: this.task.base.config.hiddenSize, rows: await (await this.model()).representations(cp, test), checkpoint: cp.id }),
      ...(corrections ? { testCorrections: corrections } : {}),
      ...(this.options.progress ? { progress: this.options.progress } : {}),
      ...(cp.kind === 'lora' ? {
        model: {
          lossesAfterSteps: async (updateOn: readonly TextSample[], evaluate: readonly TextSample[], o: ModelStepOptions) => (await this.model()).lossesAfterSteps(cp, updateOn, evaluate, o),
        },
      } : {}),
    };
  }

  /**
   * Identity of a scorer in cache keys: its id, description and options, and for a plugin loaded
   * from a path or a package its code (`pluginCode`; absent for the built-in plugins, whose keys stay as they were).
   */
  private scorerKey(s: Scorer): unknown {
    return { id: s.id, description: s.description, options: this.options.scorerOptions?.[s.id] ?? {}, ...pluginCodeKey(pluginOf(scorers, s.id)) };
  }

  /**
   * A scorer's matrix from the store, or computed and stored. Its compute seconds (measured, or read
   * from the manifest when reused) are kept for {@link matrixSeconds}.
   */
  private async stored(name: string, key: unknown, kind: string, compute: () => Promise<ScoreMatrix>): Promise<ScoreMatrix> {
    const r = await this.store.getOrCompute(name, key, async () => scoresToFiles(await compute()));
    this.note(name, r.reused, kind, r.reused ? 0 : r.seconds ?? 0);
    this.artifactSeconds.set(name, r.seconds);
    return scoresFromFiles(r.files, name);
  }

  /**
   * Compute seconds of a scorer's matrix at `at` (a checkpoint id, or `base×<final>` for the cross
   * reading): the sum over its stored artifacts (every block of a row-separable scorer), also when
   * they were reused (from their manifests); undefined when one of them has no recorded time or
   * the matrix was not scored in this run. Model-free scorers: their one matrix.
   */
  matrixSeconds(scorerId: string, at: string): number | undefined {
    const free = this.artifactSeconds.get(`scores/${scorerId}/model-free`);
    if (this.artifactSeconds.has(`scores/${scorerId}/model-free`)) return free;
    let total = 0;
    let found = false;
    for (const [name, seconds] of this.artifactSeconds) {
      if (name !== `scores/${scorerId}/${at}` && !name.startsWith(`scores/${scorerId}/${at}/block-`) && !name.startsWith(`summaries/${scorerId}/${at}/block-`) && !name.startsWith(`fits/${scorerId}/${at}/`)) continue;
      if (seconds === undefined) return undefined;
      total += seconds;
      found = true;
    }
    return found ? total : undefined;
  }

  /**
   * Where a scorer's matrix at `cp` is stored and what it depends on: one artifact per training
   * block for row-separable scorers (`block` given), else one for the whole training set.
   */
  private scoreArtifact(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint, block?: GradientBlockSpec, step: 'scores' | 'summaries' = 'scores'): { name: string; key: unknown } {
    const at = testCp === cp ? cp.id : `${cp.id}×${testCp.id}`;
    const test = hashOf(this.task.queries.map((q) => [q.sample, q.correction]));
    const common = { step, scorer: this.scorerKey(scorer), queries: this.queryKey(testCp), test };
    if (block) return { name: `${step}/${scorer.id}/${at}/block-${block.index}`, key: { ...common, train: block.key } };
    return { name: `scores/${scorer.id}/${at}`, key: { ...common, train: this.trainBlocks(cp).map((b) => b.key) } };
  }

  /** Where a model-free scorer's matrix is stored (the same at every checkpoint). */
  private modelFreeArtifact(scorer: Scorer): { name: string; key: unknown } {
    return {
      name: `scores/${scorer.id}/model-free`,
      key: { step: 'scores', scorer: this.scorerKey(scorer), train: hashOf(this.task.train.samples), test: hashOf(this.task.queries.map((q) => [q.sample, q.correction])) },
    };
  }

  /**
   * One scorer's scores at `cp` [nTrain × nQueries]; higher = more responsible. Model-free scorers
   * are scored once for every checkpoint; row-separable ones block by block (each block cached),
   * the rest over the whole training set. `testCp` (default `cp`): the checkpoint of the query
   * gradients (the second reading of the debias term takes training gradients at θ0 and query
   * gradients at θ').
   */
  async scores(scorerId: string, cp: Checkpoint, testCp: Checkpoint = cp): Promise<ScoreMatrix> {
    const scorer = await this.scorer(scorerId);
    const kind = `scores:${scorer.id}`;
    const train = this.task.train.samples;
    if (isModelFree(scorer)) {
      const a = this.modelFreeArtifact(scorer);
      return this.stored(a.name, a.key, kind, () => scorer.score(this.scoringInput(cp, train, () => Promise.reject(new DdaError(`scorer '${scorer.id}' declared no need for gradients`)))));
    }
    this.logGradientPath(scorer);
    if (scorer.rowSeparable) {
      // The queries' gradients first (a query that cannot be measured fails before the training pass).
      const specs = this.trainBlocks(cp);
      if (scorer.needs.includes('gradients') && !(await this.hasScoreBlocks(scorer.id, cp, specs, testCp))) await this.queryGradients(testCp);
      const parts: ScoreMatrix[] = [];
      for (const spec of specs) parts.push(await this.scoreBlock(scorerId, cp, spec, testCp));
      return concatRows(parts, scorer.id);
    }
    if (this.summarizes(scorer)) return this.scoresFromSummaries(scorer, cp, testCp);
    if (this.fitsStreamed(scorer, cp)) return this.scoresFromFits(scorer, cp, testCp);
    const stream = (): ReturnType<typeof gradientBlockStream> => this.trainGradientStream(cp);
    const a = this.scoreArtifact(scorer, cp, testCp);
    return this.stored(a.name, a.key, kind, () => scorer.score(this.scoringInput(cp, train, () => stream().readAll(), async () => stream(), testCp)));
  }

  /**
   * Says in the log, once per scorer, where its training gradients go: streamed (row-separable,
   * without {@link RunOptions.storeGradients}), stored on request, or stored because the scorer
   * needs every row at once. Scorers without gradients say nothing.
   */
  logGradientPath(scorer: Scorer): void {
    if (!scorer.needs.includes('gradients') || this.pathLogged.has(scorer.id)) return;
    this.pathLogged.add(scorer.id);
    const read = this.allCheckpoints.filter((c) => this.options.trainRows?.at(c.id) !== undefined).map((c) => c.id);
    if (read.length === this.allCheckpoints.length) {
      this.log(`${scorer.id}: training gradients read from the indexes block by block at every checkpoint (none computed or stored)${this.fitsStreamed(scorer, this.task.baseCheckpoint) ? `, once per pass (${(scorer.streamedFit as StreamedFit).fitPasses + 1} passes, fit then score)` : ''}`);
      return;
    }
    if (read.length > 0) this.log(`${scorer.id}: training gradients at ${read.join(', ')} read from the indexes (none computed or stored there); at the other checkpoints:`);
    const perCheckpoint = (): string => {
      const bytes = this.task.train.samples.length * this.gradientDim(this.task.baseCheckpoint) * 4;
      return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 0)} MB per checkpoint`;
    };
    const base = this.task.baseCheckpoint;
    if (this.summarizes(scorer)) {
      this.log(`${scorer.id}: training gradients streamed: each block reduced to its summary (${scorer.blockSummaries?.description}), stored per block, and the scores combined from the summaries after the last block; --store-gradients keeps the gradients (${perCheckpoint()})`);
    } else if (this.fitsStreamed(scorer, base)) {
      const sf = scorer.streamedFit as StreamedFit;
      const times = ['', 'once', 'twice', 'three times'][sf.fitPasses + 1] ?? `${sf.fitPasses + 1} times`;
      this.log(`${scorer.id}: training gradients streamed in ${sf.fitPasses + 1} passes, fit then score (as kronfluence's phases), so every training gradient is computed ${times} per checkpoint: ${sf.description}; then the score pass. Each block's partial statistic, ${sf.iterative ? 'the latest finalized fit' : 'each finalized fit'} and each block of scores is stored (a killed run resumes at its first unfinished block); --store-gradients computes the gradients once and keeps them (${perCheckpoint()})`);
    } else if (!this.storeGradients && this.fitRefusal(scorer, base) !== undefined) {
      this.log(`${scorer.id}: training gradients stored (${perCheckpoint()} in ${this.store.root}/gradients/): its streamed fit is refused here: ${this.fitRefusal(scorer, base)}`);
    } else if (this.storeGradients) {
      this.log(`${scorer.id}: training gradients stored (--store-gradients: ${perCheckpoint()} in ${this.store.root}/gradients/)${scorer.rowSeparable ? ', scored block by block' : ''}`);
    } else if (!scorer.rowSeparable) {
      this.log(`${scorer.id}: training gradients stored (${perCheckpoint()} in ${this.store.root}/gradients/): it needs every training row at once (not row-separable) and declares neither block summaries nor a streamed fit, so they cannot be streamed`);
    } else {
      this.log(`${scorer.id}: training gradients streamed: computed block by block (${this.blockRows} samples), each folded into its stored block of scores and dropped (row-separable); --store-gradients keeps them (${perCheckpoint()})`);
    }
  }

  /** Whether every one of `specs`' blocks of scores of a row-separable scorer is stored (so they need no gradients). */
  async hasScoreBlocks(scorerId: string, cp: Checkpoint, specs: readonly GradientBlockSpec[], testCp: Checkpoint = cp): Promise<boolean> {
    const scorer = await this.scorer(scorerId);
    return specs.every((spec) => {
      const a = this.scoreArtifact(scorer, cp, testCp, spec);
      return this.store.locate(a.name, a.key) !== undefined;
    });
  }

  /**
   * Where `scorer`'s training gradients go in this run: `streamed` (row-separable, or with block
   * summaries, and no {@link RunOptions.storeGradients}), `stored`, or `none` (it takes no gradients).
   */
  gradientPath(scorer: Scorer): 'streamed' | 'stored' | 'none' {
    if (!scorer.needs.includes('gradients')) return 'none';
    return (scorer.rowSeparable && !this.storeGradients) || this.summarizes(scorer) || this.fitsStreamed(scorer, this.task.baseCheckpoint) ? 'streamed' : 'stored';
  }

  /** Why `scorer`'s streamed fit refuses the sizes at `cp` (its {@link StreamedFit.refuse}), or undefined. */
  private fitRefusal(scorer: Scorer, cp: Checkpoint): string | undefined {
    return scorer.streamedFit?.refuse?.(this.gradientDim(cp), this.task.train.samples.length, this.task.queries.length);
  }

  /**
   * Whether `scorer`'s training gradients at `cp` are streamed in fit passes then a score pass (it
   * declares {@link StreamedFit}, neither row-separable nor with block summaries, the fit does not
   * refuse the sizes, and gradients are not to be stored).
   */
  private fitsStreamed(scorer: Scorer, cp: Checkpoint): boolean {
    return scorer.needs.includes('gradients') && !scorer.rowSeparable && !scorer.blockSummaries && scorer.streamedFit !== undefined && !this.storeGradients && this.fitRefusal(scorer, cp) === undefined;
  }

  /** Whether `scorer`'s training gradients are streamed into block summaries (it declares {@link BlockSummaries}, is not row-separable, and gradients are not to be stored). */
  private summarizes(scorer: Scorer): boolean {
    return scorer.needs.includes('gradients') && !scorer.rowSeparable && scorer.blockSummaries !== undefined && !this.storeGradients;
  }

  /**
   * A streaming scorer's matrix at `cp` ({@link BlockSummaries}): the queries' gradients first,
   * then every training block's summary (stored, or computed from the block's streamed gradients),
   * then the scores combined from them (stored). The seconds of the summaries count in
   * {@link matrixSeconds}, also when the matrix is reused.
   */
  private async scoresFromSummaries(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint): Promise<ScoreMatrix> {
    const bs = scorer.blockSummaries as BlockSummaries;
    const a = this.scoreArtifact(scorer, cp, testCp);
    const specs = this.trainBlocks(cp);
    if (this.store.locate(a.name, a.key)) {
      for (const spec of specs) {
        const s = this.scoreArtifact(scorer, cp, testCp, spec, 'summaries');
        this.artifactSeconds.set(s.name, this.store.locate(s.name, s.key)?.seconds);
      }
      return this.stored(a.name, a.key, `scores:${scorer.id}`, () => Promise.reject(new DdaError(`internal: ${a.name} vanished`)));
    }
    const test = await this.queryGradients(testCp);
    const parts: Float64Array[] = [];
    for (const spec of specs) parts.push(await this.summaryBlock(scorer.id, cp, spec, testCp));
    const checkpoint = testCp === cp ? cp.id : `${cp.id}×${testCp.id}`;
    return this.stored(a.name, a.key, `scores:${scorer.id}`, () => bs.combine(parts, this.task.train.samples.map((x) => x.id), test, checkpoint));
  }

  /**
   * One training block's summary for a scorer with {@link BlockSummaries} (stored, or computed from
   * the block's gradients, `given` or streamed, and stored as `summaries/<scorer>/<at>/block-<b>`).
   *
   * @throws DdaError for a scorer without block summaries, or `given` gradients of other samples.
   */
  async summaryBlock(scorerId: string, cp: Checkpoint, spec: GradientBlockSpec, testCp: Checkpoint = cp, given?: GradientMatrix): Promise<Float64Array> {
    const scorer = await this.scorer(scorerId);
    const bs = scorer.blockSummaries;
    if (!bs) throw new DdaError(`scorer '${scorer.id}' has no block summaries: it cannot be streamed block by block`);
    this.logGradientPath(scorer);
    checkGiven(given, spec, `${scorer.id} at ${cp.id}`);
    const a = this.scoreArtifact(scorer, cp, testCp, spec, 'summaries');
    const r = await this.store.getOrCompute(a.name, a.key, async () => {
      const g = given ?? await this.trainGradientBlock(cp, spec, this.storeGradients, this.pendingFor(scorer, cp, testCp, 'summaries'));
      const v = await bs.summarize(g, await this.queryGradients(testCp));
      return new Map([['summary.f64', new Uint8Array(v.buffer, v.byteOffset, v.byteLength)]]);
    });
    this.note(a.name, r.reused, `scores:${scorer.id}`, r.reused ? 0 : r.seconds ?? 0);
    this.artifactSeconds.set(a.name, r.seconds);
    const bytes = r.files.get('summary.f64');
    if (!bytes || bytes.byteLength % 8 !== 0) throw new DdaError(`${a.name}: the stored summary is malformed`, 'delete the artifact to recompute it');
    const out = new Float64Array(bytes.byteLength / 8);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }

  /**
   * Where a streamed-fit scorer's artifacts at `cp` are stored and what they depend on: the partial
   * statistic of one training block in fit pass `pass` (`block` given; stored only for a block
   * folded out of order, e.g. by a shard; from pass 1 on it depends on the whole set through the
   * previous fit; deleted once the pass's fit is stored), the finalized
   * fit of `pass` (no block), or one block of its scores (`pass` = 'score').
   */
  private fitArtifact(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint, pass: number | 'score', block?: GradientBlockSpec): { name: string; key: unknown } {
    const at = testCp === cp ? cp.id : `${cp.id}×${testCp.id}`;
    const test = hashOf(this.task.queries.map((q) => [q.sample, q.correction]));
    const common = { scorer: this.scorerKey(scorer), queries: this.queryKey(testCp), test };
    const all = this.trainBlocks(cp).map((b) => b.key);
    if (pass === 'score') return { name: `scores/${scorer.id}/${at}/block-${block?.index}`, key: { ...common, step: 'fit-scores', train: block?.key, fit: all } };
    if (block) return { name: `fits/${scorer.id}/${at}/pass-${pass}/block-${block.index}`, key: { ...common, step: 'fit-partial', pass, train: block.key, ...(pass > 0 ? { fitOf: all } : {}) } };
    return { name: `fits/${scorer.id}/${at}/pass-${pass}`, key: { ...common, step: 'fit', pass, train: all } };
  }

  /** The two slots of the running sum of fit pass `pass` (written alternately, so a kill during a write leaves the other). */
  private sumSlots(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint, pass: number): { name: string; key: unknown }[] {
    const f = this.fitArtifact(scorer, cp, testCp, pass);
    return (['a', 'b'] as const).map((slot) => ({ name: `${f.name}/sum-${slot}`, key: { step: 'fit-sum', fit: f.key, slot } }));
  }

  /**
   * The running sum of fit pass `pass`: the partials of training blocks 0 .. count − 1 summed, in
   * memory or read back from the latest of its two stored slots (file: [count, ...sum]); count 0
   * and no sum when none is stored. `seconds`: the compute time of the blocks folded into it.
   */
  private runningSum(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint, pass: number): RunningSum {
    const slots = this.sumSlots(scorer, cp, testCp, pass);
    const memo = `${slots[0]?.name} ${hashOf(slots[0]?.key)}`;
    let rs = this.runningSums.get(memo);
    if (!rs) {
      rs = { memo, count: 0, sum: null, seconds: 0, slot: -1 };
      slots.forEach((x, slot) => {
        const v = this.loadVector(x, 'sum.f64');
        if (v && v.length >= 1 && (v[0] as number) > (rs as RunningSum).count) rs = { memo, count: v[0] as number, sum: v.slice(1), seconds: this.store.locate(x.name, x.key)?.seconds ?? 0, slot };
      });
      this.runningSums.set(memo, rs);
    }
    return rs;
  }

  /** Adds block `count`'s partial into the running sum and stores it in the slot not holding the latest. */
  private extendRunningSum(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint, pass: number, rs: RunningSum, partial: Float64Array, seconds: number): void {
    rs.sum = addPartial(rs.sum, partial, `${scorer.id} at ${cp.id}, fit pass ${pass + 1}`);
    rs.count += 1;
    rs.seconds += seconds;
    rs.slot = rs.slot === 0 ? 1 : 0;
    const x = this.sumSlots(scorer, cp, testCp, pass)[rs.slot] as { name: string; key: unknown };
    const file = new Float64Array(rs.sum.length + 1);
    file[0] = rs.count;
    file.set(rs.sum, 1);
    this.store.save(x.name, x.key, new Map([['sum.f64', new Uint8Array(file.buffer)]]), rs.seconds);
  }

  /** A stored vector (`file` of the artifact), or undefined when the artifact is not stored. @throws DdaError when it is malformed. */
  private loadVector(a: { name: string; key: unknown }, file: string): Float64Array | undefined {
    const bytes = this.store.load(a.name, a.key)?.get(file);
    if (!bytes) return undefined;
    if (bytes.byteLength % 8 !== 0) throw new DdaError(`${a.name}: the stored ${file} is malformed`, 'delete the artifact to recompute it');
    const out = new Float64Array(bytes.byteLength / 8);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }

  /**
   * The stage of a streamed-fit scorer at `cp`: the first fit pass not finalized, with the fit of
   * the pass before (null for pass 0), or `pass` = fitPasses with the last fit once every pass is
   * finalized. A pass whose blocks' partials are all stored is finalized here (summed block by
   * block, finalized, stored).
   */
  private async fitStage(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint): Promise<{ pass: number; previous: Float64Array | null }> {
    const sf = scorer.streamedFit as StreamedFit;
    const specs = this.trainBlocks(cp);
    let previous: Float64Array | null = null;
    // An iterative fit keeps only its latest fit: start there (the passes before it are done).
    for (let pass = sf.iterative ? this.latestFitPass(scorer, cp, testCp) : 0; pass < sf.fitPasses; pass++) {
      const a = this.fitArtifact(scorer, cp, testCp, pass);
      const memo = `${a.name} ${hashOf(a.key)}`;
      let fit = this.fitMemo.get(memo);
      if (!fit) {
        const hit = this.store.locate(a.name, a.key);
        if (!hit) {
          // Blocks 0 .. count − 1 are in the running sum; every later one needs its own stored partial (from a shard).
          const rs = this.runningSum(scorer, cp, testCp, pass);
          const partials = specs.filter((spec) => spec.index >= rs.count).map((spec) => this.fitArtifact(scorer, cp, testCp, pass, spec));
          if (!partials.every((x) => this.hasArtifact(x))) return { pass, previous };
          await this.finalizeFit(scorer, cp, testCp, pass, previous, a, rs, partials);
        }
        this.note(a.name, hit !== undefined, `scores:${scorer.id}`, 0);
        this.artifactSeconds.set(a.name, this.store.locate(a.name, a.key)?.seconds);
        fit = this.loadVector(a, 'fit.f64');
        if (!fit) throw new DdaError(`${a.name}: the stored fit is missing`, 'delete the artifact to recompute it');
        this.fitMemo.set(memo, fit);
        for (const old of this.fitMemo.keys()) if (this.fitMemo.size > 4) this.fitMemo.delete(old);
      }
      if (sf.iterative) this.latestFits.set(this.fitSeries(scorer, cp, testCp), pass);
      previous = fit;
    }
    return { pass: sf.fitPasses, previous };
  }

  /** The key of `scorer`'s fit passes at `cp` (× queries at `testCp`) in {@link latestFits}. */
  private fitSeries(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint): string {
    const a = this.fitArtifact(scorer, cp, testCp, 0);
    return `${a.name} ${hashOf(a.key)}`;
  }

  /**
   * The pass of an `iterative` streamed fit's latest stored fit (0 when none is stored, pass 0 then
   * being the first to fit): the one remembered in this run while it is still stored, else the
   * highest stored one (read once, from the last pass down).
   */
  private latestFitPass(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint): number {
    const known = this.latestFits.get(this.fitSeries(scorer, cp, testCp));
    const stored = (pass: number): boolean => {
      const a = this.fitArtifact(scorer, cp, testCp, pass);
      return this.store.locate(a.name, a.key) !== undefined;
    };
    if (known !== undefined && stored(known)) return known;
    for (let pass = (scorer.streamedFit as StreamedFit).fitPasses - 1; pass > 0; pass--) if (stored(pass)) return pass;
    return 0;
  }

  /**
   * Finalizes fit pass `pass` from its running sum `rs` and the stored `partials` of the blocks
   * after it (summed one at a time) and stores the fit `a`, with the seconds of the whole pass as
   * its compute time; then deletes the running sum and the partials, which nothing needs once the
   * fit is stored.
   */
  private async finalizeFit(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint, pass: number, previous: Float64Array | null, a: { name: string; key: unknown }, rs: RunningSum, partials: readonly { name: string; key: unknown }[]): Promise<void> {
    const sf = scorer.streamedFit as StreamedFit;
    const t0 = performance.now();
    // The partials are added into the running sum in place: it is read again from its slot if this fails.
    this.runningSums.delete(rs.memo);
    let sum: Float64Array | null = rs.sum;
    let seconds = rs.seconds;
    for (const x of partials) {
      seconds += this.store.locate(x.name, x.key)?.seconds ?? 0;
      const part = this.loadVector(x, 'partial.f64');
      if (!part) throw new DdaError(`${x.name}: the partial statistic vanished before its pass was finalized`, 'run again: the missing block is recomputed');
      sum = addPartial(sum, part, `${scorer.id} at ${cp.id}, fit pass ${pass + 1}`);
    }
    const v = await sf.finalize(sum ?? new Float64Array(0), this.task.train.samples.length, await this.queryGradients(testCp), pass, previous);
    const finalizeSeconds = (performance.now() - t0) / 1000;
    // An iterative fit replaces the fit before it, whose seconds it carries.
    const before = sf.iterative && pass > 0 ? [this.fitArtifact(scorer, cp, testCp, pass - 1)] : [];
    for (const x of before) seconds += this.store.locate(x.name, x.key)?.seconds ?? 0;
    this.store.save(a.name, a.key, new Map([['fit.f64', new Uint8Array(v.buffer, v.byteOffset, v.byteLength)]]), seconds + finalizeSeconds);
    this.seconds[`scores:${scorer.id}`] = (this.seconds[`scores:${scorer.id}`] ?? 0) + finalizeSeconds;
    for (const x of [...partials, ...this.sumSlots(scorer, cp, testCp, pass), ...before]) {
      this.store.remove(x.name, x.key);
      this.knownStored.delete(`${x.name} ${hashOf(x.key)}`);
    }
    for (const x of before) this.artifactSeconds.delete(x.name);
  }

  /** Whether artifact `a` is stored (checked once per run, then remembered). */
  private hasArtifact(a: { name: string; key: unknown }): boolean {
    const k = `${a.name} ${hashOf(a.key)}`;
    if (this.knownStored.has(k)) return true;
    if (this.store.locate(a.name, a.key) === undefined) return false;
    this.knownStored.add(k);
    return true;
  }

  /** Whether block `spec`'s work of stage `pass` is done: in the running sum or a stored partial (fit passes), or its stored block of scores. */
  private fitBlockDone(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint, pass: number, spec: GradientBlockSpec): boolean {
    const x = this.fitBlockArtifact(scorer, cp, testCp, pass, spec);
    if (pass === (scorer.streamedFit as StreamedFit).fitPasses) return this.store.locate(x.name, x.key) !== undefined;
    return spec.index < this.runningSum(scorer, cp, testCp, pass).count || this.hasArtifact(x);
  }

  /** The stored partials and blocks of scores of a streamed-fit scorer's stage `pass` at `spec` (see {@link fitStage}). */
  private fitBlockArtifact(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint, pass: number, spec: GradientBlockSpec): { name: string; key: unknown } {
    return this.fitArtifact(scorer, cp, testCp, pass < (scorer.streamedFit as StreamedFit).fitPasses ? pass : 'score', spec);
  }

  /**
   * One training block's work of a streamed-fit scorer at its current stage ({@link fitStage}):
   * its partial statistic of the fit pass under way (added into the pass's running sum when it is
   * the next block in order, else stored as `fits/<scorer>/<at>/pass-<p>/block-<b>`), or its block
   * of scores against the last fit (`scores/<scorer>/<at>/block-<b>`), from
   * the block's gradients, `given` or streamed. Returns the block of scores in the score stage.
   *
   * @throws DdaError for a scorer without a streamed fit, or `given` gradients of other samples.
   */
  async fitBlock(scorerId: string, cp: Checkpoint, spec: GradientBlockSpec, testCp: Checkpoint = cp, given?: GradientMatrix): Promise<ScoreMatrix | undefined> {
    const scorer = await this.scorer(scorerId);
    const sf = scorer.streamedFit;
    if (!sf) throw new DdaError(`scorer '${scorer.id}' has no streamed fit: it cannot be scored in passes over streamed gradients`);
    this.logGradientPath(scorer);
    checkGiven(given, spec, `${scorer.id} at ${cp.id}`);
    const stage = await this.fitStage(scorer, cp, testCp);
    const a = this.fitBlockArtifact(scorer, cp, testCp, stage.pass, spec);
    const what = stage.pass < sf.fitPasses ? `fit pass ${stage.pass + 1} of ${sf.fitPasses}` : 'the score pass';
    const pending = { key: `for ${scorer.id}${testCp === cp ? '' : ` × queries at ${testCp.id}`}, ${what}`, todo: (b: GradientBlockSpec): boolean => !this.fitBlockDone(scorer, cp, testCp, stage.pass, b) };
    const gradients = async (): Promise<GradientMatrix> => given ?? this.trainGradientBlock(cp, spec, this.storeGradients, pending);
    const test = await this.queryGradients(testCp);
    if (stage.pass === sf.fitPasses) {
      const checkpoint = testCp === cp ? cp.id : `${cp.id}×${testCp.id}`;
      return this.stored(a.name, a.key, `scores:${scorer.id}`, async () => sf.scoreBlock(stage.previous as Float64Array, await gradients(), test, checkpoint));
    }
    // The next block in order is added into the pass's running sum (stored in place: the disk holds
    // one statistic, not one per block); a block out of order (a shard's) gets its own stored partial.
    // Their seconds count in the pass's fit (see finalizeFit), not on their own.
    const rs = this.runningSum(scorer, cp, testCp, stage.pass);
    if (spec.index < rs.count || this.hasArtifact(a)) {
      this.note(a.name, true, `scores:${scorer.id}`, 0);
      return undefined;
    }
    const t0 = performance.now();
    const v = await sf.fold(await gradients(), test, stage.pass, stage.previous);
    const seconds = (performance.now() - t0) / 1000;
    if (spec.index === rs.count) this.extendRunningSum(scorer, cp, testCp, stage.pass, rs, v, seconds);
    else {
      this.store.save(a.name, a.key, new Map([['partial.f64', new Uint8Array(v.buffer, v.byteOffset, v.byteLength)]]), seconds);
      this.knownStored.add(`${a.name} ${hashOf(a.key)}`);
    }
    this.note(a.name, false, `scores:${scorer.id}`, seconds);
    return undefined;
  }

  /**
   * A streamed-fit scorer's matrix at `cp` ({@link StreamedFit}): the queries' gradients first,
   * then each fit pass over the training blocks (stored partials reused) and its finalized fit,
   * then the score pass, block by block; the blocks' rows stacked are stored as the matrix.
   */
  private async scoresFromFits(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint): Promise<ScoreMatrix> {
    const sf = scorer.streamedFit as StreamedFit;
    const a = this.scoreArtifact(scorer, cp, testCp);
    const specs = this.trainBlocks(cp);
    if (this.store.locate(a.name, a.key)) {
      // The seconds of its fit passes and blocks count in matrixSeconds, also when the matrix is reused.
      // An iterative fit's last fit carries the seconds of the passes before it, deleted.
      const fits = Array.from({ length: sf.fitPasses }, (_, p) => this.fitArtifact(scorer, cp, testCp, p)).slice(sf.iterative ? -1 : 0);
      for (const x of [...fits, ...specs.map((spec) => this.fitArtifact(scorer, cp, testCp, 'score', spec))]) this.artifactSeconds.set(x.name, this.store.locate(x.name, x.key)?.seconds);
      return this.stored(a.name, a.key, `scores:${scorer.id}`, () => Promise.reject(new DdaError(`internal: ${a.name} vanished`)));
    }
    await this.queryGradients(testCp);
    for (let round = 0; (await this.fitStage(scorer, cp, testCp)).pass < sf.fitPasses; round++) {
      if (round >= sf.fitPasses) throw new DdaError(`internal: ${scorer.id} at ${cp.id} did not finish its ${sf.fitPasses} fit passes`);
      for (const spec of specs) await this.fitBlock(scorer.id, cp, spec, testCp);
    }
    const parts: ScoreMatrix[] = [];
    for (const spec of specs) parts.push(await this.fitBlock(scorer.id, cp, spec, testCp) as ScoreMatrix);
    return this.stored(a.name, a.key, `scores:${scorer.id}`, async () => stackScoreBlocks(parts, scorer.id));
  }

  /** The blocks still to compute for `scorer` at `cp` (those without a stored block of `step`), for the progress bar of its gradient pass. */
  private pendingFor(scorer: Scorer, cp: Checkpoint, testCp: Checkpoint, step: 'scores' | 'summaries'): { key: string; todo: (b: GradientBlockSpec) => boolean } {
    return {
      key: `for ${scorer.id}${testCp === cp ? '' : ` × queries at ${testCp.id}`}`,
      todo: (b) => {
        const x = this.scoreArtifact(scorer, cp, testCp, b, step);
        return this.store.locate(x.name, x.key) === undefined;
      },
    };
  }

  /**
   * Whether a block of `scorer` (its scores, or its summary, or for a streamed fit the block's
   * work of the current stage) is stored, so it needs no gradients.
   */
  async hasBlock(scorerId: string, cp: Checkpoint, spec: GradientBlockSpec, testCp: Checkpoint = cp): Promise<boolean> {
    const scorer = await this.scorer(scorerId);
    if (scorer.rowSeparable) return this.hasScoreBlocks(scorerId, cp, [spec], testCp);
    if (this.fitsStreamed(scorer, cp)) {
      const whole = this.scoreArtifact(scorer, cp, testCp);
      if (this.store.locate(whole.name, whole.key)) return true;
      return this.fitBlockDone(scorer, cp, testCp, (await this.fitStage(scorer, cp, testCp)).pass, spec);
    }
    const a = this.scoreArtifact(scorer, cp, testCp, spec, 'summaries');
    return this.store.locate(a.name, a.key) !== undefined;
  }

  /**
   * A block of `scorer` from the block's gradients `g` (streamed when not given): its scores
   * (row-separable), its summary ({@link BlockSummaries}), or its work of the current stage of a
   * streamed fit ({@link fitBlock}).
   */
  async block(scorerId: string, cp: Checkpoint, spec: GradientBlockSpec, testCp: Checkpoint, g?: GradientMatrix): Promise<void> {
    const scorer = await this.scorer(scorerId);
    if (scorer.rowSeparable) await this.scoreBlock(scorerId, cp, spec, testCp, g);
    else if (this.fitsStreamed(scorer, cp)) await this.fitBlock(scorerId, cp, spec, testCp, g);
    else await this.summaryBlock(scorerId, cp, spec, testCp, g);
  }

  /** How many passes over the training gradients `scorer` takes at `cp`: fit passes + 1 for a streamed fit, else 1. */
  async gradientPasses(scorerId: string, cp: Checkpoint): Promise<number> {
    const scorer = await this.scorer(scorerId);
    return this.fitsStreamed(scorer, cp) ? (scorer.streamedFit as StreamedFit).fitPasses + 1 : 1;
  }

  /**
   * The scores of one block of training samples [block rows × nQueries] for a row-separable
   * scorer (stored, or computed from the block's gradients and stored). The block's training
   * gradients are `given`, or read from the store, or computed (and stored only with
   * {@link RunOptions.storeGradients}).
   *
   * @throws DdaError for a scorer that is not row-separable, or `given` gradients of other samples.
   */
  async scoreBlock(scorerId: string, cp: Checkpoint, spec: GradientBlockSpec, testCp: Checkpoint = cp, given?: GradientMatrix): Promise<ScoreMatrix> {
    const scorer = await this.scorer(scorerId);
    if (!scorer.rowSeparable) throw new DdaError(`scorer '${scorer.id}' is not row-separable: it scores the whole training set at once`);
    this.logGradientPath(scorer);
    checkGiven(given, spec, `${scorer.id} at ${cp.id}`);
    const a = this.scoreArtifact(scorer, cp, testCp, spec);
    const block = this.task.train.samples.slice(spec.start, spec.end);
    const gradients = async (): Promise<GradientMatrix> => given ?? this.trainGradientBlock(cp, spec, this.storeGradients, this.pendingFor(scorer, cp, testCp, 'scores'));
    return this.stored(a.name, a.key, `scores:${scorer.id}`, () => scorer.score(this.scoringInput(cp, block, gradients, undefined, testCp)));
  }

  /** One scorer at θ0 and every checkpoint (each cached). */
  async scoreCheckpoints(scorerId: string): Promise<CheckpointScores> {
    const scorer = await this.scorer(scorerId);
    const base = await this.scores(scorerId, this.task.baseCheckpoint);
    const epochs: ScoreMatrix[] = [];
    for (const cp of this.task.checkpoints) epochs.push(await this.scores(scorerId, cp));
    return { scorer, base, epochs };
  }

  /**
   * The second reading of the paper's debias term (METHOD.md): the scorer over training gradients
   * at θ0 and query gradients at the final checkpoint θ'. Gradient scorers only.
   *
   * @throws DdaError for a scorer that does not use gradients.
   */
  async crossBaseScores(scorerId: string): Promise<ScoreMatrix> {
    const scorer = await this.scorer(scorerId);
    if (!scorer.needs.includes('gradients')) throw new DdaError(`the cross-checkpoint debias term needs a gradient scorer; '${scorerId}' is not one`, 'use grad-dot, grad-cos, an influence function or trak');
    return this.scores(scorerId, this.task.baseCheckpoint, this.task.checkpoints[this.task.checkpoints.length - 1] as Checkpoint);
  }

  /** Whether every score matrix of `scorerId` at θ0 and every checkpoint is stored (so scoring needs no gradients). */
  async hasStoredScores(scorerId: string): Promise<boolean> {
    const scorer = await this.scorer(scorerId);
    if (isModelFree(scorer)) return true;
    const has = (a: { name: string; key: unknown }): boolean => this.store.locate(a.name, a.key) !== undefined;
    for (const cp of this.allCheckpoints) if (!(scorer.rowSeparable ? await this.hasScoreBlocks(scorerId, cp, this.trainBlocks(cp)) : has(this.scoreArtifact(scorer, cp, cp)))) return false;
    return true;
  }

  /**
   * Releases the model's engine memory (its decoders and their sessions; a shared model's too). The
   * run stays usable: the model opens its decoders again on next use.
   */
  async dispose(): Promise<void> {
    if (this.modelPromise) await (await this.modelPromise).dispose();
    this.modelPromise = null;
  }
}

/** The plugin that registered `id` in `registry`, if it is registered there and came from one. */
function pluginOf(registry: { has(id: string): boolean; entry(id: string): { readonly plugin?: string | undefined } }, id: string): string | undefined {
  return registry.has(id) ? registry.entry(id).plugin : undefined;
}

/** The running sum of a fit pass: the partials of blocks 0 .. count − 1 summed, and the slot (0, 1; −1: none) holding it on disk. */
interface RunningSum {
  readonly memo: string;
  count: number;
  sum: Float64Array | null;
  seconds: number;
  slot: number;
}

/** @throws DdaError when gradients `given` for a block are of other samples than the block's. */
function checkGiven(given: GradientMatrix | undefined, spec: GradientBlockSpec, what: string): void {
  if (given && (given.ids.length !== spec.ids.length || given.ids.some((id, i) => id !== spec.ids[i]))) throw new DdaError(`${what}: gradients given for block ${spec.index} are of other samples`);
}

/** One scorer of {@link scoreBlocksTogether} (row-separable, or with block summaries or a streamed fit): scored by `run` at its checkpoint, against the query gradients at `testCp` (a checkpoint id; default the same checkpoint). */
export interface BlockJob {
  readonly run: AttributionRun;
  readonly scorer: string;
  readonly testCp?: string;
}

/**
 * One pass over the training blocks at checkpoint `cpId` for several scorers, row-separable (their
 * blocks of scores) or with block summaries (their summaries; the scores are combined when
 * {@link AttributionRun.scores} is asked for them), or more passes when a scorer has a streamed fit
 * (one per fit pass and the score pass, each fit finalized between them), also of runs with other measurements over the
 * same task and store (the benchmarks): the queries' gradients first, then each block that some
 * job lacks has its training gradients computed (or read from the store) once, and every job
 * lacking it scores or summarizes it; the gradients are then dropped unless the first run stores
 * gradients. Blocks every job has are skipped, so a killed pass resumes at its first unfinished block.
 *
 * @throws DdaError for a scorer that is neither, or runs whose models at `cpId` differ (their
 *   gradients would not be the same).
 */
export async function scoreBlocksTogether(jobs: readonly BlockJob[], cpId: string): Promise<void> {
  const first = jobs[0];
  if (!first) return;
  const cp = first.run.checkpoint(cpId);
  const key = hashOf(first.run.modelKey(cp));
  for (const j of jobs) {
    const s = await j.run.scorer(j.scorer);
    if (!s.rowSeparable && !s.blockSummaries && j.run.gradientPath(s) !== 'streamed') throw new DdaError(`scorer '${j.scorer}' is neither row-separable nor has block summaries or a streamed fit: it cannot be scored in passes over streamed gradient blocks`);
    if (hashOf(j.run.modelKey(j.run.checkpoint(cpId))) !== key) throw new DdaError(`internal: the runs of one gradient pass have different models at ${cpId}`);
  }
  const cpOf = (j: BlockJob): Checkpoint => j.run.checkpoint(cpId);
  const testOf = (j: BlockJob): Checkpoint => j.run.checkpoint(j.testCp ?? cpId);
  const lacking = async (spec: GradientBlockSpec): Promise<BlockJob[]> => {
    const out: BlockJob[] = [];
    for (const j of jobs) if (!(await j.run.hasBlock(j.scorer, cpOf(j), spec, testOf(j)))) out.push(j);
    return out;
  };
  const specs = first.run.trainBlocks(cp);
  // Streamed fits take several passes: each round does every job's current stage, until none lacks a block.
  let rounds = 1;
  for (const j of jobs) rounds = Math.max(rounds, await j.run.gradientPasses(j.scorer, cpOf(j)));
  for (let round = 0; ; round++) {
    const todo = new Set<number>();
    for (const spec of specs) if ((await lacking(spec)).length > 0) todo.add(spec.index);
    if (todo.size === 0) return;
    if (round >= rounds) throw new DdaError(`internal: the gradient passes at ${cpId} did not finish in ${rounds} rounds`);
    // The queries' gradients first (a query that cannot be measured fails before the training pass).
    for (const j of jobs) await j.run.queryGradients(testOf(j));
    const names = [...new Set(jobs.map((j) => `${j.scorer}${j.testCp && j.testCp !== cpId ? ` × queries at ${j.testCp}` : ''}`))].join(', ');
    const pending = { key: `for ${names}${rounds > 1 ? `, gradient pass ${round + 1} of up to ${rounds}` : ''}`, todo: (b: GradientBlockSpec): boolean => todo.has(b.index) };
    for (const spec of specs) {
      const need = await lacking(spec);
      if (need.length === 0) continue;
      const g = await first.run.trainGradientBlock(cp, spec, first.run.storeGradients, pending);
      for (const j of need) await j.run.block(j.scorer, cpOf(j), spec, testOf(j), g);
    }
  }
}

/** Rows [spec.start, spec.end) of `given` as a block's gradient matrix (one 1-D tensor of k_m entries per projected module, as projected rows). */
function rowsMatrix(given: TrainRowsAt, spec: GradientBlockSpec, checkpoint: string): GradientMatrix {
  const rows = given.read(spec.start, spec.end);
  const dim = given.modules.reduce((a, m) => a + m.dims, 0);
  if (rows.length !== spec.end - spec.start || rows.some((r) => r.length !== dim)) throw new DdaError(`${given.where}: rows ${spec.start} to ${spec.end - 1} are not ${spec.end - spec.start} rows of ${dim} entries`, 'build the index again');
  return {
    ids: spec.ids, checkpoint, dim, rows,
    parameterNames: given.modules.map((m) => m.name), parameterSizes: given.modules.map((m) => m.dims),
  };
}

/** Row blocks of one scorer stacked into one matrix (same test columns and provenance). */
function concatRows(parts: readonly ScoreMatrix[], scorer: string): ScoreMatrix {
  return stackScoreBlocks(parts, scorer, parts.length > 1 ? ` (training set scored in ${parts.length} blocks)` : '');
}

/**
 * Σ_k w_k · row_k, accumulated in float64 and stored as float32 (the gradient store's type).
 *
 * @param what - The query and checkpoint, named in the error.
 * @throws DdaError when an entry of the sum is finite in float64 but beyond float32's range
 *   (|x| > 3.4e38): the measurement's gradient is not representable, and is refused rather than stored as ±Infinity.
 */
export function combineGradientTerms(terms: readonly { readonly weight: number; readonly row: Float32Array }[], dim: number, what: string): Float32Array {
  const acc = new Float64Array(dim);
  for (const t of terms) for (let d = 0; d < dim; d++) acc[d] = (acc[d] as number) + t.weight * (t.row[d] as number);
  const out = Float32Array.from(acc);
  for (let d = 0; d < dim; d++) {
    if (!Number.isFinite(out[d] as number)) {
      throw new DdaError(
        `${what}: the measurement's gradient (a weighted sum of ${terms.length} per-example gradients) has entry ${d} = ${acc[d]}, not representable in float32`,
        'the per-example gradients are near float32\'s largest value (3.4e38): the checkpoint is likely diverged; check its training loss, or use the loss measurement',
      );
    }
  }
  return out;
}

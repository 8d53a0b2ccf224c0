/**
 * A compressed gradient index: every training sample's per-example gradient at ONE checkpoint,
 * projected to k dimensions by a seeded random projection per differentiated tensor (each LoRA
 * matrix, lora_A and lora_B of every module; every weight of a full checkpoint), stored once as
 * float16 rows of one flat file, and queried many times by inner product (grad-dot) or cosine
 * (grad-cos) with new queries' projected test-measurement gradients. This module is the index: its
 * format, build (resumable, locked per folder), header and rows (checked against their hash:
 * index-integrity.ts); the queries are index-query.ts's, the shards gradient-index-shards.ts's.
 *
 * On disk, in one folder:
 * - `gradients.f16`: float16, little-endian, row-major [n × k], row i = training sample
 *   `trainIds[i]` (numpy: `np.memmap("gradients.f16", dtype=np.float16, mode="r", shape=(n, k))`);
 * - `index.json` ({@link IndexHeader}), written last: count, k, the dimensions of each tensor,
 *   dtype, projection kind and seed, checkpoint, model, data and encoding hashes, measurement, and
 *   (informational) the build's checks of the training data that `dda index query` compares the
 *   queries with ({@link IndexTrainingData});
 * - `progress.json` while a build runs: the rows finished. A killed build resumes at its first
 *   unfinished block (rows past the recorded count are cut off).
 *
 * The projection is regenerated from its seed, never stored. Sources: bergson's on-disk index (a
 * flat memory-mapped gradient file with a JSON beside it), TRAK's (Park et al. 2023) and LoGra's
 * (Choe et al. 2024) random projections of per-example gradients, Johnson–Lindenstrauss for why
 * inner products survive: for a projection P with E[PᵀP] = I, ⟨Pg, Ph⟩ is an unbiased estimate of
 * ⟨g, h⟩ whose standard deviation for Rademacher entries is at most √(2/k)·‖g‖‖h‖ per tensor.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DdaError, measurements, trackProgress, type ProgressSink, type TextSample } from '@dda/core';
import { scanTrainingData, type FieldMap, type PromptFormat, type TrainingRecord } from '@dda/data';
import { encodeSample, float32ToF16Bits, widenToFloat32, type EncodedExample, type OverlongPolicy } from '@dda/model';
import { ArrayHash, hashOf, writeFileAtomic } from './artifacts.js';
import { checkBuildLock, lockBuildFolder } from './build-lock.js';
import { trainingSetSizeWarning, type Checkpoint } from './checkpoints.js';
import { CheckpointModel, resolveGradientEngine, type GradientEngine, type GradientLayout, type Log, type ModelTask } from './engine.js';
import { hashData } from './hashing.js';
import { VERIFIED_FILE, checkRowsUnchanged, markVerified, recordCheckedState, sha256OfFile, verifyIndexRows } from './index-integrity.js';
import { readRowBytes } from './index-scan.js';
import { checkOutFolder } from './outputs.js';
import { ensurePlugins } from './plugins.js';
import { DEFAULT_INDEX_DIM, GradientProjector, PROJECTION_KINDS, type ModuleProjection, type ProjectionKind, type ProjectionSpec } from './projection.js';
import { type BaseModel, type LossOn, type ModelFiles, type RenderedSample, type TaskFiles, type TrainingShape, TrainingChecks, baseCheckpointOf, loadModelFiles, renderedSample, trainingDataLine, trainingSample } from './task.js';
import { type MeasuredTrainingLoss, type TrainingLossCheck, compareTrainingLoss, measureSampledTrainingLoss, sampleIndices } from './training-loss.js';

/** Files of an index folder. */
export const INDEX_FILES = { rows: 'gradients.f16', header: 'index.json', progress: 'progress.json', verified: VERIFIED_FILE } as const;
/** Format tag of `index.json`. */
export const INDEX_FORMAT = 'dda-gradient-index-v1';
/** Default training samples per block (the unit of writing and resuming). */
export const DEFAULT_INDEX_BLOCK_ROWS = 128;
/** Largest finite float16 value. */
const F16_MAX = 65504;
/** At most this many bytes of float32 gradient rows are projected in one batch while building (one GEMM per tensor per batch). */
const PROJECT_BATCH_BYTES = 512 * 2 ** 20;
/** Smallest normal float16 value (below it, values are subnormal: fewer significant bits). */
const F16_MIN_NORMAL = 2 ** -14;

/** What the index is over: the checkpoint, the model and data content hashes, and the encoding. */
export interface IndexIdentity {
  readonly format: typeof INDEX_FORMAT;
  /** The checkpoint of every row: its id (`base` = θ0), kind, folder and content hashes. */
  readonly checkpoint: { readonly id: string; readonly kind: 'lora' | 'full'; readonly dir: string; readonly hash: Readonly<Record<string, string>> };
  /** The base model folder and its file hashes (config, tokenizer, weights). */
  readonly model: { readonly dir: string; readonly hash: Readonly<Record<string, string>> };
  /** The training data: its path and fields as given, the hash of its bytes and of its rendered samples. */
  readonly train: { readonly path: string; readonly fields: FieldMap | null; readonly bytes: string; readonly samples: string };
  /**
   * How samples are encoded; queries are encoded the same way. `lossOn` (absent: `assistant`),
   * `chatDate` and `tokenizer` (absent: the defaults, the base folder's tokenizer) as `dda attribute`'s
   * `--loss-on`, `--chat-date` and `--tokenizer`.
   */
  readonly encoding: {
    readonly maxLength: number; readonly overlong: OverlongPolicy; readonly promptFormat: PromptFormat;
    readonly lossOn?: LossOn; readonly chatDate?: string; readonly tokenizer?: string;
  };
  /** The checkpoint folders given to the build (to resolve `base` and the checkpoint id again at query time). */
  readonly checkpoints: readonly string[];
  readonly projection: ProjectionSpec & { readonly split: 'proportional' };
  /**
   * Each row is the gradient of the training sample's mean response-token loss (nats/token); the
   * queries' rows are gradients of this test measurement f (a query asking for another is refused).
   */
  readonly measurement: string;
  readonly engine: GradientEngine;
  /** Training ids in row order. */
  readonly trainIds: readonly string[];
}

/** `index.json`. */
export interface IndexHeader extends IndexIdentity {
  readonly count: number;
  readonly dim: number;
  readonly dtype: 'float16';
  readonly modules: readonly ModuleProjection[];
  /** How to read the rows. */
  readonly read: string;
  readonly sign: string;
  /** float16 rounding of the rows: the largest |entry| and how many nonzero entries became subnormal or zero. */
  readonly float16: Float16Stats;
  /** Bytes of one row (k × 2) and the size of a full float32 gradient row (d × 4) it replaces. */
  readonly bytesPerRow: { readonly index: number; readonly fullGradient: number };
  /** The build's checks of the training data (absent in indexes of earlier versions); informational, not part of what makes two builds one index. */
  readonly trainingData?: IndexTrainingData;
  /** SHA-256 (hex) of `gradients.f16` as the build wrote it, checked before any row is read (index-integrity.ts; absent in indexes of earlier versions). */
  readonly rowsSha256?: string;
}

/**
 * What `dda index build` measured of the training data, as `dda attribute` does, recorded for
 * `dda index query` (which may run without the training data at hand): how the samples were
 * rendered (the queries' prompt format is compared with it), the final checkpoint's mean
 * response-token loss on a seeded sample of them (the queries' loss is compared with it) and its
 * comparison with the training loss trainer_state.json logged.
 */
export interface IndexTrainingData {
  readonly rendering: TrainingShape;
  /** Measured at the last of the build's checkpoints (whatever the index's checkpoint), with that checkpoint's content hashes: a query whose final checkpoint differs skips the comparison. */
  readonly loss: MeasuredTrainingLoss & { readonly checkpointHash: Readonly<Record<string, string>> };
  /** Against the logged training loss (as summary.json's `trainingLoss`). */
  readonly check: TrainingLossCheck | { readonly skipped: string };
}

/** float16 rounding of rows: the largest |entry| and how many nonzero entries became subnormal or zero. */
export interface Float16Stats {
  readonly maxAbs: number;
  readonly subnormal: number;
  readonly flushedToZero: number;
}

/** The identity as `progress.json` and shard manifests record it: the training ids as one hash (it stays small for millions of rows). */
export type RecordedIdentity = Omit<IndexIdentity, 'trainIds'> & { readonly trainIds: string };

/** `progress.json`, rewritten after every block: what is built, the rows [start, end) of the training set the folder holds, and how many are done. */
interface Progress {
  readonly identity: RecordedIdentity;
  readonly modules: readonly ModuleProjection[];
  /** Absent in builds of earlier versions: all rows. */
  readonly rows?: { readonly start: number; readonly end: number };
  /** Rows written, counted from `rows.start`. */
  readonly rowsDone: number;
  /** Training samples per block (absent in builds of earlier versions): a block's rows are projected together, so a resume keeps it. */
  readonly blockRows?: number;
  readonly float16: Float16Stats;
}

/** The inputs of `dda index build`: those of `dda attribute` (see {@link TaskFiles}) without queries, labels and learning rates. */
export type IndexInputFiles = Pick<TaskFiles, 'base' | 'checkpoints' | 'train' | 'fields' | 'promptFormat' | 'maxLength' | 'overlong' | 'baseName' | 'lossOn' | 'chatDate' | 'tokenizer' | 'log'>;

/** Options of {@link buildGradientIndex}. */
export interface IndexBuildOptions extends IndexInputFiles {
  /** The index folder. */
  readonly out: string;
  /** The checkpoint: `base` (θ0), a checkpoint id (`checkpoint-100`), or one of the --checkpoints folders. */
  readonly checkpoint: string;
  /** Projected dimension k (default {@link DEFAULT_INDEX_DIM}). */
  readonly dim?: number;
  readonly seed?: number;
  readonly projection?: ProjectionKind;
  /** The queries' test measurement (default `loss`). */
  readonly measurement?: string;
  readonly blockRows?: number;
  readonly gradientEngine?: GradientEngine;
  readonly backends?: readonly string[];
  readonly progress?: ProgressSink;
  /** Called after each block is written and recorded, with the rows done (for tests of interruption). */
  readonly onBlock?: (rowsDone: number) => void;
  /** The model to compute the rows with (left open), else one is opened and disposed. */
  readonly model?: CheckpointModel;
}

/** The model side of an index: base, checkpoints, the chosen checkpoint, and a ModelTask to open a CheckpointModel on. */
export interface ModelSide {
  readonly base: BaseModel;
  readonly checkpoint: Checkpoint;
  /** The fine-tuning checkpoints θ1..θN (the training and query loss checks are at the last). */
  readonly checkpoints: readonly Checkpoint[];
  readonly encoding: { readonly maxLength: number; readonly overlong: OverlongPolicy };
  readonly task: ModelTask;
  readonly origins: Map<string, string>;
}

/** Loads the base model and checkpoints, picks `which` (`base`, an id, or one of the folders). @throws DdaError naming the choices when none matches. */
export function loadModelSide(files: ModelFiles, which: string, enc: { maxLength?: number | undefined; overlong?: OverlongPolicy | undefined }, named?: string): ModelSide {
  const { base: b, checkpoints } = loadModelFiles(files);
  return modelSideAt(b, checkpoints, which, enc, named);
}

/** The side of `which` among θ0 (`base`) and `checkpoints`. @throws DdaError naming the choices when none matches. */
export function modelSideAt(b: BaseModel, checkpoints: readonly Checkpoint[], which: string, enc: { maxLength?: number | undefined; overlong?: OverlongPolicy | undefined }, named?: string): ModelSide {
  const all = [baseCheckpointOf(b, checkpoints), ...checkpoints];
  const cp = all.find((c) => c.id === which) ?? all.find((c) => c.id !== 'base' && resolve(c.dir) === resolve(which));
  if (!cp && named !== undefined) throw new DdaError(`${named} is at ${which}, which is not among the checkpoints of this query: ${checkpoints.map((c) => `${c.id} (${c.dir})`).join(', ')}`, 'give --checkpoints with the run the index was built from (a folder holding that checkpoint)');
  if (!cp) throw new DdaError(`--checkpoint ${which}: no such checkpoint`, `use base (θ0) or one of: ${checkpoints.map((c) => `${c.id} (${c.dir})`).join(', ')}`);
  const maxLength = enc.maxLength ?? b.config.maxSeqLen;
  if (!Number.isInteger(maxLength) || maxLength < 2 || maxLength > b.config.maxSeqLen) throw new DdaError(`--max-length must be an integer in [2, ${b.config.maxSeqLen}] (the model's context), got ${maxLength}`);
  const overlong = enc.overlong ?? 'fail';
  const origins = new Map<string, string>();
  const limitName = enc.maxLength === undefined ? "the model's context" : '--max-length';
  const encode = (s: TextSample, origin?: string): EncodedExample => encodeSample(b.tokenizer, s, maxLength, { overlong, limitName, ...(origin ? { origin } : {}) });
  return { base: b, checkpoint: cp, checkpoints, encoding: { maxLength, overlong }, origins, task: { base: b, encoding: { maxLength, overlong }, encode, origin: (id) => origins.get(id) } };
}

/** A leaf where two JSON values differ: its path and each side as JSON, or two arrays' lengths (`entries`). */
export interface JsonDifference {
  readonly path: string;
  readonly a: string;
  readonly b: string;
  readonly entries: boolean;
}

/** Every leaf where two JSON values differ ({@link JsonDifference}), in key order. */
export function jsonDifferences(a: unknown, b: unknown, path = ''): JsonDifference[] {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && Array.isArray(a) === Array.isArray(b)) {
    if (Array.isArray(a) && a.length !== (b as unknown[]).length) return [{ path: path || '(root)', a: String(a.length), b: String((b as unknown[]).length), entries: true }];
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => jsonDifferences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ path: path || '(root)', a: JSON.stringify(a) ?? 'absent', b: JSON.stringify(b) ?? 'absent', entries: false }];
}

/** `a.b: index X, given Y` for every leaf where two JSON values differ. */
export function differences(index: unknown, given: unknown, path = ''): string[] {
  return jsonDifferences(index, given, path).map((d) => (d.entries ? `${d.path}: index has ${d.a} entries, given ${d.b}` : `${d.path}: index ${d.a}, given ${d.b}`));
}

/**
 * The numpy line that reads the rows of an index of n rows × k: memory-mapped, so an index larger
 * than memory opens at once (a 1,000,000-row index is 16.4 GB at k = 8,192) and rows are read as
 * they are used.
 */
export function numpyReadLine(n: number, k: number): string {
  return `np.memmap("${INDEX_FILES.rows}", dtype=np.float16, mode="r", shape=(${n}, ${k}))  # row i = trainIds[i]; little-endian float16; memory-mapped (np.array(...) copies it into memory)`;
}

function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new DdaError(`cannot read ${path}: ${(e as Error).message}`, 'delete the index folder and build it again');
  }
}

/** Training rows [start, end) of a build: all of them, or a shard's. */
export interface IndexRows {
  readonly start: number;
  readonly end: number;
}

/**
 * A build's inputs, read and checked before any model work: the samples of its rows and of the
 * training loss check, what the index is over, the projection, the block size and the engine.
 */
export interface PreparedIndexBuild {
  readonly side: ModelSide;
  /** Training samples in the file. */
  readonly total: number;
  /** The rows this build writes, and their samples (`samples[i]` is row `rows.start + i`). */
  readonly rows: IndexRows;
  readonly samples: readonly TextSample[];
  /** The seeded sample of the training samples whose loss is checked ({@link checkIndexTrainingData}). */
  readonly lossSamples: readonly TextSample[];
  /** How the samples were rendered (recorded in index.json for the queries' check). */
  readonly shape: TrainingShape;
  /** What the index is over; its training ids (all of the file's, in row order) as one hash. */
  readonly identity: RecordedIdentity;
  readonly spec: ProjectionSpec;
  readonly blockRows: number;
  readonly engine: GradientEngine;
  readonly log: Log;
}

/**
 * Reads and checks the inputs of a build (the options, the measurement id, the model, the training
 * data and its rendering), before any model work, and keeps the samples of the rows it writes.
 *
 * The training file is read as a stream (@dda/data's scanTrainingData): every record is read,
 * rendered, encoded and checked as `dda attribute` checks a training set (the same errors, naming the
 * file and record, and the same log lines), and the data hashes and training ids of index.json are
 * computed over the whole file. An unsharded build keeps every sample as it goes. A shard (`rowsOf`)
 * keeps none in that reading (its rows depend on the number of samples) and reads the file a second
 * time to keep only the samples of its rows and of the training loss check: its memory holds a piece
 * of the file, a fingerprint per training id (the check that ids are unique) and its own samples, not
 * the file. A record that cannot be read fails every shard, whichever shard's rows it is in.
 *
 * @param rowsOf - The rows to write, given the number of training samples and the block size (default
 *   all of them); may throw (a shard of no rows).
 * @throws DdaError for bad inputs, as `dda attribute` (naming the file, the record and what to change;
 *   an `out` that is a file); a training file whose records change between the two readings.
 */
export async function prepareIndexBuild(o: IndexBuildOptions, rowsOf?: (total: number, blockRows: number) => IndexRows): Promise<PreparedIndexBuild> {
  const log = o.log ?? (() => {});
  checkOutFolder(o.out);
  const blockRows = o.blockRows ?? DEFAULT_INDEX_BLOCK_ROWS;
  if (!Number.isInteger(blockRows) || blockRows < 1) throw new DdaError(`--block-rows must be a positive integer, got ${blockRows}`);
  const spec: ProjectionSpec = { kind: o.projection ?? 'rademacher', seed: o.seed ?? 0, dim: o.dim ?? DEFAULT_INDEX_DIM };
  if (!PROJECTION_KINDS.includes(spec.kind)) throw new DdaError(`--projection ${spec.kind} is not known`, `use one of: ${PROJECTION_KINDS.join(', ')}`);
  if (!Number.isInteger(spec.seed)) throw new DdaError(`--seed must be an integer, got ${spec.seed}`);
  if (!Number.isInteger(spec.dim) || spec.dim < 1) throw new DdaError(`--dim must be a positive integer, got ${spec.dim}`);
  const measurement = o.measurement ?? 'loss';
  await ensurePlugins();
  await measurements.create(measurement, {}); // an unknown id fails here, before any model work
  const side = loadModelSide({ ...o, log }, o.checkpoint, o);
  const promptFormat = o.promptFormat ?? 'raw';
  const tok = side.base.tokenizer;
  const sampleOf = (r: TrainingRecord): TextSample => trainingSample(tok, r, o.lossOn);
  // The whole file, one record at a time: its checks, hashes and shape. Errors are thrown in the
  // order of reading it whole (the data's, then rendering a sample, then encoding one).
  const checks = new TrainingChecks(tok);
  const samplesHash = new ArrayHash();
  const idsHash = new ArrayHash();
  const all = rowsOf ? null : ([] as TextSample[]); // an unsharded build keeps every sample at once
  let first = null as RenderedSample | null;
  let truncated = 0;
  const failed: { sample?: unknown; encoding?: unknown } = {};
  const data = await scanTrainingData(o.train, { promptFormat, log, ...(o.fields ? { fields: o.fields } : {}) }, (r) => {
    if ('sample' in failed) return;
    let s: TextSample;
    try {
      s = sampleOf(r);
    } catch (e) {
      failed.sample = e;
      return;
    }
    if (all) {
      side.origins.set(r.id, r.where);
      all.push(s);
    }
    first ??= renderedSample(s, r.where, tok.eosText);
    checks.add(r, s);
    samplesHash.add(s);
    idsHash.add(s.id);
    if ('encoding' in failed) return;
    try {
      encodeSample(tok, s, side.encoding.maxLength, { overlong: side.encoding.overlong, origin: r.where, onTruncate: () => truncated++ });
    } catch (e) {
      failed.encoding = e;
    }
  });
  if ('sample' in failed) throw failed.sample;
  const total = data.count;
  if (total === 0 || first === null) throw new DdaError(`--train ${o.train}: no training records`);
  const size = trainingSetSizeWarning(side.checkpoints, total, o.train); // --train against the run's steps per epoch × batch, as dda attribute
  if (size !== null) log(size);
  // The rendering checks of `dda attribute` on the training side (the queries' come at query time).
  log(trainingDataLine(data.rendering, first));
  for (const w of checks.warnings()) log(`warning: ${w}`);
  if ('encoding' in failed) throw failed.encoding;
  if (truncated > 0) log(`index: ${truncated} training sample(s) truncated to ${side.encoding.maxLength} tokens (--overlong truncate)`);
  const engine = await resolveGradientEngine(o.gradientEngine, log);
  const cp = side.checkpoint;
  const identity: RecordedIdentity = {
    format: INDEX_FORMAT,
    checkpoint: { id: cp.id, kind: cp.kind, dir: resolve(cp.dir), hash: cp.hash },
    model: { dir: side.base.dir, hash: side.base.hash },
    train: { path: resolve(o.train), fields: o.fields ?? null, bytes: hashData(o.train, '--train'), samples: samplesHash.digest() },
    encoding: {
      ...side.encoding, promptFormat,
      ...(o.lossOn !== undefined && o.lossOn !== 'assistant' ? { lossOn: o.lossOn } : {}),
      ...(o.chatDate !== undefined ? { chatDate: o.chatDate } : {}),
      ...(o.tokenizer !== undefined ? { tokenizer: resolve(o.tokenizer) } : {}),
    },
    checkpoints: o.checkpoints.map((c) => resolve(c)),
    projection: { ...spec, split: 'proportional' },
    measurement, engine,
    trainIds: idsHash.digest(),
  };
  const shape = checks.shape();
  const common = { side, total, shape, identity, spec, blockRows, engine, log };
  const lossAt = sampleIndices(total);
  if (all) return { ...common, rows: { start: 0, end: total }, samples: all, lossSamples: lossAt.map((i) => all[i] as TextSample) };
  // A shard: the file again, keeping the samples of its rows and of the loss check only.
  const rows = (rowsOf as NonNullable<typeof rowsOf>)(total, blockRows);
  const samples: TextSample[] = [];
  const lossSamples: TextSample[] = [];
  const again = new ArrayHash();
  let next = 0; // of lossAt
  const reread = await scanTrainingData(o.train, { promptFormat, ...(o.fields ? { fields: o.fields } : {}) }, (r, i) => {
    again.add(r.id);
    const inRows = i >= rows.start && i < rows.end;
    const sampled = lossAt[next] === i;
    if (sampled) next++;
    if (!inRows && !sampled) return;
    const s = sampleOf(r);
    side.origins.set(r.id, r.where);
    if (inRows) samples.push(s);
    if (sampled) lossSamples.push(s);
  });
  const ids = again.digest();
  if (reread.count !== total || ids !== identity.trainIds) {
    throw new DdaError(`--train ${o.train} changed while it was read (${total} records, training ids hashed ${identity.trainIds}; read again: ${reread.count}, ${ids})`, 'build the index from a file that does not change while it is read');
  }
  return { ...common, rows, samples, lossSamples };
}

/**
 * The training loss check of `dda attribute` on a build ({@link IndexTrainingData}): the last
 * checkpoint's mean response-token loss on a seeded sample of the training samples, computed with
 * `model`, against the loss its trainer_state.json logged (a warning when well above it).
 */
export async function checkIndexTrainingData(p: PreparedIndexBuild, model: CheckpointModel): Promise<IndexTrainingData> {
  const final = p.side.checkpoints[p.side.checkpoints.length - 1];
  if (!final) throw new DdaError('no checkpoints', 'give at least one checkpoint of the fine-tuning run');
  const loss = await measureSampledTrainingLoss(final, p.lossSamples, (cp, samples) => model.losses(cp, samples));
  const check = compareTrainingLoss(final, loss, p.log);
  return { rendering: p.shape, loss: { ...loss, checkpointHash: final.hash }, check };
}

/** The identity with the training ids as one hash, as `progress.json` and shard manifests record it. */
export const recordedIdentity = (identity: IndexIdentity): RecordedIdentity => ({ ...identity, trainIds: hashOf(identity.trainIds) });

/** The fields of a recorded identity that make two builds one index: all but the folders' paths (the same content moved elsewhere is the same index). */
export function comparableIdentity(x: RecordedIdentity): Record<string, unknown> {
  return {
    format: x.format, checkpoint: { ...x.checkpoint, dir: undefined }, model: { ...x.model, dir: undefined }, train: { ...x.train, path: undefined },
    encoding: x.encoding, projection: x.projection, measurement: x.measurement, engine: x.engine, trainIds: x.trainIds,
  };
}

/**
 * The finished index in `dir` when it is the one `identity` describes; null when `dir` holds none.
 *
 * @throws DdaError when `dir` holds another index (naming what differs).
 */
export function finishedIndexIn(dir: string, identity: RecordedIdentity): IndexHeader | null {
  const headerPath = join(dir, INDEX_FILES.header);
  if (!existsSync(headerPath)) return null;
  const h = readJson<IndexHeader>(headerPath);
  const diff = differences(comparableIdentity(recordedIdentity(h)), comparableIdentity(identity));
  if (diff.length > 0) throw new DdaError(`${dir} holds another index (${diff.slice(0, 5).join('; ')})`, 'give another --out, or delete the folder to rebuild it');
  return readIndexHeader(dir); // its rows checked too: a rerun of the build finds a damaged file
}

/** `index.json` of the rows of `identity.trainIds`, projected into `modules`, with the build's checks of the training data. */
export function indexHeader(identity: IndexIdentity, modules: readonly ModuleProjection[], float16: Float16Stats, trainingData?: IndexTrainingData): IndexHeader {
  const n = identity.trainIds.length;
  const k = identity.projection.dim;
  return {
    ...identity, count: n, dim: k, dtype: 'float16', modules,
    read: numpyReadLine(n, k),
    sign: 'row i = P·∇θ ℓ(train_i) at the checkpoint (ℓ: mean response-token loss, nats/token); score = ⟨row, P·∇θ f(query)⟩ ≈ grad-dot, higher = more responsible',
    float16,
    bytesPerRow: { index: k * 2, fullGradient: modules.reduce((a, m) => a + m.size, 0) * 4 },
    ...(trainingData ? { trainingData } : {}),
  };
}

/**
 * Writes `index.json` of `header` into `dir` (atomically: the sign that the index is finished) with
 * the SHA-256 of the rows file as it is now (`rowsSha256`), marks the rows verified, removes
 * `progress.json` and logs what was written. The caller holds `dir`'s build lock. `rowsSha256`:
 * the hash where the caller computed it from the bytes it wrote (the merge); otherwise the file is
 * hashed.
 *
 * @returns The header written.
 */
export function writeIndexHeader(dir: string, header: IndexHeader, log: Log, rowsSha256?: string): IndexHeader {
  checkBuildLock(dir);
  const rows = join(dir, INDEX_FILES.rows);
  const before = statSync(rows);
  const written: IndexHeader = { ...header, rowsSha256: rowsSha256 ?? sha256OfFile(rows) };
  writeFileAtomic(join(dir, INDEX_FILES.header), `${JSON.stringify(written, null, 1)}\n`);
  markVerified(dir, rows, written.rowsSha256 as string, before);
  recordCheckedState(written, before);
  rmSync(join(dir, INDEX_FILES.progress), { force: true });
  const s = header.float16;
  log(`index: ${dir}: ${header.count} rows × ${header.dim} float16 (${header.bytesPerRow.index} bytes per sample instead of ${header.bytesPerRow.fullGradient} for the float32 gradient)${s.subnormal + s.flushedToZero > 0 ? `; float16 rounding: ${s.subnormal} entries subnormal, ${s.flushedToZero} flushed to zero` : ''}`);
  return written;
}

/**
 * Builds (or resumes, or finds finished) the index of the training set at one checkpoint: per
 * block of `blockRows` samples, each sample's per-example gradient (streamed from the engine one
 * row at a time) is projected ({@link GradientProjector}), rounded to float16 and the block's rows
 * written at their place in `gradients.f16`; then `progress.json` records the rows done. After
 * the last block `index.json` is written and `progress.json` removed.
 *
 * @returns The header ({@link IndexHeader}).
 * @throws DdaError for bad inputs (as `dda attribute`), a folder holding another index, another
 *   build in progress or the shards of a sharded build (naming what differs), a projected entry
 *   beyond float16's range (±65504).
 */
export async function buildGradientIndex(o: IndexBuildOptions): Promise<IndexHeader> {
  const p = await prepareIndexBuild(o);
  // The folder is this build's from its first look at it to its index.json: another build can neither
  // write rows beside it nor finish an index between its check of the folder and its rows.
  const release = lockBuildFolder(o.out, p.log);
  try {
    return await buildLocked(o, p);
  } finally {
    release();
  }
}

async function buildLocked(o: IndexBuildOptions, p: PreparedIndexBuild): Promise<IndexHeader> {
  const finished = finishedIndexIn(o.out, p.identity);
  if (finished) {
    p.log(`index: ${o.out} is built already (${finished.count} rows × ${finished.dim}); nothing to do`);
    return finished;
  }
  const shards = join(o.out, 'shards');
  if (existsSync(shards) && readdirSync(shards).some((f) => /^shard-\d+-of-\d+/.test(f))) {
    throw new DdaError(`${o.out} holds the shards of a sharded build (${shards})`, `finish the shards (dda index build ... --shard i/n) and merge them with dda index merge --index ${o.out}, or give another --out`);
  }
  const model = await CheckpointModel.open(p.side.task, { log: p.log, gradientEngine: p.engine, ...(o.backends ? { backends: o.backends } : {}) });
  try {
    const trainingData = await checkIndexTrainingData(p, model);
    const { modules, float16 } = await writeIndexRows(p, { ...o, model }, o.out, p.rows);
    return writeIndexHeader(o.out, indexHeader({ ...p.identity, trainIds: p.samples.map((s) => s.id) }, modules, float16, trainingData), p.log);
  } finally {
    await model.dispose();
  }
}

/**
 * Writes the rows [start, end) of the training set into `dir`'s `gradients.f16` (row start first),
 * resumably: per block of `blockRows` samples from `start`, each sample's per-example gradient
 * (streamed from the engine one row at a time) is projected, rounded to float16 and written at its
 * place; then `progress.json` records the rows done. A folder whose `progress.json` records some
 * rows resumes after them (rows past the record, of a block being written when the build was
 * killed, are cut off).
 *
 * The caller holds `dir`'s build lock ({@link lockBuildFolder}).
 *
 * @param o `onBlock` is called after each block with the end of the rows written (of the whole set).
 * @returns The layout of the projection and the float16 rounding statistics of the rows [start, end).
 * @throws DdaError when `dir` holds an unfinished build of another index or of other rows (naming
 *   what differs), or a projected entry beyond float16's range (±65504).
 */
export async function writeIndexRows(
  p: PreparedIndexBuild, o: Pick<IndexBuildOptions, 'backends' | 'progress' | 'onBlock' | 'model'>, dir: string, rows: { readonly start: number; readonly end: number },
): Promise<{ modules: readonly ModuleProjection[]; float16: Float16Stats }> {
  checkBuildLock(dir);
  return await writeLockedIndexRows(p, o, dir, rows);
}

async function writeLockedIndexRows(
  p: PreparedIndexBuild, o: Pick<IndexBuildOptions, 'backends' | 'progress' | 'onBlock' | 'model'>, dir: string, rows: { readonly start: number; readonly end: number },
): Promise<{ modules: readonly ModuleProjection[]; float16: Float16Stats }> {
  const { log, spec, blockRows, samples, total } = p;
  if (rows.start < p.rows.start || rows.end > p.rows.end) throw new DdaError(`internal: rows ${rows.start} to ${rows.end - 1} of a build that holds rows ${p.rows.start} to ${p.rows.end - 1}`);
  const cp = p.side.checkpoint;
  const progressPath = join(dir, INDEX_FILES.progress);
  const rowsPath = join(dir, INDEX_FILES.rows);
  const slim = p.identity;
  let rowsDone = 0;
  let stats: Float16Stats = { maxAbs: 0, subnormal: 0, flushedToZero: 0 };
  let modules: readonly ModuleProjection[] | null = null;
  if (existsSync(progressPath)) {
    const pr = readJson<Progress>(progressPath);
    const diff = [
      ...differences(comparableIdentity(pr.identity), comparableIdentity(slim)), ...differences(pr.rows ?? { start: 0, end: total }, rows, 'rows'),
      // A block's rows are projected as one batch, whose float32 products change in their last bits with its rows: another size gives other bytes.
      ...(pr.blockRows !== undefined && pr.blockRows !== blockRows ? [`--block-rows: ${pr.blockRows} in the unfinished build, ${blockRows} now`] : []),
    ];
    if (diff.length > 0) throw new DdaError(`${dir} holds an unfinished build of another index (${diff.slice(0, 5).join('; ')})`, 'run the same command as before to finish it, or delete the folder to start this one');
    rowsDone = pr.rowsDone;
    stats = pr.float16;
    modules = pr.modules;
  }
  mkdirSync(dir, { recursive: true });
  const k = spec.dim;
  const rowBytes = k * 2;
  const fd = openSync(rowsPath, existsSync(rowsPath) ? 'r+' : 'w+');
  try {
    // Rows past the recorded count are of a block that was not finished: cut off.
    const have = Math.floor(statSync(rowsPath).size / rowBytes);
    if (have < rowsDone) {
      log(`index: ${rowsPath} holds ${have} rows, progress.json says ${rowsDone}; resuming at row ${rows.start + have}`);
      rowsDone = have;
    }
    ftruncateSync(fd, rowsDone * rowBytes);
    const n = rows.end - rows.start;
    if (rowsDone > 0) log(`index: resuming at row ${rows.start + rowsDone} of ${total}${n < total ? ` (rows ${rows.start} to ${rows.end - 1} here)` : ''}`);
    if (rowsDone < n) {
      const model = o.model ?? await CheckpointModel.open(p.side.task, { log, gradientEngine: p.engine, ...(o.backends ? { backends: o.backends } : {}) });
      try {
        const bar = trackProgress(`projected gradients of ${n - rowsDone} training samples at ${cp.id} (k = ${k})`, n - rowsDone, o.progress);
        let projector: GradientProjector | null = null;
        // Rows are projected in batches (one GEMM per tensor on a dot-product kernel), each batch
        // at most PROJECT_BATCH_BYTES of float32 gradient rows and within one block, so a block's
        // batches are the same in one build, in shards and after a resume (same bits).
        let batch: { i: number; row: Float32Array }[] = [];
        let howLogged = false;
        const flush = async (): Promise<void> => {
          const pj = projector as GradientProjector | null;
          if (batch.length === 0 || !pj) return;
          const done = batch;
          batch = [];
          const r = await pj.projectRows(done.map((x) => x.row), { log });
          if (!howLogged) log(`index: rows projected by ${r.how}`);
          howLogged = true;
          done.forEach((x, b) => {
            stats = toF16(r.rows[b] as Float64Array, bits, x.i * k, stats, block[x.i]?.id ?? String(x.i), cp.id);
          });
        };
        let bits = new Uint16Array(0);
        let block: readonly TextSample[] = [];
        for (let start = rowsDone; start < n; start += blockRows) {
          const end = Math.min(n, start + blockRows);
          bits = new Uint16Array((end - start) * k);
          block = samples.slice(rows.start - p.rows.start + start, rows.start - p.rows.start + end);
          const onLayout = (layout: GradientLayout): void => {
            if (projector) return;
            projector = new GradientProjector(spec, layout);
            const planned = projector.modules;
            if (modules && differences(modules, planned).length > 0) throw new DdaError(`${dir}: the gradient layout at ${cp.id} differs from the unfinished build's (${differences(modules, planned).slice(0, 3).join('; ')})`, 'delete the folder to start again');
            modules = planned;
            log(`index: ${layout.names.length} tensors, ${projector.inputDim} gradient entries per sample → k = ${k} (${spec.kind}, seed ${spec.seed}, dimensions split proportionally to tensor size)`);
            if (k >= projector.inputDim) log(`note: k = ${k} is not below the ${projector.inputDim} gradient entries per sample: each row has at least as many entries as the gradient (${k * 2} bytes of float16 against ${projector.inputDim * 4} bytes of float32: smaller only by the narrower type) and is still a random projection of it, not the gradient; a --dim below ${projector.inputDim} compresses`);
          };
          await model.forEachGradientRow(cp, block, async (i, row) => {
            const pj = projector as GradientProjector | null;
            if (!pj) throw new DdaError('internal: a gradient row before its layout');
            batch.push({ i, row: Float32Array.from(row) }); // the engine may reuse `row`
            if ((batch.length + 1) * pj.inputDim * 4 > PROJECT_BATCH_BYTES) await flush();
            bar.tick();
          }, onLayout);
          await flush();
          checkBuildLock(dir);
          writeAll(fd, new Uint8Array(bits.buffer), start * rowBytes);
          fsyncSync(fd);
          rowsDone = end;
          writeFileAtomic(progressPath, JSON.stringify({ identity: slim, modules: modules as readonly ModuleProjection[], rows, rowsDone, blockRows, float16: stats } satisfies Progress));
          o.onBlock?.(rows.start + rowsDone);
        }
      } finally {
        if (model !== o.model) await model.dispose();
      }
    }
  } finally {
    closeSync(fd);
  }
  if (!modules) throw new DdaError(`internal: ${dir}: no gradient layout recorded`);
  return { modules, float16: stats };
}

/** Writes all of `bytes` into `fd` at `position`. */
export function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
}

/** Rounds a projected row into float16 bits at `bits[offset..]`, counting precision lost. @throws DdaError for an entry beyond float16's range. */
function toF16(y: Float64Array, bits: Uint16Array, offset: number, s: Float16Stats, id: string, cp: string): Float16Stats {
  let { maxAbs, subnormal, flushedToZero } = s;
  for (let j = 0; j < y.length; j++) {
    const v = y[j] as number;
    const a = Math.abs(v);
    if (!(a <= F16_MAX)) {
      throw new DdaError(
        `training sample '${id}' at ${cp}: projected gradient entry ${j} is ${v}, beyond float16's range (±${F16_MAX})`,
        'the gradient is huge (a diverged checkpoint?); check the checkpoint\'s training loss',
      );
    }
    const h = float32ToF16Bits(v);
    bits[offset + j] = h;
    if (a > maxAbs) maxAbs = a;
    if (a > 0 && (h & 0x7fff) === 0) flushedToZero++;
    else if (a > 0 && a < F16_MIN_NORMAL) subnormal++;
  }
  return { maxAbs, subnormal, flushedToZero };
}

/**
 * Refuses a folder holding the shards of an index build (`dda index build --shard i/n`) that are
 * not merged yet, naming the shards finished and missing (of the largest count there) and what to
 * run. Returns when `dir` holds no shards.
 *
 * @throws DdaError as said.
 */
function refuseUnmergedShards(dir: string): void {
  const shards = join(dir, 'shards');
  const found = (existsSync(shards) && statSync(shards).isDirectory() ? readdirSync(shards) : []).flatMap((f) => {
    const m = /^shard-(\d+)-of-(\d+)(\.json)?$/.exec(f);
    return m ? [{ index: Number(m[1]), count: Number(m[2]), finished: m[3] !== undefined }] : [];
  });
  if (found.length === 0) return;
  const count = Math.max(...found.map((f) => f.count));
  const finished = [...new Set(found.filter((f) => f.finished && f.count === count).map((f) => f.index))].sort((a, b) => a - b);
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !finished.includes(i));
  const s = (n: number): string => (n > 1 ? 's' : '');
  const state = missing.length === 0
    ? `every shard of ${count} finished`
    : `${finished.length ? `shard${s(finished.length)} ${finished.join(', ')} of ${count} finished; ` : ''}shard${s(missing.length)} ${missing.join(', ')}${finished.length ? '' : ` of ${count}`} missing`;
  const merge = `dda index merge --index ${dir}`;
  throw new DdaError(
    `${dir}: no ${INDEX_FILES.header}: it holds the shards of an index build that is not merged (${state})`,
    missing.length === 0 ? `merge them: ${merge}` : `run the missing shard${s(missing.length)} (dda index build ... --shard ${missing.length === 1 ? `${missing[0]}/${count}` : `i/${count} for i = ${missing.join(', ')}`}), then ${merge}`,
  );
}

/**
 * Reads and checks an index folder's header: its format, that `gradients.f16` holds count × k
 * float16 values, and that it is the file the build wrote (its SHA-256 against `rowsSha256`:
 * index-integrity.ts; `log` notes an index of an earlier version, which records none).
 *
 * @throws DdaError naming the folder when it is unfinished (progress.json, or shards not merged),
 *   missing or malformed, or its rows file was changed after the build.
 */
export function readIndexHeader(dir: string, log: Log = () => {}): IndexHeader {
  const headerPath = join(dir, INDEX_FILES.header);
  if (!existsSync(headerPath)) {
    refuseUnmergedShards(dir);
    throw new DdaError(`${dir}: no ${INDEX_FILES.header}${existsSync(join(dir, INDEX_FILES.progress)) ? ' (its build has not finished)' : ''}`, existsSync(join(dir, INDEX_FILES.progress)) ? 'run the same `dda index build` command again to finish it' : 'give the folder `dda index build --out` wrote');
  }
  const h = readJson<IndexHeader>(headerPath);
  if (h.format !== INDEX_FORMAT) throw new DdaError(`${headerPath}: unknown format '${String(h.format)}'`, `this version reads ${INDEX_FORMAT}`);
  const size = existsSync(join(dir, INDEX_FILES.rows)) ? statSync(join(dir, INDEX_FILES.rows)).size : -1;
  if (size !== h.count * h.dim * 2) throw new DdaError(`${join(dir, INDEX_FILES.rows)}: ${size < 0 ? 'missing' : `${size} bytes`}, expected ${h.count} rows × ${h.dim} × 2`, 'build the index again');
  if (h.trainIds.length !== h.count) throw new DdaError(`${headerPath}: ${h.trainIds.length} training ids for ${h.count} rows`, 'build the index again');
  const state = verifyIndexRows(dir, join(dir, INDEX_FILES.rows), h.rowsSha256, log);
  if (state) recordCheckedState(h, state);
  return h;
}

/**
 * Rows [start, end) of an index as float32 (each float16 widened exactly), row-major.
 *
 * @throws DdaError when the rows file changed after {@link readIndexHeader} checked it.
 */
export function readIndexRows(dir: string, h: IndexHeader, start: number, end: number): Float32Array {
  const path = join(dir, INDEX_FILES.rows);
  const fd = openSync(path, 'r');
  try {
    const rows = widenToFloat32(readRowBytes(fd, path, h.dim, start, end - start, new Uint8Array((end - start) * h.dim * 2)), 'F16');
    checkRowsUnchanged(h, path, fd);
    return rows;
  } finally {
    closeSync(fd);
  }
}

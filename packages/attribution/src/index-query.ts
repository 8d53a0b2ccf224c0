/**
 * Queries of compressed gradient indexes (`dda index query`): new queries' test-measurement
 * gradients at an index's checkpoint, projected with its seeded projection and scored against every
 * row (inner product, as grad-dot, or cosine, as grad-cos), the top k per query; and DDA over
 * several indexes, one at θ0 and one per checkpoint (debias and denoise of their score matrices).
 * The index itself (its format, build, header and rows) is gradient-index.ts's.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DdaError, createScoreMatrix, measurements, scorers, trackProgress, type ProgressSink, type ScoreMatrix, type TextSample } from '@dda/core';
import { readQueryData, scanTrainingData, type FieldMap, type TrainingRecord } from '@dda/data';
import { hashOf, writeFileAtomic } from './artifacts.js';
import { type Checkpoint } from './checkpoints.js';
import { CheckpointModel, resolveGradientEngine, type GradientEngine, type Log } from './engine.js';
import { hashData } from './hashing.js';
import { insertTop, queryNorms, rowScores, scanIndexTop, type IndexScanOptions, type TopRow } from './index-scan.js';
import { approximateIndexTop, checkCandidates, readIndexSketch } from './index-sketch.js';
import { estimateProjectionError, type ErrorIndex, type ProjectionErrorSummary } from './index-dda-error.js';
import { type QueryTop, type TopEntry, checkOutFolder, writeTopK } from './outputs.js';
import { ensurePlugins } from './plugins.js';
import { RECOMMENDED_DDA, checkMethod, ddaMatrix, describeScores } from './method.js';
import { GradientProjector, projectionDifferences, type ProjectionSpec } from './projection.js';
import { combineGradientTerms, type CheckpointScores } from './run.js';
import { type ModelFiles, type Query, loadModelFiles, queriesLine, querySamples, measurementTermsOf, renderedSample, renderingWarnings, trainingSample } from './task.js';
import { type QueryLossCheck, compareQueryLoss } from './training-loss.js';
import { INDEX_FILES, type IndexHeader, type ModelSide, differences, loadModelSide, modelSideAt, readIndexHeader, readIndexRows } from './gradient-index.js';

/** Options of {@link queryGradientIndex}. */
export interface IndexQueryOptions {
  readonly index: string;
  /** Queries in the formats of `dda attribute --queries`. */
  readonly queries: string;
  readonly queryFields?: FieldMap;
  /** The base model folder (default: the one recorded in index.json); its hashes must match. */
  readonly base?: string;
  /** The checkpoint folders (default: those recorded); the index's checkpoint must be among them with the same hashes. */
  readonly checkpoints?: readonly string[];
  readonly baseName?: string;
  /** The tokenizer folder, where the build took one (`--tokenizer`; default: the one recorded in index.json); its hashes must match. */
  readonly tokenizer?: string;
  /** The test measurement; refused when it differs from the index's. */
  readonly measurement?: string;
  /** The projection asked for; each part given is refused when it differs from the index's. */
  readonly projection?: Partial<ProjectionSpec>;
  /** Training samples listed per query (default 10). */
  readonly topK?: number;
  /** Cosine (as grad-cos) instead of inner product (as grad-dot). */
  readonly normalize?: boolean;
  readonly gradientEngine?: GradientEngine;
  readonly backends?: readonly string[];
  /** Rows scored per read of gradients.f16 (default 1024: 16 MB of float16 at k = 8,192, widened to 32 MB): memory is flat in the number of rows. */
  readonly chunkRows?: number;
  /**
   * How the top-k scan scores the rows: `auto` (default: onnxruntime's float32 GEMM over the float16
   * rows where a kernel reads half floats, the rows that can reach the top k scored again in
   * float64: the same top k and scores as `js`) or `js` (the float64 loop over every row).
   */
  readonly scanEngine?: 'auto' | 'js';
  /**
   * Approximate search (one index only): score the index's sketch (`dda index sketch`) and only
   * the `candidates` rows per query with the highest scores by the sketch and by each of its two
   * halves exactly, comparing the halves (index-sketch.ts). Every score printed is still the exact
   * index score of its row; a row none of them ranks among its best is missed.
   * Default: the exact scan of every row.
   */
  readonly candidates?: number;
  /** The training file, where it has moved since the build (default: the one index.json records); its content must be the build's. Only the top-k lists' texts come from it. */
  readonly train?: string;
  /** Folder of topk.csv and topk.jsonl (none written without it). */
  readonly out?: string;
  readonly log?: Log;
  readonly progress?: ProgressSink;
}

/** What {@link queryGradientIndex} returns. */
export interface IndexQueryResult {
  readonly header: IndexHeader;
  /** Top training samples of each query, highest first (`bottom` is empty). */
  readonly tops: readonly QueryTop[];
  /** The queries' projected gradients [nQueries][k] (float64). */
  readonly queryRows: readonly Float64Array[];
  /** What a score is. */
  readonly units: string;
  /** The queries' loss against the training data's (see {@link IndexTrainingData}), or why it was skipped; also in query.json. */
  readonly queryLoss: QueryLossCheck | { readonly skipped: string };
  readonly files: readonly string[];
}

/**
 * The model, checkpoint, projection and measurement of a query against an index, checked: the base
 * model and the checkpoint (given, or the recorded folders) must have the index's content hashes.
 *
 * @throws DdaError naming every difference.
 */
function checkQueryAgainst(h: IndexHeader, o: IndexQueryOptions, side: ModelSide): void {
  const modelDiff = [
    ...differences(h.model.hash, side.base.hash, 'base model files'),
    ...differences({ id: h.checkpoint.id, kind: h.checkpoint.kind, hash: h.checkpoint.hash }, { id: side.checkpoint.id, kind: side.checkpoint.kind, hash: side.checkpoint.hash }, 'checkpoint'),
  ];
  const given = o.base !== undefined || o.checkpoints !== undefined ? 'given with --base / --checkpoints' : 'the folders index.json records (of the first --index, where there are several)';
  if (modelDiff.length > 0) throw new DdaError(`the index ${o.index} was built with another model or checkpoint than those of this query, ${given} (${modelDiff.slice(0, 6).join('; ')})`, 'query with the base model and checkpoints the index was built from (--base, --checkpoints), or build an index at this checkpoint');
  const asked = o.projection ?? {};
  const projDiff = projectionDifferences(asked, h.projection, (x, a, b) => `${x}: index ${b}, given ${a}`);
  if (projDiff.length > 0) throw new DdaError(`the index ${o.index} was projected otherwise than asked (${projDiff.join('; ')})`, 'drop the projection flags to use the index\'s, or build an index with this projection');
  if (o.measurement !== undefined && o.measurement !== h.measurement) throw new DdaError(`the index ${o.index} answers queries under the measurement '${h.measurement}', not '${o.measurement}'`, `drop --measurement, or build an index with --measurement ${o.measurement}`);
}

/**
 * Scores new queries against an index: each query's test-measurement gradient at the index's
 * checkpoint (Σ_k w_k ∇ℓ(s_k) over the measurement's terms, as `dda attribute`), projected with the
 * index's seeded projection, then ⟨row_i, q⟩ (or the cosine, `normalize`) for every row, read in
 * chunks; the top `topK` per query (ties: earlier row first). Units: those of grad-dot (nats² per
 * squared parameter unit) approximated through the projection, or dimensionless cosine.
 *
 * @throws DdaError when the model, checkpoint, projection or measurement differ from the index's
 *   (naming what differs), and for bad queries (naming the file line).
 */
export async function queryGradientIndex(o: IndexQueryOptions): Promise<IndexQueryResult> {
  const log = o.log ?? (() => {});
  if (o.out !== undefined) checkOutFolder(o.out);
  const h = readIndexHeader(o.index, log);
  const topK = o.topK ?? 10;
  if (!Number.isInteger(topK) || topK < 1) throw new DdaError(`--top-k must be a positive integer, got ${topK}`);
  const chunkRows = o.chunkRows ?? 1024;
  if (o.candidates !== undefined) checkCandidates(o.candidates, topK);
  checkTrainOption(h, o.train);
  const sketch = o.candidates !== undefined ? readIndexSketch(o.index, h, log) : undefined;
  const side = loadModelSide(queryModelFiles(h, o.index, o, log), h.checkpoint.id, h.encoding, `the index ${o.index}`);
  checkQueryAgainst(h, o, side);
  const { queries, terms } = await queryTerms(h, o, side, log);
  const engine = await resolveGradientEngine(o.gradientEngine, log);
  if (engine !== h.engine) log(`index: the rows were computed on ${h.engine}, the queries on ${engine} (the same gradients up to float32 rounding)`);
  const model = await CheckpointModel.open(side.task, { log, gradientEngine: engine, ...(o.backends ? { backends: o.backends } : {}) });
  let queryRows: Float64Array[];
  let queryLoss: QueryLossCheck | { readonly skipped: string };
  try {
    queryLoss = await indexQueryLoss(h, side, queries, model, log);
    queryRows = await projectedQueries(model, h, o.index, side.checkpoint, terms, queries.map((q) => q.record.id));
  } finally {
    await model.dispose();
  }
  const refuse: IndexScanOptions['refuse'] = (i, row, score) => refuseNonFiniteScore(o.index, h, i, row, score);
  const label = `scoring ${h.count} index rows × ${queryRows.length} queries at ${h.checkpoint.id}`;
  const common = { queryRows, normalize: o.normalize ?? false, topK, chunkRows, label, log, refuse, ...(o.scanEngine ? { engine: o.scanEngine } : {}), ...(o.progress ? { progress: o.progress } : {}) };
  let best: TopRow[][];
  let search: Record<string, unknown>;
  if (sketch && o.candidates !== undefined) {
    const a = await approximateIndexTop({ ...common, index: o.index, header: h, sketch, candidates: o.candidates, chunkRows: Math.max(chunkRows, 16384) });
    log(`index: approximate search: the sketch of ${h.count} rows scanned in ${a.sketchSeconds.toFixed(2)} s, then ${a.rowsRead} rows read and scored exactly in ${a.exactSeconds.toFixed(2)} s (${a.cpuSeconds.toFixed(2)} s of CPU in all; ${a.how})`);
    const ids = queries.map((q) => q.record.id);
    const flagged = a.checks.map((x, j) => [ids[j] as string, x] as const).filter(([, x]) => x.missedByFirst + x.missedBySecond > 0);
    log(`index: the sketch's two halves ${flagged.length === 0 ? `agree on every query's top ${topK} (each of its rows among both halves' ${o.candidates} best)` : `disagree on ${flagged.length} of ${ids.length} quer${ids.length === 1 ? 'y' : 'ies'} (rows of the top ${topK} missing from one half's ${o.candidates} best)`}`);
    if (flagged.length > 0) log(`warning: ${flagged.slice(0, 5).map(([id, x]) => `'${id}': ${Math.max(x.missedByFirst, x.missedBySecond)} of its top ${topK} missing from one half's ${o.candidates} best`).join('; ')}${flagged.length > 5 ? `; and ${flagged.length - 5} more` : ''}: a sketch of that size misses rows of these queries' top ${topK}, so the whole sketch may miss some too; raise --candidates, or drop it for the exact scan`);
    best = a.best;
    search = {
      exact: false, candidates: o.candidates, sketch: { dim: sketch.dim, seed: sketch.seed }, rowsRead: a.rowsRead,
      checks: Object.fromEntries(ids.map((id, j) => [id, { ...a.checks[j], flagged: (a.checks[j]?.missedByFirst ?? 0) + (a.checks[j]?.missedBySecond ?? 0) > 0 }])),
      note: `approximate: per query, the top ${topK} of the rows among the ${Math.min(o.candidates, h.count)} highest by the ${sketch.dim}-dimension sketch and by each of its two independent halves; each score is the exact index score of its row (as without --candidates), but a row none of the three ranks among its ${o.candidates} best is missed. checks: per query the rows scored and how many of its top ${topK} are missing from each half's ${o.candidates} best; flagged where any is (a sketch of that size misses rows of this query's top ${topK}): a signal, not a bound`,
    };
  } else {
    const scan = await scanIndexTop({ ...common, rowsPath: join(o.index, INDEX_FILES.rows), header: h, count: h.count, dim: h.dim });
    log(`index: scored ${h.count} rows × ${queryRows.length} quer${queryRows.length === 1 ? 'y' : 'ies'} in ${scan.seconds.toFixed(2)} s, ${scan.cpuSeconds.toFixed(2)} s of CPU (${scan.how}; ${scan.rescored} row × query scores in float64)`);
    best = scan.best;
    search = { exact: true, note: 'every row of the index scored' };
  }
  const texts = await trainingTexts(h, side, log, new Set(best.flat().map((b) => b.i)), o.train);
  const tops = topsOf(queries, best, h.trainIds, texts.texts);
  const units = o.normalize
    ? `cosine of projected gradients (≈ grad-cos; dimensionless in [-1, 1], 0 for a zero row); higher = more responsible`
    : `inner product of projected gradients (≈ grad-dot; nats² per squared parameter unit); higher = more responsible`;
  const files = await writeQueryOutputs(o.out, tops, { index: resolve(o.index), queries: resolve(o.queries), checkpoint: h.checkpoint.id, measurement: h.measurement, projection: h.projection, normalize: o.normalize ?? false, topK, search, units, queryLoss, trainingTexts: texts.note });
  return { header: h, tops, queryRows, units, queryLoss, files };
}

/**
 * The model files of a query against `h` (of the index in `dir`): those given, else those the index
 * recorded, with its encoding's chat date and tokenizer.
 *
 * @throws DdaError when a recorded folder (base, checkpoints, tokenizer) is not there (moved), naming the index.json that recorded it and the option that gives its new place.
 */
function queryModelFiles(h: IndexHeader, dir: string, o: Pick<IndexQueryOptions, 'base' | 'checkpoints' | 'baseName' | 'tokenizer'>, log: Log): ModelFiles {
  const recorded = join(dir, INDEX_FILES.header);
  if (o.tokenizer === undefined && h.encoding.tokenizer !== undefined && !existsSync(h.encoding.tokenizer)) {
    throw new DdaError(`${h.encoding.tokenizer}: no such folder: the tokenizer folder ${recorded} records (moved?)`, 'give --tokenizer with its new place (its content must be the same)');
  }
  const tokenizer = o.tokenizer ?? h.encoding.tokenizer;
  if (o.base === undefined && !existsSync(h.model.dir)) throw new DdaError(`${h.model.dir}: no such folder: the base model folder ${recorded} records (moved?)`, 'give --base with its new place (its content must be the same)');
  const gone = o.checkpoints === undefined ? h.checkpoints.find((c) => !existsSync(c)) : undefined;
  if (gone !== undefined) throw new DdaError(`${gone}: no such folder: a checkpoints folder ${recorded} records (moved?)`, `give --checkpoints with its new place (${h.checkpoints.length > 1 ? 'every folder the index records, ' : ''}the same content)`);
  return {
    base: o.base ?? h.model.dir, checkpoints: o.checkpoints ?? h.checkpoints, log,
    ...(o.baseName !== undefined ? { baseName: o.baseName } : {}),
    ...(h.encoding.chatDate !== undefined ? { chatDate: h.encoding.chatDate } : {}),
    ...(tokenizer !== undefined ? { tokenizer } : {}),
  };
}

/** The queries of `o.queries` and each one's terms under the index's measurement, encoded once (their errors name the file line). */
async function queryTerms(h: IndexHeader, o: Pick<IndexQueryOptions, 'queries' | 'queryFields'>, side: ModelSide, log: Log): Promise<{ queries: ReturnType<typeof querySamples>[]; terms: { readonly weight: number; readonly sample: TextSample }[][] }> {
  try {
    return await renderedQueryTerms(h, o, side, log);
  } catch (e) {
    throw asQueryError(e, h);
  }
}

/**
 * A DdaError of the queries' rendering or encoding whose hint names an option of the build
 * (`--prompt-format`, `--max-length`, `--overlong`), which `dda index query` does not take: its
 * hint rewritten to say where those options go. Other errors as they are.
 */
function asQueryError(e: unknown, h: IndexHeader): unknown {
  if (!(e instanceof DdaError) || !/--(prompt-format|max-length|overlong)\b/.test(e.message)) return e;
  // The hint, where the error keeps it apart (a wrapped error has it in its message only).
  const own = e.hint !== undefined && e.message.endsWith(` (${e.hint})`) ? e.message.slice(0, -(e.hint.length + 3)) : e.message;
  // A wrapped error keeps its hint in the message: its advice to pass a build option becomes advice for the build.
  const message = own.replace(/\bpass (--(?:prompt-format|max-length|overlong)\b)/g, 'build the index with $1');
  return new DdaError(message, `dda index query renders and encodes the queries as the index's training samples were (its index.json: --prompt-format ${h.encoding.promptFormat}, --max-length ${h.encoding.maxLength}, --overlong ${h.encoding.overlong}) and takes none of these options: change the queries, or build the index with other options${e.hint !== undefined ? ` (for the build: ${e.hint})` : ''}`);
}

async function renderedQueryTerms(h: IndexHeader, o: Pick<IndexQueryOptions, 'queries' | 'queryFields'>, side: ModelSide, log: Log): Promise<{ queries: ReturnType<typeof querySamples>[]; terms: { readonly weight: number; readonly sample: TextSample }[][] }> {
  await ensurePlugins();
  const m = await measurements.create(h.measurement, {});
  const qd = await readQueryData(o.queries, { promptFormat: h.encoding.promptFormat, log, ...(o.queryFields ? { fields: o.queryFields } : {}) });
  if (qd.records.length === 0) throw new DdaError(`--queries ${o.queries}: no queries`);
  const queries = qd.records.map((r) => querySamples(side.base.tokenizer, r));
  // The rendering checks of `dda attribute` on the queries, against the training data's rendering the build recorded.
  const first = queries[0] as Query;
  log(queriesLine(qd.rendering, renderedSample(first.sample, first.record.where, side.base.tokenizer.eosText)));
  if (!h.trainingData) log('index: index.json records no checks of the training data (built by an earlier version): the queries\' prompt format and loss are not compared with the training data\'s; build the index again to have them');
  for (const w of renderingWarnings(side.base.tokenizer, null, queries, h.trainingData?.rendering ?? null)) log(`warning: ${w}`);
  const terms = measurementTermsOf(m, queries, (s, o) => side.task.encode(s, o));
  queries.forEach((q, i) => { for (const x of terms[i] ?? []) side.origins.set(x.sample.id, q.record.where); });
  return { queries, terms };
}

/**
 * The query loss check of `dda attribute` against an index: the mean loss of the query outputs at
 * the build's last checkpoint (the same content) against the loss on the training samples the build
 * measured there (index.json's `trainingData.loss`), computed with `model`. Skipped (logged) for an
 * index without that record, or whose last checkpoint is not among the query's with the same hashes.
 */
async function indexQueryLoss(h: IndexHeader, side: ModelSide, queries: readonly Query[], model: CheckpointModel, log: Log): Promise<QueryLossCheck | { readonly skipped: string }> {
  const skip = (why: string): { skipped: string } => {
    log(`query loss check skipped: ${why}`);
    return { skipped: why };
  };
  const rec = h.trainingData?.loss;
  if (!rec) return skip('the index records no loss on the training data (built by an earlier version)');
  const final = side.checkpoints.find((c) => c.id === rec.checkpoint);
  if (!final || differences(rec.checkpointHash, final.hash).length > 0) return skip(`the index's training loss was measured at ${rec.checkpoint}, which ${final ? 'has other content' : 'is not among the checkpoints'} here`);
  return compareQueryLoss(final, rec, queries.map((q) => q.sample), (cp, samples) => model.losses(cp, samples), log);
}

/** The queries' measurement gradients at `cp` (Σ_k w_k ∇ℓ(s_k) over each query's terms), projected with the index's projection. @throws DdaError when the index's tensors differ from the model's. */
async function projectedQueries(
  model: CheckpointModel, h: IndexHeader, dir: string, cp: Checkpoint, terms: readonly (readonly { readonly weight: number; readonly sample: TextSample }[])[], ids: readonly string[],
): Promise<Float64Array[]> {
  const g = await model.gradients(cp, terms.flat().map((t) => t.sample));
  const projector = new GradientProjector(h.projection, { names: g.parameterNames, sizes: g.parameterSizes });
  const layoutDiff = differences(h.modules, projector.modules, 'modules');
  if (layoutDiff.length > 0) throw new DdaError(`the index ${dir}'s tensors differ from the model's at ${h.checkpoint.id} (${layoutDiff.slice(0, 3).join('; ')})`, 'build the index again with this version');
  const rows: Float32Array[] = [];
  let k = 0;
  for (const [j, t] of terms.entries()) {
    const parts = t.map((x) => ({ weight: x.weight, row: g.rows[k++] as Float32Array }));
    const row = parts.length === 1 && parts[0]?.weight === 1 ? parts[0].row : combineGradientTerms(parts, g.dim, `query '${ids[j]}' at ${h.checkpoint.id}`);
    rows.push(row);
  }
  return (await projector.projectRows(rows)).rows;
}

/**
 * Every index row's score for every query, read in chunks of `chunkRows` rows: ⟨row_i, q_j⟩, or
 * with `normalize` their cosine (0 for a zero row or query), handed to `visit(i, j, score)`.
 */
function scoreIndexRows(
  dir: string, h: IndexHeader, queryRows: readonly Float64Array[], normalize: boolean, chunkRows: number, progress: ProgressSink | undefined, visit: (i: number, j: number, s: number) => void,
): void {
  const qNorms = queryNorms(queryRows);
  const bar = trackProgress(`scoring ${h.count} index rows × ${queryRows.length} queries at ${h.checkpoint.id}`, h.count, progress);
  for (let start = 0; start < h.count; start += chunkRows) {
    const end = Math.min(h.count, start + chunkRows);
    const rows = readIndexRows(dir, h, start, end);
    for (let r = 0; r < end - start; r++) {
      rowScores(rows, r * h.dim, h.dim, start + r, queryRows, qNorms, normalize, (i, row, score) => refuseNonFiniteScore(dir, h, i, row, score), (j, s) => visit(start + r, j, s));
    }
    bar.tick(end - start);
  }
}

/**
 * Refuses the non-finite score `score` of row `i` of the index in `dir` (values `row`), naming the
 * training row and its first non-finite entry, if any (else the query's projected gradient is to blame).
 *
 * @throws DdaError always.
 */
function refuseNonFiniteScore(dir: string, h: IndexHeader, i: number, row: Float32Array, score: number): never {
  const entry = row.findIndex((x) => !Number.isFinite(x));
  const where = `row ${i} (training sample '${h.trainIds[i]}') of ${join(dir, INDEX_FILES.rows)}`;
  if (entry >= 0) throw new DdaError(`${where} gives a non-finite score (${score}): its entry ${entry} is ${row[entry]}`, 'a build never writes one: the file was damaged after it; build the index again');
  throw new DdaError(`${where} gives a non-finite score (${score}) with a finite row: the query's projected gradient overflows`, 'check the query (and the checkpoint\'s loss on it)');
}

/** Each query's top list ({@link QueryTop}) from its best rows, with the training records' texts where known. */
function topsOf(queries: readonly ReturnType<typeof querySamples>[], best: readonly (readonly { i: number; s: number }[])[], trainIds: readonly string[], texts: Awaited<ReturnType<typeof trainingTexts>>['texts']): QueryTop[] {
  return queries.map((q, j) => ({
    queryId: q.record.id, group: q.record.group, prompt: q.sample.prompt, output: q.record.output, corrected: q.record.corrected, meta: q.record.meta,
    top: (best[j] ?? []).map((b, r): TopEntry => ({
      rank: r + 1, trainId: trainIds[b.i] as string, score: b.s, trueSource: null,
      where: texts?.[b.i]?.where ?? '', prompt: texts?.[b.i]?.prompt ?? '', response: texts?.[b.i]?.response ?? '',
    })),
    bottom: [],
  }));
}

/** Writes topk.csv, topk.jsonl and query.json (`summary`) into `out` (nothing without it); returns the paths. */
async function writeQueryOutputs(out: string | undefined, tops: readonly QueryTop[], summary: unknown): Promise<string[]> {
  if (!out) return [];
  mkdirSync(out, { recursive: true });
  const csv = join(out, 'topk.csv');
  const jsonl = join(out, 'topk.jsonl');
  await writeTopK(csv, jsonl, tops);
  const json = join(out, 'query.json');
  writeFileAtomic(json, `${JSON.stringify(summary, null, 1)}\n`);
  return [csv, jsonl, json];
}

/**
 * The place and text of the training records of `rows` (a top-k list's rows; the other entries left
 * empty), when the training file (`train`, else the one index.json records) is there with the
 * index's content; else null (logged, and said in `note`). The file is read as a stream (@dda/data's
 * scanTrainingData, every record still checked): memory holds the texts of `rows`, not the training set.
 *
 * @throws DdaError when `train` is given and is not the index's training file (another content).
 */
async function trainingTexts(h: IndexHeader, side: ModelSide, log: Log, rows: ReadonlySet<number>, train?: string): Promise<{ texts: { where: string; prompt: string; response: string }[] | null; note: string }> {
  const path = train ?? h.train.path;
  // A given --train was checked before the search ({@link checkTrainOption}); the recorded file may be gone or changed.
  const why = train !== undefined ? null : !existsSync(path) ? 'is not there' : hashData(path, '--train') !== h.train.bytes ? 'has changed since the build' : null;
  if (why) {
    const note = `the training file ${path} ${why}: the top-k lists give training ids without their texts`;
    log(`index: ${note}${why === 'is not there' ? ' (give --train with its new place)' : ''}`);
    return { texts: null, note };
  }
  const out: { where: string; prompt: string; response: string }[] = [];
  await scanTrainingData(path, { promptFormat: h.encoding.promptFormat, ...(h.train.fields ? { fields: h.train.fields } : {}) }, (r: TrainingRecord, i) => {
    // The file is the build's (its hash): its ids in order are the rows' ids, unless index.json was edited since.
    if (r.id !== h.trainIds[i]) {
      throw new DdaError(`${path}: record ${i + 1} is training sample '${r.id}', but index.json lists '${String(h.trainIds[i])}' for row ${i} (the training file has the content the build read, so index.json was changed after the build)`, 'build the index again (delete the folder first)');
    }
    if (!rows.has(i)) return;
    const s = trainingSample(side.base.tokenizer, r, h.encoding.lossOn);
    out[i] = { where: r.where, prompt: s.prompt, response: s.response };
  });
  return { texts: out, note: `texts read from ${path}` };
}


/**
 * `--train`, when given, checked before any work: there, and with the content index.json records
 * (its hash), so a wrong file is refused at once instead of after the queries' gradients and the
 * search.
 *
 * @throws DdaError naming the file and what index.json records.
 */
function checkTrainOption(h: IndexHeader, train: string | undefined): void {
  if (train === undefined) return;
  const why = !existsSync(train) ? 'is not there' : hashData(train, '--train') !== h.train.bytes ? 'is not the file the index was built from (its content hash differs from the one index.json records)' : null;
  if (why) throw new DdaError(`--train ${train} ${why}`, `give the training file the index was built from (index.json records ${h.train.path}), or drop --train`);
}

/** Options of {@link queryGradientIndexesDda}: those of {@link queryGradientIndex}, with several indexes and DDA's strategies. */
export interface IndexDdaQueryOptions extends Omit<IndexQueryOptions, 'index'> {
  /**
   * Index folders of one training set built with the same model, data, projection and measurement:
   * one at θ0 (`base`) and one per fine-tuning checkpoint to denoise over (at least one).
   */
  readonly indexes: readonly string[];
  /** Debiaser id, or null for none (default: the recommended DDA's, `fitted-beta`). */
  readonly debias?: string | null;
  /** Denoiser id, or null for the final checkpoint's scores (default: the recommended DDA's, `zscore-mean`). */
  readonly denoise?: string | null;
  /** β of the debiaser (default 1). */
  readonly beta?: number;
}

/** What {@link queryGradientIndexesDda} returns. */
export interface IndexDdaQueryResult {
  readonly headers: readonly IndexHeader[];
  /** The fine-tuning checkpoints denoised over, in training order. */
  readonly checkpoints: readonly string[];
  /** The DDA scores [n_train × n_queries] (higher = more responsible) and what they are. */
  readonly matrix: ScoreMatrix;
  readonly description: string;
  readonly tops: readonly QueryTop[];
  /** As {@link IndexQueryResult.queryLoss} (against the first index's record). */
  readonly queryLoss: QueryLossCheck | { readonly skipped: string };
  /** The projection's error against the DDA scores (estimated; recorded in query.json, warned about when large). */
  readonly projectionError: ProjectionErrorSummary;
  /** The estimated projection standard deviation of the DDA score of training row i for query j. */
  readonly projectionSd: (i: number, j: number) => number;
  readonly files: readonly string[];
}

/** The inputs every index of one DDA must share (all but the checkpoint, the engine, the float16 statistics and the recorded folders). */
function sharedIdentity(h: IndexHeader): unknown {
  return {
    model: h.model.hash, train: { bytes: h.train.bytes, samples: h.train.samples }, encoding: h.encoding, projection: h.projection,
    measurement: h.measurement, dim: h.dim, count: h.count, trainIds: hashOf(h.trainIds), modules: h.modules,
  };
}

/**
 * DDA over gradient indexes (Wu et al., EMNLP 2024, arXiv 2410.01285, on projected gradients): the
 * queries' projected measurement gradients scored against the index at θ0 and at each fine-tuning
 * checkpoint (⟨row_i, q_j⟩, or the cosine with `normalize`: grad-dot or grad-cos through the
 * projection), then denoised over the checkpoints and debiased with the θ0 scores by the registry's
 * strategies (default the recommended DDA: `zscore-mean` then `fitted-beta`, β = 1). One engine
 * decoder is moved across the checkpoints; the full [n_train × n_queries] matrix of each index is
 * kept in memory (float64). Writes topk.csv, topk.jsonl and query.json into `out`.
 *
 * @throws DdaError for fewer than two indexes, no θ0 index or two at one checkpoint, indexes built
 *   from different inputs (naming what differs), and whatever {@link queryGradientIndex} refuses.
 */
export async function queryGradientIndexesDda(o: IndexDdaQueryOptions): Promise<IndexDdaQueryResult> {
  const log = o.log ?? (() => {});
  if (o.out !== undefined) checkOutFolder(o.out);
  if (o.candidates !== undefined) throw new DdaError('--candidates (the approximate search) takes one --index: DDA over several indexes scores every row of each (its debiasing and denoising need whole score matrices)', 'drop --candidates, or query one index');
  if (o.indexes.length < 2) throw new DdaError(`DDA over indexes needs the index at θ0 (base) and at least one checkpoint's; ${o.indexes.length} given`, 'build one more with dda index build --checkpoint base (or a checkpoint) and pass every --index');
  const hs = o.indexes.map((d) => readIndexHeader(d, log));
  const first = hs[0] as IndexHeader;
  hs.forEach((h, k) => {
    const diff = differences(sharedIdentity(first), sharedIdentity(h));
    if (diff.length > 0) throw new DdaError(`the indexes ${o.indexes[0]} and ${o.indexes[k]} were not built from the same model, data, projection and measurement (${diff.slice(0, 4).join('; ')})`, 'build every index of one DDA with the same inputs and options, one checkpoint each');
  });
  const ids = hs.map((h) => h.checkpoint.id);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice !== undefined) throw new DdaError(`two indexes are at checkpoint ${twice}`, 'give one index per checkpoint');
  if (!ids.includes('base')) throw new DdaError(`no index is at θ0 (the checkpoints are ${ids.join(', ')})`, 'build one with dda index build --checkpoint base: DDA subtracts the θ0 scores');
  checkTrainOption(first, o.train);
  const topK = o.topK ?? 10;
  if (!Number.isInteger(topK) || topK < 1) throw new DdaError(`--top-k must be a positive integer, got ${topK}`);
  const normalize = o.normalize ?? false;
  // The method's options checked as dda attribute checks them (a --beta the debiaser would ignore is refused).
  await checkMethod({ scorer: normalize ? 'grad-cos' : 'grad-dot', debias: o.debias === undefined ? RECOMMENDED_DDA.debias : o.debias, denoise: o.denoise === undefined ? RECOMMENDED_DDA.denoise : o.denoise, beta: o.beta ?? RECOMMENDED_DDA.beta, betaGiven: o.beta !== undefined });
  const { base: b, checkpoints } = loadModelFiles(queryModelFiles(first, o.indexes[0] as string, o, log));
  hs.forEach((h, k) => {
    if (h.checkpoint.id === 'base' || checkpoints.some((c) => c.id === h.checkpoint.id)) return;
    const source = o.checkpoints ? `those given with --checkpoints (${o.checkpoints.join(', ')})` : `the checkpoints the index ${o.indexes[0]} records (${first.checkpoints.join(', ')})`;
    throw new DdaError(
      `the index ${o.indexes[k]} is at ${h.checkpoint.id} of the checkpoints ${h.checkpoints.join(', ')} (as its index.json records), but the checkpoints of this query are ${source}: ${checkpoints.map((c) => c.id).join(', ')}`,
      'build every index of one DDA from the same run (the same --base and --checkpoints, one --checkpoint each), or give --checkpoints with folders that hold every index\'s checkpoint',
    );
  });
  const sides = hs.map((h, k) => modelSideAt(b, checkpoints, h.checkpoint.id, h.encoding, `the index ${o.indexes[k]}`));
  hs.forEach((h, k) => checkQueryAgainst(h, { ...o, index: o.indexes[k] as string }, sides[k] as ModelSide));
  const side = sides[0] as ModelSide;
  const { queries, terms } = await queryTerms(first, o, side, log);
  const queryIds = queries.map((q) => q.record.id);
  const engine = await resolveGradientEngine(o.gradientEngine, log);
  const model = await CheckpointModel.open(side.task, { log, gradientEngine: engine, ...(o.backends ? { backends: o.backends } : {}) });
  const nq = queries.length;
  const units = normalize ? 'dimensionless (cosine of projected gradients)' : 'nats² per squared parameter unit (inner product of projected gradients)';
  const matrices = new Map<string, ScoreMatrix>();
  const projectedAt = new Map<string, ErrorIndex>();
  let queryLoss: QueryLossCheck | { readonly skipped: string };
  try {
    queryLoss = await indexQueryLoss(first, side, queries, model, log);
    for (const [k, h] of hs.entries()) {
      const dir = o.indexes[k] as string;
      const queryRows = await projectedQueries(model, h, dir, (sides[k] as ModelSide).checkpoint, terms, queryIds);
      projectedAt.set(h.checkpoint.id, { id: h.checkpoint.id, modules: h.modules, queries: queryRows, row: (i) => readIndexRows(dir, h, i, i + 1) });
      const values = new Float64Array(h.count * nq);
      scoreIndexRows(dir, h, queryRows, normalize, o.chunkRows ?? 1024, o.progress, (i, j, s) => (values[i * nq + j] = s));
      matrices.set(h.checkpoint.id, createScoreMatrix(h.trainIds, queryIds, values, {
        method: normalize ? 'grad-cos' : 'grad-dot', units, checkpoints: [h.checkpoint.id], transforms: [],
        computedOver: `${normalize ? 'cosine' : 'inner product'} of ${h.dim}-dimensional ${h.projection.kind} projections (seed ${h.projection.seed}) of per-example gradients: the training rows of the index ${dir}, the queries' ${h.measurement} gradients`,
      }));
    }
  } finally {
    await model.dispose();
  }
  const epochs = checkpoints.filter((c) => matrices.has(c.id));
  const missing = checkpoints.filter((c) => !matrices.has(c.id));
  if (missing.length > 0 && (o.denoise === undefined ? RECOMMENDED_DDA.denoise : o.denoise) !== null) {
    log(`warning: no index at ${missing.map((c) => c.id).join(', ')} of the run's checkpoints (${checkpoints.map((c) => c.id).join(', ')}): the denoiser averages over ${epochs.map((c) => c.id).join(', ')} only, not over every epoch checkpoint as DDA does; build an index at each (dda index build --checkpoint <id>) for the whole mean`);
  }
  const scorer = await scorers.create(normalize ? 'grad-cos' : 'grad-dot', {});
  const scores: CheckpointScores = { scorer, base: matrices.get('base') as ScoreMatrix, epochs: epochs.map((c) => matrices.get(c.id) as ScoreMatrix) };
  const debias = o.debias === undefined ? RECOMMENDED_DDA.debias : o.debias;
  const denoise = o.denoise === undefined ? RECOMMENDED_DDA.denoise : o.denoise;
  const beta = o.beta ?? RECOMMENDED_DDA.beta;
  const matrix = await ddaMatrix(scores, epochs.map((c) => c.info), { debias, denoise, beta });
  const description = describeScores(matrix);
  const error = await estimateProjectionError(['base', ...epochs.map((c) => c.id)].map((id) => projectedAt.get(id) as ErrorIndex), scores, epochs.map((c) => c.info), { debias, denoise, beta }, matrix, topK, normalize);
  if (error.summary.warning) log(`warning: ${error.summary.warning}`);
  const best = queries.map((_, j) => {
    const top: { i: number; s: number }[] = [];
    for (let i = 0; i < matrix.trainIds.length; i++) insertTop(top, i, matrix.values[i * nq + j] as number, topK);
    return top;
  });
  const texts = await trainingTexts(first, side, log, new Set(best.flat().map((b) => b.i)), o.train);
  const tops = topsOf(queries, best, matrix.trainIds, texts.texts);
  const files = await writeQueryOutputs(o.out, tops, {
    indexes: o.indexes.map((d) => resolve(d)), queries: resolve(o.queries), base: 'base', checkpoints: epochs.map((c) => c.id), measurement: first.measurement, projection: first.projection,
    normalize, dda: { debias, denoise, beta }, topK, scores: description, sign: 'higher = training sample more responsible for the query output', queryLoss,
    projectionError: error.summary, trainingTexts: texts.note,
  });
  return { headers: hs, checkpoints: epochs.map((c) => c.id), matrix, description, tops, queryLoss, projectionError: error.summary, projectionSd: error.sd, files };
}

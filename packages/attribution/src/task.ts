/**
 * The attribution contract, built from files: a base model θ0, the ordered checkpoints θ1..θN of
 * its fine-tuning run (with the learning rate in effect at each), the training samples, the
 * queries (outputs to explain, with optional corrections) and optional labels of true sources.
 * Nothing here knows how the model was made: `dda attribute` and the benchmark both build a task
 * from the files a fine-tuning run leaves on disk.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { DdaError, type CheckpointInfo, type Measurement, type MeasurementTerm, type TextSample } from '@dda/core';
import {
  type DataRendering, type FieldMap, type LabelSet, type PromptFormat, type QueryRecord, type TrainingRecord, readLabels, readQueryData, readTrainingData,
} from '@dda/data';
import {
  CHAT_TEMPLATE_FILE, CONFIG_FILE, HfTokenizer, TOKENIZER_CONFIG_FILE, WordTokenizer, TOKENIZER_FILE, chatSample, checkTokenizerFits, encodeSample, loadModelFolder, loadTokenizerFolder, savedTokenizerSettings, storedBaseWeights, tensorsEqual, type BaseWeightMap, type DecoderConfig,
  type EncodedExample, type LoraConfig, type ModelFamily, type OverlongPolicy, type TensorMap, type Tokenizer,
} from '@dda/model';
import { hashOf } from './artifacts.js';
import { type BaseMatch, baseMatchWarning, checkAdapterBase, describeBaseMatch } from './base-match.js';
import { type Checkpoint, loadCheckpoints } from './checkpoints.js';
import { hashData, hashFile, hashFiles } from './hashing.js';
import { type TruncatedSample, type TruncationReport, truncationReport } from './truncation.js';

/** The base model θ0. */
export interface BaseModel {
  readonly dir: string;
  readonly family: ModelFamily;
  readonly config: DecoderConfig;
  /**
   * The base weights as float32 (Hugging Face names). A folder loaded by {@link loadBaseModel}
   * widens a BF16/F16 folder's tensors on first access (then keeps them: 4 bytes a weight), so a
   * run that only needs {@link narrowWeights} never holds a float32 copy.
   */
  readonly weights: TensorMap;
  /**
   * The base weights as stored when the folder holds BF16 or F16 tensors (2 bytes a weight, read
   * on first call and kept; see @dda/model's `storedBaseWeights`: BF16 as scaled half where every
   * value fits), for an engine that takes narrow base weights (`DecoderEngine.openNarrow`); null for
   * an all-F32 folder (nothing to save). Absent on a base model built in memory.
   */
  readonly narrowWeights?: () => BaseWeightMap | null;
  readonly tokenizer: Tokenizer;
  /** Bytes of the base tensors as stored in the folder (absent on a base model built in memory); bounds the gradient blocks (`maxBlockBytes`). */
  readonly storedBytes?: number;
  /** The folder the tokenizer and chat template were read from: `dir`, or the one given with `--tokenizer`. */
  readonly tokenizerDir: string;
  /** Content hashes: config.json, tokenizer files, weight files. */
  readonly hash: Readonly<Record<string, string>>;
}

/** A query as the model sees it, with its corrected version when given. */
export interface Query {
  readonly record: QueryRecord;
  /** Prompt (rendered) + the output to explain as the response. */
  readonly sample: TextSample;
  /** The same prompt with the corrected output, or null. */
  readonly correction: TextSample | null;
}

/** A loaded attribution task. */
export interface AttributionTask {
  readonly base: BaseModel;
  /**
   * θ0 in the space of the trainable parameters: with LoRA checkpoints an adapter that leaves the
   * base model unchanged (lora_B = 0) with the lora_A of the final checkpoint, so that gradients at
   * θ0 and at θ1..θN are over the same coordinates; with full checkpoints the base weights.
   */
  readonly baseCheckpoint: Checkpoint;
  /** θ1..θN in training order. */
  readonly checkpoints: readonly Checkpoint[];
  /** How the adapters' `base_model_name_or_path` was matched to the base model folder (recorded in summary.json). */
  readonly baseMatch: BaseMatch;
  readonly train: { readonly records: readonly TrainingRecord[]; readonly samples: readonly TextSample[] };
  readonly queries: readonly Query[];
  /** True sources per query or group, or null. */
  readonly labels: readonly LabelSet[] | null;
  /** Context length used (the model's, or --max-length) and what happens to longer records. */
  readonly encoding: { readonly maxLength: number; readonly overlong: OverlongPolicy };
  /** The samples `overlong: 'truncate'` cut to fit the context (none under `fail`). */
  readonly truncated: TruncationReport;
  /** Content hashes of every input, for manifests and summary.json. */
  readonly hashes: Readonly<Record<string, unknown>>;
  /** Encodes a sample with the base tokenizer and the task's length policy; `origin` is named in errors. */
  encode(sample: TextSample, origin?: string): EncodedExample;
  /** Where a training or query id came from (file:line), for errors. */
  origin(id: string): string | undefined;
  /** How the records were read and rendered (recorded in summary.json). */
  readonly rendering: TaskRendering;
}

/** How a task's records were read and rendered into model input. */
export interface TaskRendering {
  readonly promptFormat: PromptFormat;
  /** Where the chat template came from (e.g. `tokenizer_config.json`), or null when no record uses one. */
  readonly template: string | null;
  readonly train: DataRendering;
  readonly queries: DataRendering;
  /** The first training sample and the first query as the model sees them (template applied). */
  readonly first: { readonly train: RenderedSample; readonly query: RenderedSample };
}

/** A sample as the model sees it: its text in order, piece by piece, each with whether it carries the loss. */
export interface RenderedSample {
  readonly id: string;
  readonly where: string;
  /** A prompt/response pair is two pieces; a multi-turn sample alternates (see TextSample.segments). */
  readonly pieces: readonly { readonly text: string; readonly loss: boolean }[];
  /** The EOS token encoding appends after the response of a prompt/response pair (it carries the loss), by its text; absent for a rendered conversation, whose template writes its end token. */
  readonly appendedEos?: string;
}

/** The files (and options) of a task; see `dda attribute --help`. */
export interface TaskFiles {
  /** Hugging Face model folder of θ0 (config.json, safetensors, tokenizer.json, tokenizer_config.json). */
  readonly base: string;
  /** Checkpoint folders or trainer output folders, in order. */
  readonly checkpoints: readonly string[];
  /** Training data: a .jsonl, .json, .csv or .parquet file, a datasets save_to_disk folder, or `dataset_info.json#name` (see @dda/data's readTrainingData). */
  readonly train: string;
  /** Queries, in the formats of `train`. */
  readonly queries: string;
  /** Labels file (true sources per query or group), optional. */
  readonly labels?: string;
  /** Column-name mapping of the training data file (ours → the file's column). */
  readonly fields?: FieldMap;
  /** Column-name mapping of the queries file. */
  readonly queryFields?: FieldMap;
  /** How `prompt` strings are used (default raw). */
  readonly promptFormat?: PromptFormat;
  /** Longest sequence in tokens (default: the model's max_position_embeddings). */
  readonly maxLength?: number;
  /** Records longer than maxLength: fail (default) or truncate. */
  readonly overlong?: OverlongPolicy;
  /** Learning rate at each checkpoint, overriding trainer_state.json. */
  readonly learningRates?: readonly number[];
  /**
   * The Hub id of the model in `base` (`--base-name`), declared where its folder has another name than
   * the `base_model_name_or_path` the adapters name (see {@link checkAdapterBase}).
   */
  readonly baseName?: string;
  /**
   * The date (YYYY-MM-DD, `--chat-date`) a chat template that writes the date renders (its
   * `strftime_now`, e.g. Llama-3.x's "Today Date"): the day the training data was rendered. Default
   * @dda/model's DEFAULT_CHAT_DATE, never the clock.
   */
  readonly chatDate?: string;
  /**
   * A folder whose tokenizer (tokenizer.json, tokenizer_config.json, chat_template.jinja) renders
   * the data instead of the base folder's (`--tokenizer`), e.g. a checkpoint where the trainer saved
   * the tokenizer it trained with. Given, the checkpoints' saved tokenizers are not compared with it.
   */
  readonly tokenizer?: string;
  /** Which tokens of a training conversation carry the loss (default `assistant`, see {@link LossOn}). */
  readonly lossOn?: LossOn;
  /** Where the checkpoints' resolution ({@link loadCheckpoints}: a final adapter not counted twice, checks skipped), warnings about the data (fields read and not used) and the rendered first samples go. */
  readonly log?: (line: string) => void;
}

/** TRL's default SFTConfig.max_length (tokens): longer training records are warned about when no --max-length is given. */
export const TRAINER_MAX_LENGTH = 1024;

/**
 * Which tokens of a conversation carry the training loss: `assistant` (the assistant turns and the
 * token that ends each, as TRL's `assistant_only_loss=True` and LLaMA-Factory do; the default) or
 * `all` (every token of the rendered conversation, TRL's SFTTrainer default for conversational
 * `messages` data). Prompt/response records always take the loss over the response (TRL's
 * completion-only default for prompt-completion data).
 */
export type LossOn = 'assistant' | 'all';

/**
 * The training sample of a record (its prompt rendered with the chat template where it is a
 * conversation; with `lossOn` `all`, every piece of a conversation carries the loss).
 */
export function trainingSample(tok: Tokenizer, r: TrainingRecord, lossOn: LossOn = 'assistant'): TextSample {
  if ('raw' in r.content) return { id: r.id, prompt: r.content.raw.prompt, response: r.content.raw.response };
  const s = chatSample(tok, r.id, r.content.chat, r.where);
  if (lossOn === 'assistant') return s;
  return { ...s, segments: (s.segments ?? [{ text: s.prompt, loss: false }, { text: s.response, loss: true }]).map((x) => ({ ...x, loss: true })) };
}

/**
 * The query sample (and its correction) of a query record. A conversational prompt is rendered as
 * training renders a conversation ({@link chatSample}): the output is its last assistant turn,
 * followed by the template's end-of-turn token (`<|eot_id|>` for Llama-3), the loss over both only;
 * a raw prompt is followed by the output and EOS.
 */
export function querySamples(tok: Tokenizer, q: QueryRecord): Query {
  const of = (response: string): TextSample => {
    if ('raw' in q.prompt) return { id: q.id, prompt: q.prompt.raw, response };
    const segments = chatSample(tok, q.id, [...q.prompt.chat, { role: 'assistant', content: response }], q.where).segments ?? [];
    // The loss over the output only, not over assistant turns the prompt holds.
    const last = segments.map((x) => x.loss).lastIndexOf(true);
    return { id: q.id, prompt: tok.renderChat(q.prompt.chat, true), response, segments: segments.map((x, k) => ({ text: x.text, loss: k === last })) };
  };
  return { record: q, sample: of(q.output), correction: q.corrected === null ? null : of(q.corrected) };
}

/** The zero-effect adapter at θ0: the final checkpoint's lora_A, lora_B = 0. */
function baseAdapter(final: Checkpoint): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, t] of final.weights) out.set(name, /\.lora_B\.weight$/.test(name) ? { shape: t.shape, data: new Float32Array(t.data.length) } : t);
  return out;
}

/**
 * θ0 as a checkpoint in the trainable parameters' space (see {@link AttributionTask.baseCheckpoint}).
 */
export function baseCheckpointOf(base: BaseModel, checkpoints: readonly Checkpoint[]): Checkpoint {
  const final = checkpoints[checkpoints.length - 1];
  if (!final) throw new DdaError('no checkpoints', 'give at least one checkpoint of the fine-tuning run');
  const info: CheckpointInfo = { id: 'base', epoch: 0, learningRate: Number.NaN };
  if (final.kind === 'lora') {
    return { id: 'base', dir: base.dir, kind: 'lora', weights: baseAdapter(final), lora: final.lora as LoraConfig, step: 0, info, hash: { adapterAFrom: final.id, ...final.hash } };
  }
  return { id: 'base', dir: base.dir, kind: 'full', weights: base.weights, lora: null, step: 0, info, hash: {} };
}

/**
 * Loads the base model folder: it must have weights and a tokenizer. Its config, tokenizer and the
 * weights' names and shapes (from the safetensors headers) are read and checked now; the tensors
 * themselves when first used, as float32 (`weights`) or as stored (`narrowWeights`).
 *
 * @param chatDate - The date a template that writes the date renders (see {@link TaskFiles.chatDate}).
 * @throws DdaError without a tokenizer, or for `chatDate` given to a tokenizer whose template writes no date (it would be ignored).
 */
export function loadBaseModel(dir: string, chatDate?: string, tokenizerDir?: string): BaseModel {
  // With --tokenizer the base folder's own tokenizer is neither read nor checked (it may be missing or another run's).
  // Lazily: the weights are read when first needed, as float32 (weights) or as stored (narrowWeights).
  const m = loadModelFolder(dir, tokenizerDir === undefined ? { lazy: true } : { tokenizer: false, lazy: true });
  let tokenizer = tokenizerDir === undefined ? m.tokenizer : loadTokenizerFolder(tokenizerDir, m.family);
  if (tokenizerDir !== undefined && !tokenizer) throw new DdaError(`--tokenizer ${tokenizerDir}: no ${TOKENIZER_FILE}`, 'give a folder with the tokenizer the run trained with (a checkpoint where the trainer saved it, or the base folder)');
  if (!tokenizer) throw new DdaError(`--base ${dir}: no ${TOKENIZER_FILE}`, `the base model folder needs the tokenizer it was trained with (${TOKENIZER_FILE}, and ${TOKENIZER_CONFIG_FILE} for its chat template)`);
  if (tokenizerDir !== undefined) checkTokenizerFits(tokenizer, m.config);
  if (chatDate !== undefined) {
    if (!(tokenizer instanceof HfTokenizer) || tokenizer.chatDate === null) throw new DdaError(`--chat-date ${chatDate} has no effect: the chat template of ${dir} writes no date (no strftime_now)`, 'drop --chat-date');
    tokenizer = tokenizer.withChatDate(chatDate);
  }
  const weightFiles = readdirSync(dir).filter((f) => f.endsWith('.safetensors') || f.endsWith('.safetensors.index.json')).sort();
  const lazy = m.weights;
  let float: TensorMap | undefined;
  let narrow: BaseWeightMap | null | undefined;
  return {
    dir: resolve(dir), family: m.family, config: m.config,
    get weights(): TensorMap {
      float ??= lazy.toTensorMap();
      return float;
    },
    narrowWeights: (): BaseWeightMap | null => {
      narrow ??= lazy.dtypes.some((d) => d !== 'F32') ? storedBaseWeights(lazy) : null;
      return narrow;
    },
    tokenizer, tokenizerDir: resolve(tokenizerDir ?? dir), storedBytes: lazy.storedBytes,
    hash: tokenizerDir === undefined
      ? hashFiles(dir, [CONFIG_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, CHAT_TEMPLATE_FILE, ...weightFiles])
      : { ...hashFiles(dir, [CONFIG_FILE, ...weightFiles]), ...Object.fromEntries(Object.entries(hashFiles(tokenizerDir, [TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, CHAT_TEMPLATE_FILE])).map(([k, v]) => [`tokenizer:${k}`, v])) },
  };
}

/**
 * Refuses a checkpoint that computes exactly the base model: a full checkpoint with the base's
 * weights (the base folder given as a checkpoint), or an adapter whose every `lora_B` is zero (so
 * B·A adds nothing: an adapter saved before its first update) and whose saved modules, if any,
 * equal the base's. Its scores would be rounding noise around zero, and DDA's debias would
 * subtract θ0 from itself.
 *
 * @throws DdaError naming the checkpoint and what it equals.
 */
export function refuseUnchangedCheckpoints(base: Pick<BaseModel, 'dir' | 'weights'>, checkpoints: readonly Pick<Checkpoint, 'dir' | 'kind' | 'weights' | 'saved'>[]): void {
  for (const c of checkpoints) {
    if (c.kind === 'full') {
      if (tensorsEqual(c.weights, base.weights)) {
        throw new DdaError(`checkpoint ${c.dir} holds exactly the weights of --base ${base.dir}: it is the base model (θ0), not a fine-tuned checkpoint, and every score at it would be zero up to rounding`, 'give the checkpoints the fine-tuning saved (--checkpoints), and the model they started from as --base');
      }
      continue;
    }
    const bs = [...c.weights].filter(([name]) => name.includes('lora_B'));
    if (bs.length === 0 || !bs.every(([, t]) => t.data.every((x) => x === 0))) continue;
    // Saved modules (modules_to_save) replace the base's tensors of the same names: unchanged only when equal to them.
    const saved: TensorMap = c.saved?.weights ?? new Map();
    const replaced: TensorMap = new Map([...saved.keys()].flatMap((name) => {
      const b = base.weights.get(name);
      return b === undefined ? [] : [[name, b] as const];
    }));
    if (!tensorsEqual(saved, replaced)) continue;
    throw new DdaError(
      `checkpoint ${c.dir} adds nothing to --base ${base.dir}: every lora_B of its adapter is zero (${bs.length} tensors), so B·A is zero${saved.size ? ' and its saved modules equal the base\'s' : ''}: an adapter saved before any training step (PEFT initialises B to zero), and every score at it would be zero up to rounding`,
      'give only checkpoints saved after training steps (leave this one out of --checkpoints)',
    );
  }
}

/** The inputs that say which model: the base folder, the checkpoints and how to read them. */
export type ModelFiles = Pick<TaskFiles, 'base' | 'checkpoints' | 'learningRates' | 'baseName' | 'chatDate' | 'tokenizer' | 'log'>;

/**
 * Loads the base model and the checkpoints and checks that they belong together, as every command
 * that reads a fine-tuning run does: the adapters' `base_model_name_or_path` against the base
 * ({@link checkAdapterBase}), a tokenizer the trainer saved beside the checkpoints (unless
 * `tokenizer` picks one), and a warning for a chat template that writes the date; each decision is logged.
 *
 * @throws DdaError as {@link loadBaseModel}, {@link loadCheckpoints}, {@link checkAdapterBase} and {@link checkSavedTokenizers}.
 */
export function loadModelFiles(f: ModelFiles): { base: BaseModel; checkpoints: Checkpoint[]; baseMatch: BaseMatch } {
  const base = loadBaseModel(f.base, f.chatDate, f.tokenizer);
  const checkpoints = loadCheckpoints(f.checkpoints, { base: base.config, ...(f.learningRates ? { learningRates: f.learningRates } : {}), ...(f.log ? { log: f.log } : {}) });
  refuseUnchangedCheckpoints(base, checkpoints);
  const log = f.log ?? (() => {});
  const date = base.tokenizer instanceof HfTokenizer ? base.tokenizer.chatDate : null;
  if (date !== null) log(`warning: the chat template writes the date into the prompts (strftime_now); rendered as ${date}${f.chatDate === undefined ? ' (the default; transformers rendered the day training ran)' : ' (--chat-date)'}, so pass --chat-date with the day the training data was rendered if it differs`);
  if (f.tokenizer === undefined) checkSavedTokenizers(base, checkpoints);
  else log(`tokenizer and chat template: from ${base.tokenizerDir} (--tokenizer)`);
  const named = checkpoints.find((c) => c.adapterBase !== undefined);
  const baseMatch: BaseMatch = named ? checkAdapterBase(named.dir, named.adapterBase ?? null, base.dir, f.baseName) : { adapterBase: null, how: 'unnamed', matchedWith: null };
  if (named) {
    log(`checkpoints: trained on '${baseMatch.adapterBase}' (base_model_name_or_path of ${named.dir}), ${describeBaseMatch(baseMatch)}`);
    const weak = baseMatchWarning(baseMatch);
    if (weak !== null) log(weak);
  } else if (checkpoints.some((c) => c.kind === 'lora')) log(`checkpoints: the adapters name no base model (base_model_name_or_path is empty): that they were trained on --base ${base.dir} is not checked`);
  return { base, checkpoints, baseMatch };
}

/**
 * Loads a task from files and checks it before any model work: every record and query encodes
 * within the context length (or is truncated, with `overlong: 'truncate'`), checkpoints fit the
 * base, labels name known queries, groups and training ids.
 *
 * @throws DdaError naming the file and record for every bad input (see @dda/data and
 *   {@link loadCheckpoints}), and for an empty training or query file.
 */
export async function loadTask(f: TaskFiles): Promise<AttributionTask> {
  const { base, checkpoints, baseMatch } = loadModelFiles(f);
  const log = f.log ?? (() => {});
  const promptFormat = f.promptFormat ?? 'raw';
  const trainData = await readTrainingData(f.train, { promptFormat, log, ...(f.fields ? { fields: f.fields } : {}) });
  const queryData = await readQueryData(f.queries, { promptFormat, log, ...(f.queryFields ? { fields: f.queryFields } : {}) });
  const trainRecords = trainData.records;
  const queryRecords = queryData.records;
  const maxLength = f.maxLength ?? base.config.maxSeqLen;
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new DdaError(`--max-length must be an integer ≥ 2, got ${maxLength}`);
  if (maxLength > base.config.maxSeqLen) throw new DdaError(`--max-length ${maxLength} is longer than the model's context (${base.config.maxSeqLen}, max_position_embeddings of ${base.dir})`, `use at most ${base.config.maxSeqLen}`);
  const overlong = f.overlong ?? 'fail';
  const tok = base.tokenizer;
  const origins = new Map<string, string>();
  const samples = trainRecords.map((r) => {
    origins.set(`train:${r.id}`, r.where);
    return trainingSample(tok, r, f.lossOn);
  });
  const queries = queryRecords.map((q) => {
    origins.set(`query:${q.id}`, q.where);
    return querySamples(tok, q);
  });
  const limitName = f.maxLength === undefined ? "the model's context" : '--max-length';
  const encode = (s: TextSample, origin?: string): EncodedExample => encodeSample(tok, s, maxLength, { overlong, limitName, ...(origin ? { origin } : {}) });
  // Every length limit is checked before any model work, naming the record; what truncate cuts is reported.
  const cut: TruncatedSample[] = [];
  const check = (s: TextSample, kind: TruncatedSample['kind'], where: string): EncodedExample =>
    encodeSample(tok, s, maxLength, { overlong, limitName, origin: kind === 'correction' ? `${where} (corrected)` : where, onTruncate: (c) => cut.push({ id: s.id, kind, where, ...c }) });
  const long: string[] = [];
  trainRecords.forEach((r, i) => {
    if (check(samples[i] as TextSample, 'train', r.where).tokens.length > TRAINER_MAX_LENGTH) long.push(r.where);
  });
  // Trainers cut long records at their own limit (TRL's SFTConfig.max_length, 1,024 by default, keeping the start):
  // attributing the whole record takes gradients of tokens the model never trained on.
  if (f.maxLength === undefined && long.length > 0) log(`warning: ${long.length} training record(s) are longer than ${TRAINER_MAX_LENGTH} tokens (first: ${long.slice(0, 3).join(', ')}), TRL's default max_length; if the trainer cut them, pass --max-length with its limit (the tool keeps the response and cuts the prompt from the left with --overlong truncate; a trainer that kept the start cut the response's end instead, which no option reproduces yet)`);
  for (const q of queries) {
    check(q.sample, 'query', q.record.where);
    if (q.correction) check(q.correction, 'correction', q.record.where);
  }
  const rendering = renderingOf(tok, promptFormat, trainData.rendering, queryData.rendering, trainRecords, samples, queries);
  log(trainingDataLine(rendering.train, rendering.first.train));
  log(queriesLine(rendering.queries, rendering.first.query));
  for (const w of renderingWarnings(tok, { records: trainRecords, samples }, queries, trainingShape(trainRecords, samples))) log(`warning: ${w}`);
  const groups = [...new Set(queryRecords.flatMap((q) => (q.group === null ? [] : [q.group])))];
  const labels = f.labels ? await readLabels(f.labels, { queryIds: queryRecords.map((q) => q.id), queryGroups: queryRecords.map((q) => q.group), groups, trainIds: trainRecords.map((r) => r.id) }, log) : null;
  const baseCheckpoint = baseCheckpointOf(base, checkpoints);
  return {
    base, baseCheckpoint, checkpoints, baseMatch,
    train: { records: trainRecords, samples },
    queries,
    labels,
    encoding: { maxLength, overlong },
    truncated: truncationReport(maxLength, limitName, cut),
    hashes: {
      base: base.hash,
      checkpoints: Object.fromEntries(checkpoints.map((c) => [c.id, c.hash])),
      learningRates: checkpoints.map((c) => c.info.learningRate),
      train: { file: basename(f.train), bytes: hashData(f.train, '--train'), samples: hashOf(samples) },
      queries: { file: basename(f.queries), bytes: hashData(f.queries, '--queries'), samples: hashOf(queries.map((q) => [q.sample, q.correction, q.record.group])) },
      ...(f.labels ? { labels: hashFile(f.labels) } : {}),
      encoding: { maxLength, overlong },
    },
    encode,
    origin: (id) => origins.get(`train:${id}`) ?? origins.get(`query:${id}`),
    rendering,
  };
}

/**
 * The terms of measurement `m` of every query (see Measurement in @dda/core), checked: each term
 * sample encoded within the context (`encode` throws naming the query), and a query whose terms,
 * as encoded (tokens and loss mask), cancel out refused: an output and its correction that differ
 * only in what the tokenizer does not tell apart (e.g. two words outside a word vocabulary, both the
 * unknown token) have f = 0 at every checkpoint, and so would every score. Shared by `dda attribute`
 * (AttributionRun) and `dda index query`.
 *
 * @returns The terms of each query, in query order.
 * @throws DdaError naming the query (its file line) that cannot be measured; where several cannot,
 *   one error listing each of them, so they are fixed in one go.
 */
export function measurementTermsOf(m: Measurement, queries: readonly Query[], encode: (sample: TextSample, origin?: string) => EncodedExample): MeasurementTerm[][] {
  const problems: string[] = [];
  const out = queries.map((q) => {
    const where = q.record.where;
    try {
      const terms = m.terms(q.sample, q.correction);
      const weights = new Map<string, number>();
      for (const t of terms) {
        const e = encode(t.sample, `${where} (measurement '${m.id}')`);
        const key = `${Array.from(e.tokens).join(',')}|${Array.from(e.lossMask).join(',')}`;
        weights.set(key, (weights.get(key) ?? 0) + t.weight);
      }
      if (terms.length > 1 && [...weights.values()].every((w) => w === 0)) {
        throw new DdaError(
          `${where}: under measurement '${m.id}' the query's terms encode to the same tokens with opposite weights (the output and its correction differ only in what the tokenizer does not tell apart, e.g. words outside its vocabulary that all become the unknown token), so the measurement is 0 at every checkpoint and every score would be 0`,
          'correct the query with words the tokenizer knows (the log lists words outside the vocabulary), or use a tokenizer that tells them apart',
        );
      }
      return [...terms];
    } catch (e) {
      if (!(e instanceof DdaError)) throw e;
      // The measurement's own errors do not know the query; the encoder's and the check above name it.
      problems.push(e.message.startsWith(where) ? e.message : `${where}: ${e.message}`);
      return [];
    }
  });
  if (problems.length === 1) throw new DdaError(problems[0] as string);
  if (problems.length > 1) throw new DdaError(`${problems.length} of ${queries.length} queries cannot be measured under '${m.id}':\n${problems.map((p) => `- ${p}`).join('\n')}`);
  return out;
}

/**
 * A sample's pieces as the model sees them (every piece of a multi-turn sample, by whether it
 * carries the loss); a prompt/response pair also with the EOS token that encoding appends after the
 * response (a chat template writes its end token as text).
 */
export function renderedSample(s: TextSample, where: string, eosText: string): RenderedSample {
  const pieces = s.segments ?? [{ text: s.prompt, loss: false }, { text: s.response, loss: true }];
  return { id: s.id, where, pieces: pieces.map((x) => ({ text: x.text, loss: x.loss })), ...(s.segments ? {} : { appendedEos: eosText }) };
}

/** Where the base model's tokenizer was read from, for summary.json (see {@link tokenizerRecord}). */
export interface TokenizerRecord {
  /** The tokenizer.json read. */
  readonly file: string;
  readonly kind: Tokenizer['kind'];
  /** The file the chat template was read from, or which built-in template was used and why. */
  readonly chatTemplate: string;
  /** The EOS token's text and the token that ends a chat response (Tokenizer.endOfTurn, e.g. `<|eot_id|>`). */
  readonly eos: string;
  readonly endOfTurn: string;
  /** The date the template's `strftime_now` rendered (YYYY-MM-DD); absent when the template writes no date. */
  readonly chatDate?: string;
}

/** What the base model's tokenizer and chat template were read from, so that a user can check them. */
export function tokenizerRecord(base: BaseModel): TokenizerRecord {
  const tok = base.tokenizer;
  const source = templateSource(tok);
  const dir = base.tokenizerDir;
  const chatTemplate = source === TOKENIZER_CONFIG_FILE || source === CHAT_TEMPLATE_FILE
    ? join(dir, source)
    : source.startsWith('family:') ? `the ${source.slice('family:'.length)} family's built-in template (${join(dir, TOKENIZER_CONFIG_FILE)} has no chat_template, and there is no ${CHAT_TEMPLATE_FILE})` : source;
  const date = tok instanceof HfTokenizer ? tok.chatDate : null;
  return { file: join(dir, TOKENIZER_FILE), kind: tok.kind, chatTemplate, eos: tok.eosText, endOfTurn: tok.endOfTurn.text, ...(date !== null ? { chatDate: date } : {}) };
}

/**
 * Records with words a word-level tokenizer does not know (they become `<unk>`, so the model sees
 * another text than the record's, and its scores change silently), or null: the number, the first
 * few records and their words. Subword tokenizers know every text.
 */
export function unknownWordsOf(tok: Tokenizer, items: readonly { readonly where: string; readonly sample: TextSample }[]): string | null {
  const u = new UnknownWords(tok);
  for (const { where, sample } of items) u.add(where, sample);
  return u.message();
}

/** {@link unknownWordsOf}, one item at a time: keeps the count and the first three. */
class UnknownWords {
  private readonly words: ((text: string) => string[]) | null;
  private found = 0;
  private readonly first: { readonly where: string; readonly w: readonly string[] }[] = [];

  constructor(private readonly tok: Tokenizer) {
    const words = (tok as { unknownWords?: (text: string) => string[] }).unknownWords;
    this.words = typeof words === 'function' ? words : null;
  }

  add(where: string, sample: TextSample): void {
    if (!this.words) return;
    const text = sample.segments ? sample.segments.map((x) => x.text).join('') : `${sample.prompt} ${sample.response}`;
    const w = [...new Set(this.words.call(this.tok, text))];
    if (w.length === 0) return;
    this.found++;
    if (this.first.length < 3) this.first.push({ where, w });
  }

  message(): string | null {
    if (this.found === 0) return null;
    return `${this.found} record(s) have words outside the model's word-level vocabulary, which the tokenizer maps to <unk>, so the model reads another text than the record's: ${this.first.map((f) => `${f.where}: ${f.w.slice(0, 5).map((x) => JSON.stringify(x)).join(', ')}`).join('; ')}${this.found > 3 ? '; …' : ''} (the vocabulary was built from the data the model was trained on; remove or replace these words, or use a model with a subword tokenizer)`;
  }
}

/** The prompt text a sample starts with (its first segment for a rendered conversation). */
const promptText = (s: TextSample): string => s.segments?.[0]?.text ?? s.prompt;

/**
 * What the queries' rendering is compared with ({@link renderingMismatch}): how the training samples
 * were rendered, in a few fields (a gradient index records it in index.json, so that its queries
 * are checked without the training data at hand).
 */
export interface TrainingShape {
  /** Training records, and how many of them are conversations rendered with the chat template. */
  readonly records: number;
  readonly chat: number;
  /**
   * When every record is a conversation, or none is: the text all the rendered samples' prompts begin
   * with (at most 40 characters; raw prompts written already rendered with the template, e.g.
   * `<|user|> ...`, share its opening), else null (also for raw prompts with no common start).
   */
  readonly prefix: string | null;
  /** When every record is a conversation with one and the same system turn: that turn (null: none); absent otherwise. */
  readonly system?: string | null;
}

/** The {@link TrainingShape} of training records and their samples. */
export function trainingShape(trainRecords: readonly TrainingRecord[], samples: readonly TextSample[]): TrainingShape {
  const s = new TrainingShapes();
  trainRecords.forEach((r, i) => s.add(r, samples[i] as TextSample));
  return s.shape();
}

/** {@link trainingShape}, one record at a time: keeps the counts, the common prefix so far and the system turn. */
class TrainingShapes {
  private records = 0;
  private chat = 0;
  private prefix: string | null = null;
  private system: { readonly text: string | null } | null = null;
  private systems = 0; // distinct system turns, counted to 2

  add(r: TrainingRecord, s: TextSample): void {
    this.records++;
    const t = promptText(s);
    if (this.prefix === null) this.prefix = t;
    while (!t.startsWith(this.prefix)) this.prefix = this.prefix.slice(0, -1);
    if (!('chat' in r.content)) return; // the system turn is of an all-chat set only
    this.chat++;
    const system = systemOf(r.content.chat);
    if (this.system === null) {
      this.system = { text: system };
      this.systems = 1;
    } else if (this.system.text !== system) this.systems = 2;
  }

  shape(): TrainingShape {
    const { records, chat } = this;
    if (chat !== records) return { records, chat, prefix: chat === 0 && this.prefix ? this.prefix.slice(0, 40) : null };
    return { records, chat, prefix: (this.prefix ?? '').slice(0, 40), ...(this.systems === 1 ? { system: this.system?.text ?? null } : {}) };
  }
}

/** The system turn a conversation begins with, or null. */
const systemOf = (m: readonly { role: string; content: string }[]): string | null => (m[0]?.role === 'system' ? m[0].content : null);

/**
 * A difference between how the training samples (their {@link TrainingShape}) and the queries are
 * rendered that would make the queries' gradients come from another input distribution than
 * training's, or null. When every training sample is a conversation rendered with the chat template
 * and they all begin alike, queries with a raw prompt (used as written) that does not begin that way
 * are named; and when every training sample is raw, queries given as conversations. A warning, not a
 * refusal: a raw prompt may be rendered already, and a model may be meant to see both.
 */
export function renderingMismatch(train: TrainingShape, queries: readonly Query[]): string | null {
  const isChat = (q: Query): boolean => typeof q.record.prompt === 'object' && q.record.prompt !== null && 'chat' in q.record.prompt;
  const rawQueries = queries.filter((q) => !isChat(q));
  if (train.chat === train.records && rawQueries.length > 0) {
    const prefix = train.prefix ?? '';
    if (prefix.trim().length < 3) return null;
    const off = rawQueries.filter((q) => !promptText(q.sample).startsWith(prefix));
    if (off.length === 0) return null;
    return `the training samples are conversations rendered with the chat template (every one begins ${JSON.stringify(prefix)}), but ${off.length} of ${queries.length} queries give a raw prompt that does not (e.g. ${off[0]?.record.where}: ${JSON.stringify(promptText((off[0] as Query).sample).slice(0, 60))}); the model would be asked about text shaped unlike its training, and the scores shift without any error. Give the queries as conversations (a messages or system/instruction field), as the training data, or render their prompts with the template`;
  }
  if (train.chat === 0 && rawQueries.length < queries.length) {
    // Raw prompts written already rendered (they open as the template renders the queries): the same rendering.
    const prefix = train.prefix ?? '';
    if (prefix.trim().length >= 8 && queries.every((q) => !isChat(q) || promptText(q.sample).startsWith(prefix))) return null;
    return `the training samples are raw prompt/response pairs (no chat template), but ${queries.length - rawQueries.length} of ${queries.length} queries are conversations rendered with the chat template; render both the same way (--prompt-format, or the same record shape in both files)`;
  }
  // Conversations on both sides: the same system turn, as a trainer would have seen it.
  if (train.chat === train.records && train.system !== undefined) {
    const system = train.system;
    const off = queries.filter((q) => 'chat' in q.record.prompt && systemOf(q.record.prompt.chat) !== system);
    if (off.length > 0) {
      const shown = (x: string | null): string => (x === null ? 'none (the template may add its default)' : JSON.stringify(x.slice(0, 60)));
      return `every training conversation has the system turn ${shown(system)}, but ${off.length} of ${queries.length} queries have ${shown(systemOf(((off[0] as Query).record.prompt as { chat: readonly { role: string; content: string }[] }).chat))} (e.g. ${off[0]?.record.where}); the model would be asked about text shaped unlike its training, and the scores shift without any error. Give the queries the training data's system turn`;
    }
  }
  return null;
}

/**
 * The warnings about how the records render, as `dda attribute` prints them (each without its
 * `warning: `): words outside a word-level vocabulary ({@link unknownWordsOf}), queries rendered
 * unlike the training samples ({@link renderingMismatch}, given their shape) and end tokens written
 * out in the responses and outputs ({@link endTokensInText}). `train` or `queries` may be left out
 * (null, empty): `dda index build` checks the training data alone ({@link TrainingChecks}, one sample
 * at a time), `dda index query` the queries against the shape its index recorded.
 */
export function renderingWarnings(
  tok: Tokenizer, train: { readonly records: readonly TrainingRecord[]; readonly samples: readonly TextSample[] } | null, queries: readonly Query[], shape: TrainingShape | null,
): string[] {
  const c = new TrainingChecks(tok);
  train?.records.forEach((r, i) => c.add(r, train.samples[i] as TextSample));
  return c.warnings(queries, shape);
}

/**
 * The checks `dda attribute` makes of the whole training set ({@link renderingWarnings},
 * {@link trainingShape}), one sample at a time, keeping of the samples only counts, the common
 * prefix and the few records the warnings name: a sharded index build checks every sample of a
 * training file it does not hold.
 */
export class TrainingChecks {
  private readonly unknown: UnknownWords;
  private readonly ends: EndTokens;
  private readonly shapes = new TrainingShapes();

  constructor(tok: Tokenizer) {
    this.unknown = new UnknownWords(tok);
    this.ends = new EndTokens(tok);
  }

  /** Checks training record `r` and its sample `s` (records in file order). */
  add(r: TrainingRecord, s: TextSample): void {
    this.unknown.add(r.where, s);
    if ('raw' in r.content) this.ends.add(r.where, r.content.raw.response);
    else for (const m of r.content.chat) if (m.role === 'assistant') this.ends.add(r.where, m.content);
    this.shapes.add(r, s);
  }

  /** The {@link TrainingShape} of the records checked. */
  shape(): TrainingShape {
    return this.shapes.shape();
  }

  /** {@link renderingWarnings} of the records checked and `queries`; once, after the last record. */
  warnings(queries: readonly Query[] = [], shape: TrainingShape | null = null): string[] {
    for (const q of queries) {
      this.unknown.add(q.record.where, q.sample);
      if (q.correction) this.unknown.add(`${q.record.where} (corrected)`, q.correction);
    }
    const mismatch = shape && queries.length > 0 ? renderingMismatch(shape, queries) : null;
    for (const q of queries) this.ends.add(q.record.where, q.record.output);
    return [this.unknown.message(), mismatch, this.ends.message()].filter((w): w is string => w !== null);
  }
}

/**
 * Trainers save the tokenizer they trained with beside each checkpoint (Trainer's
 * `processing_class`, TRL's SFTTrainer). Where a checkpoint's copy renders otherwise than the base
 * folder's, the training data was rendered with the copy, and rendering with the base's would
 * silently change every sample: refused, naming both and `--tokenizer`. Compared: for a Hugging
 * Face base, the chat template and end-of-sequence token of the copy's tokenizer.json, or, where the
 * checkpoint has no tokenizer.json (a slow tokenizer saved, or only the template), of its
 * tokenizer_config.json and chat_template.jinja; for a word-level base (the demo's), the vocabulary.
 * A copy that cannot be read is refused too.
 *
 * @throws DdaError at the first checkpoint whose saved tokenizer renders otherwise or cannot be read.
 */
function checkSavedTokenizers(base: BaseModel, checkpoints: readonly Checkpoint[]): void {
  const mine = base.tokenizer;
  const files = [TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, CHAT_TEMPLATE_FILE];
  const baseFiles = JSON.stringify(files.map((f) => base.hash[f] ?? null));
  const keep = `pass --tokenizer ${base.dir} to render with the base folder's tokenizer`;
  for (const cp of checkpoints) {
    if (resolve(cp.dir) === base.dir) continue;
    // Byte-identical copies of the base's files (the usual case) render alike: no need to build the tokenizer again.
    const copy = hashFiles(cp.dir, files);
    if (Object.keys(copy).length === 0 || JSON.stringify(files.map((f) => copy[f] ?? null)) === baseFiles) continue;
    const differs = (what: string, hint: string): DdaError => new DdaError(
      `${cp.dir} holds the tokenizer the trainer saved with the run, and it renders with ${what}: the training data was most likely rendered with it, and rendering with --base's would change every sample`,
      hint,
    );
    if (!existsSync(join(cp.dir, TOKENIZER_FILE))) {
      if (!(mine instanceof HfTokenizer)) continue; // a word-level tokenizer has no template or config to compare
      let saved: ReturnType<typeof savedTokenizerSettings>;
      try {
        saved = savedTokenizerSettings(cp.dir);
      } catch (e) {
        throw new DdaError(`${cp.dir} holds tokenizer settings the trainer saved, which cannot be read (${(e as Error).message})`, `${keep}, or fix the checkpoint's tokenizer files`);
      }
      if (saved === null) continue;
      const what = renderingDifference(mine, saved.chatTemplate, saved.eos === null ? null : { token: saved.eos, where: ` in its ${TOKENIZER_CONFIG_FILE}` });
      if (what !== null) throw differs(`${what} (it saved ${saved.files.join(' and ')}, no ${TOKENIZER_FILE})`, `copy the run's ${TOKENIZER_FILE} (the base's, if training used it) into ${cp.dir} and pass --tokenizer ${cp.dir} to render with the run's template, or ${keep}`);
      continue;
    }
    let saved: Tokenizer | null;
    try {
      saved = loadTokenizerFolder(cp.dir, base.family);
    } catch (e) {
      throw new DdaError(`${cp.dir} holds a tokenizer the trainer saved, which cannot be read (${(e as Error).message})`, `${keep}, or fix the checkpoint's tokenizer files`);
    }
    const hint = `pass --tokenizer ${cp.dir} to render with the run's tokenizer, or --tokenizer ${base.dir} to keep the base folder's`;
    if (mine instanceof WordTokenizer) {
      const same = saved instanceof WordTokenizer && saved.vocab.length === mine.vocab.length && saved.vocab.every((w, i) => w === mine.vocab[i]);
      if (!same) throw differs(saved instanceof WordTokenizer ? `another vocabulary (${saved.vocab.length} words there, ${mine.vocab.length} in --base${saved.vocab.length === mine.vocab.length ? `; first difference at id ${saved.vocab.findIndex((w, i) => w !== mine.vocab[i])}` : ''})` : `another kind of tokenizer (${saved?.kind ?? 'none'} there, word-level in --base)`, hint);
      continue;
    }
    if (!(mine instanceof HfTokenizer) || !(saved instanceof HfTokenizer)) continue;
    const what = renderingDifference(mine, saved.chatTemplate, { token: saved.eosText, where: ' there' });
    if (what !== null) throw differs(what, hint);
  }
}

/**
 * How a saved chat template and end-of-sequence token (either null where the checkpoint sets none)
 * render otherwise than `mine`: the template first (with its first differing character), else the
 * EOS (`eos.where` says where it was read); null when they render alike.
 */
function renderingDifference(mine: HfTokenizer, template: { readonly source: string; readonly text: string } | null, eos: { readonly token: string; readonly where: string } | null): string | null {
  if (template !== null && template.text !== mine.chatTemplate.text) {
    return `another chat template (${template.source} there, ${mine.chatTemplate.source} in --base; first difference at character ${firstDifference(template.text, mine.chatTemplate.text)})`;
  }
  return eos !== null && eos.token !== mine.eosText ? `another end-of-sequence token ('${eos.token}'${eos.where}, '${mine.eosText}' in --base)` : null;
}

/** The index of the first character where two strings differ (the shorter one's length when one is a prefix). */
function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * Records whose response or output text ends with the tokenizer's end-of-sequence or end-of-turn
 * token written out (e.g. `…<|im_end|>`), or null: the token is split off as a special token and
 * the template (or the EOS appended to a raw response) adds it again, so the model sees it twice,
 * which no trainer did unless its data had it too. The number and the first records.
 */
export function endTokensInText(tok: Tokenizer, items: readonly { readonly where: string; readonly text: string }[]): string | null {
  const e = new EndTokens(tok);
  for (const x of items) e.add(x.where, x.text);
  return e.message();
}

/** {@link endTokensInText}, one text at a time: keeps the count and the first three places. */
class EndTokens {
  private readonly marks: readonly string[];
  private count = 0;
  private readonly first: string[] = [];

  constructor(tok: Tokenizer) {
    this.marks = [...new Set([tok.eosText, tok.endOfTurn.text])].filter((m) => m.length > 0);
  }

  add(where: string, text: string): void {
    if (!this.marks.some((m) => text.trimEnd().endsWith(m))) return;
    this.count++;
    if (this.first.length < 3) this.first.push(where);
  }

  message(): string | null {
    if (this.count === 0) return null;
    return `${this.count} response(s) or output(s) end with the end token written out (${this.marks.map((m) => `'${m}'`).join(' or ')}; first: ${this.first.join(', ')}), which the template or the appended EOS adds again, so the model sees it twice: remove it from the text unless the training data had it twice too`;
  }
}

/** Where the tokenizer's chat template came from. */
function templateSource(tok: Tokenizer): string {
  const t = (tok as { chatTemplate?: { source?: unknown } }).chatTemplate;
  return typeof t?.source === 'string' ? t.source : `the ${tok.kind} tokenizer's built-in template`;
}

function renderingOf(
  tok: Tokenizer, promptFormat: PromptFormat, train: DataRendering, queries: DataRendering,
  trainRecords: readonly TrainingRecord[], samples: readonly TextSample[], qs: readonly Query[],
): TaskRendering {
  const chat = trainRecords.some((r) => 'chat' in r.content) || qs.some((q) => 'chat' in q.record.prompt);
  const firstRecord = trainRecords[0] as TrainingRecord;
  const firstQuery = qs[0] as Query;
  return {
    promptFormat, template: chat ? templateSource(tok) : null, train, queries,
    first: { train: renderedSample(samples[0] as TextSample, firstRecord.where, tok.eosText), query: renderedSample(firstQuery.sample, firstQuery.record.where, tok.eosText) },
  };
}

/** The log line of the training data: how its records were read, and its first sample as the model sees it. */
export function trainingDataLine(d: DataRendering, first: RenderedSample): string {
  return `training data: ${describeRendering(d)}; first sample as the model sees it, prompt | response (${first.where}): ${showSample(first)}`;
}

/** The log line of the queries: how their records were read, and the first query as the model sees it. */
export function queriesLine(d: DataRendering, first: RenderedSample): string {
  return `queries: ${describeRendering(d)}; first query as the model sees it, prompt | output (${first.where}): ${showSample(first)}`;
}

/** `train.jsonl: 40 alpaca record(s) (template tokenizer_config.json), fields used: instruction, input, output`. */
function describeRendering(d: DataRendering): string {
  const shapes = Object.entries(d.shapes).map(([k, n]) => `${n} ${k}`).join(', ');
  const mapped = Object.entries(d.fields).map(([o, t]) => `${o}=${t}`).join(' ');
  return `${d.file}: ${shapes} record(s), prompt format ${d.promptFormat}${mapped ? `, mapped ${mapped}` : ''}, fields used: ${d.used.join(', ')}${d.ignored.length ? `, read and not used: ${d.ignored.map((x) => x.column).join(', ')}` : ''}`;
}

/**
 * `"<prompt text>" | "<response text>"`, each piece as a JSON string so that whitespace and special
 * tokens show; `|` opens a piece that carries the loss, `+` one that does not.
 */
function showSample(s: RenderedSample): string {
  return s.pieces.map((p, i) => `${i === 0 ? '' : p.loss ? ' | ' : ' + '}${JSON.stringify(p.text)}`).join('') + (s.appendedEos === undefined ? '' : ` + EOS token ${JSON.stringify(s.appendedEos)}`);
}

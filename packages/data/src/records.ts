/**
 * The records people fine-tune with, and the outputs they want explained, normalised. They are read
 * from JSON Lines, JSON, CSV and Parquet files and `datasets.Dataset.save_to_disk` folders
 * (read-table.ts, columnar.ts), or from a dataset of LLaMA-Factory's dataset_info.json given as
 * `dataset_info.json#name` (llamafactory.ts).
 *
 * Training records (one of, detected per record from its fields, in this order):
 * - `messages`: a chat conversation, `[{role, content}, ...]` with roles system/user/assistant
 *   (a JSON array; in CSV a cell holding the JSON text), rendered with the model's chat template;
 *   the loss is taken over the assistant turns. It must end with an assistant turn. A `system`
 *   field becomes the system turn (a conversation that has one too is refused).
 * - LLaMA-Factory's ShareGPT: `conversations`, `[{from, value}, ...]` with roles human/gpt (and a
 *   first `system` turn, or a `system` field), alternating user and assistant turns as
 *   SharegptDatasetConverter in src/llamafactory/data/converter.py requires, rendered as `messages`
 *   are. Its function_call/observation turns are refused: the chat templates here have no place for
 *   them. Other tags are read from a dataset_info.json (see llamafactory.ts).
 * - Alpaca: `instruction`, optional `input`, `output`, optional `system` and LLaMA-Factory's
 *   `history` (`[[instruction, response], ...]`), as LLaMA-Factory renders them: the system turn,
 *   the history as earlier user/assistant turns, one user turn `instruction` (+ a newline and
 *   `input` when given), the assistant turn `output`, through the chat template; the loss is over
 *   every assistant turn, the history's included (LLaMA-Factory's default, `mask_history: false`:
 *   SupervisedDatasetProcessor in src/llamafactory/data/processor/supervised.py; hiyouga/LLaMA-Factory
 *   read at commit ff6d4d1, 2026-08-18).
 * - the project's `document` / `summary` pairs: the instruction format of METHOD.md (a fixed system
 *   turn and a user turn carrying the document; the summary is the assistant turn).
 * - `prompt` / `response` (or TRL's `completion`): the prompt text is used as it is (it is
 *   everything before the response), unless the prompt format is `chat`: then it is one user turn
 *   (after `system` and `history`, as for Alpaca) through the chat template. In raw format a
 *   `system` or `history` field is refused: there is no template to put it in. TRL's conversational
 *   form (`prompt` and `completion` lists of `{role, content}`) is a chat: the prompt's system/user
 *   turns, then the completion's assistant turns, which carry the loss (as SFTTrainer renders it).
 * Optional `id` (string or number; default `<n>`, the line, row or record number).
 *
 * Queries (the outputs to explain): the output in `output` (or `response`), the context in
 * `messages` or ShareGPT `conversations` (the conversation before the output; a final assistant
 * turn with no `output` field is taken as the output), `instruction`/`input`, `document`, or `prompt` (as above), optional
 * `corrected` (the corrected output, for contrastive measurements and `cea`), `id` and `group`.
 * Other fields of a query are kept beside it in the outputs.
 *
 * Field names a file uses differently are mapped with {@link FieldMap}, one map per file (e.g.
 * `--fields prompt=question response=answer` for the training data, `--query-fields` for the
 * queries). Every field of a record that is read and not used is reported in
 * {@link DataRendering.ignored} and logged once per field, never dropped silently.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError, type ChatMessage } from '@dda/core';
import { SYSTEM_PROMPT, userPrompt } from './instruction-format.js';
import { type IgnoredField, type RawRecord, UnusedFields, eachRecord } from './read-table.js';
import { SHAREGPT_TAGS, type ShareGptTags, parseDatasetSpec, readDatasetInfo } from './llamafactory.js';

/** Our field name → the file's column name, e.g. `{ prompt: 'question', response: 'answer' }`. */
export type FieldMap = Readonly<Record<string, string>>;

/** The field names {@link FieldMap} may map. */
export const KNOWN_FIELDS = ['id', 'group', 'prompt', 'response', 'completion', 'output', 'corrected', 'messages', 'conversations', 'instruction', 'input', 'system', 'history', 'document', 'summary'] as const;

/** How a `prompt` string is turned into model input: as it is (`raw`), or as one user turn of the chat template (`chat`). */
export type PromptFormat = 'raw' | 'chat';

/** A prompt: raw text used as it is, or a conversation rendered with the model's chat template. */
export type PromptSpec = { readonly raw: string } | { readonly chat: readonly ChatMessage[] };

/** Which record shape a record had. */
export type RecordKind = 'messages' | 'sharegpt' | 'alpaca' | 'document-summary' | 'prompt-response';

/** A training sample as given: raw prompt and response, or a conversation ending with the assistant's turn. */
export interface TrainingRecord {
  readonly id: string;
  /** Where it came from, e.g. `train.jsonl:12`. */
  readonly where: string;
  readonly kind: RecordKind;
  /** `raw`: the loss is over `response`; `chat`: over the assistant turns of the conversation. */
  readonly content: { readonly raw: { readonly prompt: string; readonly response: string } } | { readonly chat: readonly ChatMessage[] };
}

/** An output to explain. */
export interface QueryRecord {
  readonly id: string;
  readonly where: string;
  readonly kind: RecordKind;
  /** Its group (e.g. the error type or source it belongs to), or null. */
  readonly group: string | null;
  /** The context the output answers. */
  readonly prompt: PromptSpec;
  /** The output to explain (e.g. an erroneous generation). */
  readonly output: string;
  /** Its corrected version, or null. */
  readonly corrected: string | null;
  /** The record's other fields, kept as they are (e.g. `produced_by_base`); written beside the query in the outputs. */
  readonly meta: Readonly<Record<string, unknown>>;
}

/** Options of {@link readTrainingData}, {@link readQueryData} and the functions built on them. */
export interface RecordOptions {
  /** This file's column mapping (ours → the file's column). */
  readonly fields?: FieldMap;
  /** How `prompt` strings are used (default `raw`). */
  readonly promptFormat?: PromptFormat;
  /** Where the warnings about fields read and not used go (one line per field). */
  readonly log?: (line: string) => void;
  /** ShareGPT's keys and role names (default LLaMA-Factory's, {@link SHAREGPT_TAGS}). */
  readonly sharegptTags?: ShareGptTags;
}

/** What a LLaMA-Factory dataset_info.json entry adds: the shape of every record, and the fields not read. */
interface DatasetOptions extends RecordOptions {
  readonly formatting?: 'alpaca' | 'sharegpt';
  /** Our fields not read from a column of that name (LLaMA-Factory reads them only when mapped). */
  readonly unread?: readonly string[];
}

/** How the records of one file were read: what summary.json records and the log shows. */
export interface DataRendering {
  /** The file (or save_to_disk folder) read. */
  readonly file: string;
  /** The `dataset_info.json#name` it was read through, when given so. */
  readonly dataset?: string;
  /** Records per detected shape (the format detected). */
  readonly shapes: Readonly<Partial<Record<RecordKind, number>>>;
  readonly promptFormat: PromptFormat;
  /** The mapping applied to this file (ours → the file's column). */
  readonly fields: FieldMap;
  /** The file's columns that were used, as named in the file. */
  readonly used: readonly string[];
  /** Queries: the columns kept beside each query in the outputs, not used by the attribution. */
  readonly kept: readonly string[];
  /** The columns read and not used. */
  readonly ignored: readonly IgnoredField[];
}

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

/**
 * Parses `--fields`-style mappings: `ours=theirs` pairs (e.g. `prompt=question`).
 *
 * @param flag - The flag named in errors (`--fields`, `--query-fields`).
 * @throws DdaError for a pair without `=`, an unknown field of ours, or a field mapped twice.
 */
export function parseFieldMap(pairs: readonly string[], flag = '--fields'): FieldMap {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const m = /^([^=\s]+)=(.+)$/.exec(p.trim());
    if (!m) throw new DdaError(`${flag}: '${p}' is not of the form ours=theirs`, `e.g. ${flag} prompt=question response=answer; our fields: ${KNOWN_FIELDS.join(', ')}`);
    const [, ours, theirs] = m as unknown as [string, string, string];
    if (!(KNOWN_FIELDS as readonly string[]).includes(ours)) throw new DdaError(`${flag}: unknown field '${ours}'`, `our fields are: ${KNOWN_FIELDS.join(', ')}`);
    if (ours in out) throw new DdaError(`${flag}: '${ours}' is mapped twice`, 'map each field once');
    out[ours] = theirs;
  }
  return out;
}

/**
 * A record's fields under our names, with the file's column behind each, recording which columns
 * were used: a field counts as used when it is read and present.
 */
class Fields {
  private readonly values = new Map<string, unknown>();
  private readonly columns = new Map<string, string>();
  /** The file's columns read and present. */
  readonly used = new Set<string>();
  /** Keys inside a field that are not read (e.g. `messages[].weight`), with why. */
  readonly unusedInside = new Map<string, string>();

  constructor(readonly raw: RawRecord, private readonly fields: FieldMap, unread: readonly string[] = []) {
    const targets = new Set([...Object.keys(fields), ...unread]);
    const sources = new Set(Object.values(fields));
    for (const [column, value] of Object.entries(raw.value)) {
      // A column named like one of our fields that is mapped from another column (or not read at all) is not read;
      // a column mapped to one of our fields is consumed by the mapping (`prompt=document`: no `document` field remains).
      if (!targets.has(column) && !sources.has(column)) this.set(column, column, value);
    }
    for (const [ours, theirs] of Object.entries(fields)) if (Object.hasOwn(raw.value, theirs)) this.set(ours, theirs, raw.value[theirs]);
  }

  private set(ours: string, column: string, value: unknown): void {
    this.values.set(ours, value);
    this.columns.set(ours, column);
  }

  /** Whether the field is there (reading nothing). */
  has(name: string): boolean {
    return this.values.get(name) !== undefined;
  }

  /** The field's value (undefined when absent), marking its column used. */
  get(name: string): unknown {
    const x = this.values.get(name);
    if (x !== undefined) this.used.add(this.columns.get(name) ?? name);
    return x;
  }

  /** `'prompt'`, or `'prompt' (column 'question')` for a mapped field. */
  label(name: string): string {
    const column = this.columns.get(name) ?? this.fields[name];
    return column === undefined || column === name ? `'${name}'` : `'${name}' (column '${column}')`;
  }

  /** The file's column of one of our fields. */
  columnOf(name: string): string {
    return this.columns.get(name) ?? name;
  }

  /** Our field name of a file column: the field it is mapped to, else the column itself. */
  fieldOf(column: string): string {
    for (const [ours, c] of this.columns) if (c === column && ours !== column) return ours;
    return column;
  }

  /** Whether the record has no id of its own (no `id` field, or null), so that its number in the file is its id. */
  get idFromNumber(): boolean {
    const x = this.values.get('id');
    return x === undefined || x === null;
  }

  /**
   * `missing field 'output' (its fields: …)`, saying when the file has a column of that name that a
   * mapping reads as another field (`response=output` consumes `output`).
   */
  missing(name: string): string {
    const base = `missing field ${this.label(name)} (its fields: ${this.fileColumns})`;
    if (this.fields[name] !== undefined || !Object.hasOwn(this.raw.value, name)) return base;
    const to = Object.entries(this.fields).filter(([ours, theirs]) => theirs === name && ours !== name).map(([ours]) => ours);
    if (!to.length) return base;
    return `${base}: the field mapping ${to.map((o) => `${o}=${name}`).join(', ')} reads column '${name}' as ${to.map((o) => `'${o}'`).join(', ')}, so it is not read as '${name}'; drop that mapping if '${name}' is meant as itself (e.g. Alpaca's 'output' is already the response)`;
  }

  /** The record's columns as named in the file. */
  get fileColumns(): string {
    return Object.keys(this.raw.value).join(', ') || 'none';
  }
}

/** A required non-empty string field. */
function text(f: Fields, name: string, hint: string): string {
  const x = f.get(name);
  const where = f.raw.where;
  if (x === undefined) throw new DdaError(`${where}: ${f.missing(name)}`, hint);
  if (typeof x !== 'string') throw new DdaError(`${where}: field ${f.label(name)} must be a string, got ${typeName(x)}`, hint);
  if (x.trim() === '') throw new DdaError(`${where}: field ${f.label(name)} is empty`, hint);
  return x;
}

/** An optional string field (absent, or a string; empty means absent). */
function optionalText(f: Fields, name: string): string | null {
  const x = f.get(name);
  if (x === undefined || x === null) return null;
  if (typeof x !== 'string') throw new DdaError(`${f.raw.where}: field ${f.label(name)} must be a string, got ${typeName(x)}`);
  return x.trim() === '' ? null : x;
}

function idOf(f: Fields): string {
  const x = f.get('id');
  if (x === undefined || x === null) return String(f.raw.number);
  if (typeof x === 'number' && Number.isFinite(x)) {
    // JSON numbers are doubles: an integer beyond 2^53 has lost digits when read, so it would name another record's id.
    if (Number.isInteger(x) && !Number.isSafeInteger(x)) throw new DdaError(`${f.raw.where}: field ${f.label('id')} is the number ${String(x)} as read, an integer beyond 2^53 (${Number.MAX_SAFE_INTEGER}) that a JSON number cannot hold exactly: the id in the file has other digits`, 'write the ids as strings ("id": "90071992547409930"), as scores and labels name records by their exact ids');
    return String(x);
  }
  if (typeof x !== 'string' || x.trim() === '') throw new DdaError(`${f.raw.where}: field ${f.label('id')} must be a non-empty string or a number, got ${JSON.stringify(x)}`, 'give every record a unique id, or leave the field out');
  return x;
}

/** A JSON array field (in CSV, a cell holding the JSON text). */
function jsonArray(f: Fields, name: string, hint: string): unknown {
  const x = f.get(name);
  if (typeof x !== 'string') return x;
  try {
    return JSON.parse(x);
  } catch (e) {
    throw new DdaError(`${f.raw.where}: field ${f.label(name)} is not valid JSON (${(e as Error).message})`, hint);
  }
}

/** The `{role, content}` messages of field `name` (the `messages` of a record, or TRL's conversational `prompt` / `completion`). */
function messageList(f: Fields, name: string): ChatMessage[] {
  const where = f.raw.where;
  const m = jsonArray(f, name, `in CSV, a ${name} cell holds the JSON array [{"role": ..., "content": ...}, ...]`);
  if (!Array.isArray(m) || m.length === 0) throw new DdaError(`${where}: field ${f.label(name)} must be a non-empty array of {role, content}, got ${typeName(m)}`, 'e.g. [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]');
  return m.map((x, i): ChatMessage => {
    const e = x as { role?: unknown; content?: unknown } | null;
    if (e === null || typeof e !== 'object') throw new DdaError(`${where}: message ${i + 1} is ${typeName(x)}, not {role, content}`);
    const role = e.role === 'human' ? 'user' : e.role === 'gpt' || e.role === 'model' ? 'assistant' : e.role;
    if (e.role === undefined && 'from' in e && 'value' in e) {
      throw new DdaError(`${where}: message ${i + 1} of field ${f.label(name)} is a ShareGPT turn ({from, value}), not {role, content}`, `name the field conversations (ShareGPT: {"from": "human" | "gpt", "value": ...}), e.g. with --fields conversations=${f.columnOf(name)}, or write the turns as {role, content}`);
    }
    if (role !== 'system' && role !== 'user' && role !== 'assistant') throw new DdaError(`${where}: message ${i + 1} has role ${JSON.stringify(e.role)}`, "roles must be 'system', 'user' or 'assistant'");
    if (typeof e.content !== 'string') throw new DdaError(`${where}: message ${i + 1} (${role}) has no string 'content'`, 'every message needs a text content');
    for (const k of Object.keys(e)) if (k !== 'role' && k !== 'content') f.unusedInside.set(`${f.columnOf(name)}[].${k}`, `a message is read as {role, content} only${role === 'assistant' ? ' (every assistant turn carries the loss)' : ''}`);
    return { role, content: e.content };
  });
}

function messagesOf(f: Fields): ChatMessage[] {
  return withSystem(f, messageList(f, 'messages'));
}

/** The conversation with the `system` field as its system turn. @throws DdaError when it has a system message too. */
function withSystem(f: Fields, out: ChatMessage[]): ChatMessage[] {
  const where = f.raw.where;
  const system = optionalText(f, 'system');
  if (system === null) return out;
  if (out.some((x) => x.role === 'system')) throw new DdaError(`${where}: both a ${f.label('system')} field and a system message`, 'give the system turn once: in the messages or in the system field');
  return [{ role: 'system', content: system }, ...out];
}

/**
 * A ShareGPT conversation as chat turns, following LLaMA-Factory's SharegptDatasetConverter
 * (src/llamafactory/data/converter.py of hiyouga/LLaMA-Factory, commit ff6d4d1): a first turn with
 * the system tag is the system turn (else the `system` field), then turns alternate user-side
 * (user or observation tag) and assistant-side (assistant or function tag); a training record ends
 * with an assistant turn (an even count). Where LLaMA-Factory logs "Invalid role tag" and skips the
 * record, this refuses it; function_call/observation turns are refused, having no place in the
 * chat templates rendered here.
 *
 * @param complete - Whether the conversation must end with the assistant (training records).
 */
function conversationOf(f: Fields, tags: ShareGptTags, complete: boolean): ChatMessage[] {
  const where = f.raw.where;
  const shape = `[{"${tags.role_tag}": "${tags.user_tag}", "${tags.content_tag}": "..."}, {"${tags.role_tag}": "${tags.assistant_tag}", "${tags.content_tag}": "..."}, ...]`;
  const m = jsonArray(f, 'conversations', `a ShareGPT conversation is ${shape} (in CSV, a cell holding that JSON)`);
  if (!Array.isArray(m) || m.length === 0) throw new DdaError(`${where}: field ${f.label('conversations')} must be a non-empty array of turns, got ${typeName(m)}`, `e.g. ${shape}`);
  const turns = m.map((x, i) => {
    const e = x as Record<string, unknown> | null;
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new DdaError(`${where}: turn ${i + 1} of ${f.label('conversations')} is ${typeName(x)}, not {${tags.role_tag}, ${tags.content_tag}}`, `e.g. ${shape}`);
    if (typeof e[tags.content_tag] !== 'string') throw new DdaError(`${where}: turn ${i + 1} of ${f.label('conversations')} has no string '${tags.content_tag}'`, 'every turn needs a text content');
    for (const k of Object.keys(e)) if (k !== tags.role_tag && k !== tags.content_tag) f.unusedInside.set(`${f.columnOf('conversations')}[].${k}`, `a ShareGPT turn is read as {${tags.role_tag}, ${tags.content_tag}} only`);
    return { role: e[tags.role_tag], content: e[tags.content_tag] as string };
  });
  const out: ChatMessage[] = [];
  const first = turns[0] as { role: unknown; content: string };
  const offset = first.role === tags.system_tag ? 1 : 0;
  if (offset === 1) {
    if (f.has('system')) throw new DdaError(`${where}: both a ${f.label('system')} field and a '${tags.system_tag}' turn`, 'give the system turn once: as the first turn or in the system field');
    out.push({ role: 'system', content: first.content });
    turns.shift();
  } else {
    const system = optionalText(f, 'system');
    if (system !== null) out.push({ role: 'system', content: system });
  }
  turns.forEach((t, i) => {
    const n = i + 1 + offset;
    if (t.role === tags.function_tag || t.role === tags.observation_tag) {
      throw new DdaError(`${where}: turn ${n} is a '${String(t.role)}' turn (a tool call or its result), which the chat templates dda renders have no place for`, 'attribute conversations of user and assistant turns only: leave out records with tool calls');
    }
    const expected = i % 2 === 0 ? tags.user_tag : tags.assistant_tag;
    if (t.role !== expected) {
      throw new DdaError(`${where}: turn ${n} has role ${JSON.stringify(t.role)} where '${expected}' is due (LLaMA-Factory skips such a record as broken: "Invalid role tag")`, `turns alternate '${tags.user_tag}' and '${tags.assistant_tag}', after an optional first '${tags.system_tag}' turn`);
    }
    out.push({ role: i % 2 === 0 ? 'user' : 'assistant', content: t.content });
  });
  if (complete && turns.length % 2 !== 0) throw new DdaError(`${where}: the conversation ends with a '${tags.user_tag}' turn (LLaMA-Factory skips such a record: "Invalid message count")`, `a training conversation ends with the '${tags.assistant_tag}' turn that carries the loss`);
  return out;
}

/**
 * LLaMA-Factory's Alpaca `history`, `[[instruction, response], ...]`, as earlier user/assistant
 * turns, in the order given (AlpacaDatasetConverter in src/llamafactory/data/converter.py of
 * hiyouga/LLaMA-Factory: `for old_prompt, old_response in history`).
 */
function historyOf(f: Fields): ChatMessage[] {
  const hint = 'history is a list of [instruction, response] pairs of strings, e.g. [["Hi", "Hello!"]] (in CSV, a cell holding that JSON)';
  const h = jsonArray(f, 'history', hint);
  if (h === undefined || h === null) return [];
  if (!Array.isArray(h)) throw new DdaError(`${f.raw.where}: field ${f.label('history')} must be a list of [instruction, response] pairs, got ${typeName(h)}`, hint);
  return h.flatMap((pair, i): ChatMessage[] => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new DdaError(`${f.raw.where}: history entry ${i + 1} is not an [instruction, response] pair of strings (got ${JSON.stringify(pair)})`, hint);
    }
    return [{ role: 'user', content: pair[0] }, { role: 'assistant', content: pair[1] }];
  });
}

/** The shape of a record, detected from its fields. */
function kindOf(f: Fields, o: DatasetOptions): RecordKind | null {
  if (o.formatting) return o.formatting;
  if (f.has('messages')) return 'messages';
  if (f.has('conversations')) return 'sharegpt';
  if (f.has('instruction')) return 'alpaca';
  if (f.has('document')) return 'document-summary';
  if (f.has('prompt')) return 'prompt-response';
  return null;
}

/**
 * The user turn of an Alpaca record: `instruction`, then a newline and `input` when given, as
 * LLaMA-Factory joins them (AlpacaDatasetConverter: `"\n".join(query)`, "prompt\nquery").
 */
function alpacaUser(f: Fields, hint: string): string {
  const instruction = text(f, 'instruction', hint);
  const input = optionalText(f, 'input');
  return input ? `${instruction}\n${input}` : instruction;
}

/**
 * The turns before the output: the system turn (`system`), the history's turns, then the user turn;
 * where LLaMA-Factory puts them (the system turn first, then the history: Template.encode_multiturn).
 */
function turnsBefore(f: Fields, user: string): ChatMessage[] {
  const system = optionalText(f, 'system');
  return [...(system ? [{ role: 'system' as const, content: system }] : []), ...historyOf(f), { role: 'user', content: user }];
}

/** Whether the record's `prompt` is TRL's conversational form: a list of messages, not a string. */
const conversationalPrompt = (f: Fields): boolean => Array.isArray(f.raw.value[f.columnOf('prompt')]);

/**
 * TRL's conversational prompt: its messages (after the `system` field's turn), with no assistant
 * turn: SFTTrainer's loss covers the completion only (completion_only_loss), so an assistant turn of
 * the prompt carries none, while every assistant turn here carries the loss.
 */
function conversationalPromptOf(f: Fields): ChatMessage[] {
  const chat = withSystem(f, messageList(f, 'prompt'));
  const i = chat.findIndex((m) => m.role === 'assistant');
  if (i >= 0) throw new DdaError(`${f.raw.where}: message ${i + 1} of field ${f.label('prompt')} is an assistant turn; SFTTrainer takes no loss over the prompt's turns, while dda takes it over every assistant turn`, 'give the conversation as "messages" (the loss over every assistant turn), or keep only system and user turns in the prompt');
  if (chat[chat.length - 1]?.role !== 'user') throw new DdaError(`${f.raw.where}: field ${f.label('prompt')} must end with a user turn`, 'the completion answers the last user turn');
  return chat;
}

/** A raw prompt: refuses `system` and `history`, which only a chat template can place. */
function rawPrompt(f: Fields, hint: string): string {
  for (const name of ['system', 'history']) {
    if (f.has(name)) {
      throw new DdaError(
        `${f.raw.where}: field ${f.label(name)} cannot be used with --prompt-format raw (the prompt text is used as it is; there is no chat template to put ${name === 'system' ? 'a system turn' : 'earlier turns'} in)`,
        `pass --prompt-format chat to render ${name === 'system' ? 'it as the system turn' : 'them as earlier turns'} before the prompt, through the model's chat template; if the prompt text already holds it, remove the field`,
      );
    }
  }
  return text(f, 'prompt', hint);
}

const TRAIN_SHAPES = '{"messages": [...]}, {"conversations": [...]}, {"instruction", "input"?, "output"}, {"document", "summary"} or {"prompt", "response"}';

function toTraining(f: Fields, o: DatasetOptions): TrainingRecord {
  const r = f.raw;
  const id = idOf(f);
  const kind = kindOf(f, o);
  const hint = `a training record is one of ${TRAIN_SHAPES}; map other column names with --fields`;
  switch (kind) {
    case 'messages':
      return { id, where: r.where, kind, content: { chat: messagesOf(f) } };
    case 'sharegpt':
      return { id, where: r.where, kind, content: { chat: conversationOf(f, o.sharegptTags ?? SHAREGPT_TAGS, true) } };
    case 'alpaca': {
      const user = alpacaUser(f, hint);
      return { id, where: r.where, kind, content: { chat: [...turnsBefore(f, user), { role: 'assistant', content: text(f, 'output', hint) }] } };
    }
    case 'document-summary':
      return { id, where: r.where, kind, content: { chat: [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt(text(f, 'document', hint)) }, { role: 'assistant', content: text(f, 'summary', hint) }] } };
    case 'prompt-response': {
      const responseField = !f.has('response') && f.has('completion') ? 'completion' : 'response';
      if (conversationalPrompt(f)) {
        // TRL's conversational prompt/completion, as SFTTrainer tokenizes it (trl/trainer/sft_trainer.py, `tokenize`
        // in _prepare_dataset, as the stored copy of huggingface/trl read for this showed it; commit not pinned): apply_chat_template(prompt + completion), the loss
        // over the completion's tokens (completion_only_loss). Here: the prompt's turns, then the completion's
        // assistant turns, which carry the loss.
        const completion = messageList(f, responseField);
        const i = completion.findIndex((m) => m.role !== 'assistant');
        if (i >= 0) throw new DdaError(`${r.where}: message ${i + 1} of field ${f.label(responseField)} has role '${completion[i]?.role}'; a conversational completion is read as the assistant's turns, which carry the loss`, 'put the other turns in the prompt');
        return { id, where: r.where, kind, content: { chat: [...conversationalPromptOf(f), ...completion] } };
      }
      if (o.promptFormat === 'chat') {
        const user = text(f, 'prompt', hint);
        return { id, where: r.where, kind, content: { chat: [...turnsBefore(f, user), { role: 'assistant', content: text(f, responseField, hint) }] } };
      }
      const prompt = rawPrompt(f, hint);
      return { id, where: r.where, kind, content: { raw: { prompt, response: text(f, responseField, hint) } } };
    }
    default:
      throw new DdaError(`${r.where}: not a training record (fields: ${f.fileColumns})`, hint);
  }
}

/** One training record from a raw record. @throws DdaError naming the record and the field. */
export function toTrainingRecord(r: RawRecord, o: RecordOptions = {}): TrainingRecord {
  return toTraining(new Fields(r, o.fields ?? {}), o);
}

const QUERY_SHAPES = '{"prompt", "output"}, {"messages": [...], "output"?}, {"conversations": [...], "output"?}, {"instruction", "input"?, "output"} or {"document", "output"}, each with optional "corrected", "id" and "group" ("response" is read as "output" where there is none)';

/** A query and the columns kept as its metadata. */
function toQuery(f: Fields, o: DatasetOptions): QueryRecord {
  const r = f.raw;
  const id = idOf(f);
  const kind = kindOf(f, o);
  const hint = `a query is one of ${QUERY_SHAPES}; map other column names with --query-fields`;
  const groupValue = f.get('group');
  if (groupValue !== undefined && groupValue !== null && typeof groupValue !== 'string' && typeof groupValue !== 'number') throw new DdaError(`${r.where}: field ${f.label('group')} must be a string, got ${typeName(groupValue)}`, hint);
  const group = groupValue === undefined || groupValue === null || groupValue === '' ? null : String(groupValue);
  const outputField = !f.has('output') && f.has('response') ? 'response' : 'output';
  let prompt: PromptSpec;
  let output: string | null = f.has(outputField) ? text(f, outputField, hint) : null;
  switch (kind) {
    case 'messages':
    case 'sharegpt': {
      const chat = kind === 'messages' ? messagesOf(f) : conversationOf(f, o.sharegptTags ?? SHAREGPT_TAGS, false);
      const last = chat[chat.length - 1] as ChatMessage;
      if (output === null && last.role === 'assistant') {
        output = last.content;
        chat.pop();
      }
      if (chat.length === 0 || chat[chat.length - 1]?.role !== 'user') throw new DdaError(`${r.where}: the conversation before the output must end with a user turn`, 'put the output to explain in "output", or as the last assistant message');
      prompt = { chat };
      break;
    }
    case 'alpaca':
      prompt = { chat: turnsBefore(f, alpacaUser(f, hint)) };
      break;
    case 'document-summary':
      prompt = { chat: [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt(text(f, 'document', hint)) }] };
      break;
    case 'prompt-response':
      prompt = conversationalPrompt(f) ? { chat: conversationalPromptOf(f) } : o.promptFormat === 'chat' ? { chat: turnsBefore(f, text(f, 'prompt', hint)) } : { raw: rawPrompt(f, hint) };
      break;
    default:
      throw new DdaError(`${r.where}: not a query (fields: ${f.fileColumns})`, hint);
  }
  if (output === null) throw new DdaError(`${r.where}: ${f.missing('output')}`, hint);
  const corrected = optionalText(f, 'corrected');
  const meta = Object.fromEntries(Object.entries(r.value).filter(([column]) => !f.used.has(column) && !(KNOWN_FIELDS as readonly string[]).includes(f.fieldOf(column))));
  return { id, where: r.where, kind, group, prompt, output, corrected, meta };
}

/** One query from a raw record. @throws DdaError naming the record and the field. */
export function toQueryRecord(r: RawRecord, o: RecordOptions = {}): QueryRecord {
  return toQuery(new Fields(r, o.fields ?? {}), o);
}

/** `line number`, `row number` or `record number`, as `where` (`train.jsonl:4`, `train.csv: row 4`, `train.json: record 4`) numbers the record. */
const numberWord = (where: string): string => (/: row \d+$/.test(where) ? 'row number' : /: record \d+$/.test(where) ? 'record number' : 'line number');

/**
 * Throws a DdaError naming both places when two records share an id, saying which of them has no
 * `id` field and so its number in the file as id (`fromNumber`: the indexes of such records).
 */
function checkUniqueIds(records: readonly { readonly id: string; readonly where: string }[], what: string, fromNumber: ReadonlySet<number> = new Set()): void {
  const seen = new Map<string, number>();
  records.forEach((r, i) => {
    const prev = seen.get(r.id);
    if (prev !== undefined) {
      const p = records[prev] as { readonly where: string };
      const why = fromNumber.has(prev) ? `, where it is that record's ${numberWord(p.where)}, as it has no 'id' field` : '';
      const own = fromNumber.has(i) ? `, its ${numberWord(r.where)}, as it has no 'id' field,` : '';
      const auto = fromNumber.has(i) || fromNumber.has(prev);
      throw new DdaError(
        `${r.where}: duplicate ${what} id '${r.id}'${own} (first used at ${p.where}${why})`,
        auto ? "give every record a unique id: records without an 'id' field are numbered by their place in the file, which can clash with the ids of the others; give them all an 'id', or none" : 'give every record a unique id',
      );
    }
    seen.set(r.id, i);
  });
}

/**
 * @param columns - The file's columns, in the order they first appear.
 * @throws DdaError naming the file and its columns when a mapping's column is in no record; naming
 *   both fields when one column is mapped to two of ours (which of them shapes the record would be a guess).
 */
function checkMapping(path: string, what: string, columns: readonly string[], fields: FieldMap, flag: string): void {
  const byColumn = new Map<string, string>();
  for (const [ours, theirs] of Object.entries(fields)) {
    const other = byColumn.get(theirs);
    if (other !== undefined) throw new DdaError(`${what} '${path}': ${flag} maps column '${theirs}' to both '${other}' and '${ours}'`, 'map each column to one field of ours');
    byColumn.set(theirs, ours);
  }
  for (const [ours, theirs] of Object.entries(fields)) {
    if (!columns.includes(theirs)) {
      throw new DdaError(`${what} '${path}': ${flag} maps '${ours}' from column '${theirs}', which no record of the file has (its columns: ${columns.join(', ')})`, `map only columns of this file (${flag} applies to ${what === 'queries' ? '--queries' : '--train'} only)`);
    }
  }
}

/**
 * A mapping must be honoured: a field mapped to one that makes a record's shape (`prompt`,
 * `messages`, `conversations`, `instruction`, `document`), present and not used because another
 * shape's field came first (`--fields prompt=question` on a record with a `document` column), is
 * refused: which shape was meant is ambiguous. (Other mapped fields a shape does not use are warned
 * as read and not used.)
 *
 * @throws DdaError naming the record, the mapping and the field that decided the shape.
 */
function checkMappedUsed(f: Fields, fields: FieldMap, kind: RecordKind, flag: string, forQueries: boolean): void {
  const decidedBy = SHAPE_FIELDS[kind];
  for (const [ours, theirs] of Object.entries(fields)) {
    if (ours === decidedBy || !Object.values(SHAPE_FIELDS).includes(ours) || f.used.has(theirs) || !f.has(ours)) continue;
    throw new DdaError(
      `${f.raw.where}: ${flag} maps '${ours}' from column '${theirs}', but the record is read as ${kind} (from its field ${f.label(decidedBy)}), which does not use '${ours}'`,
      `map the record's columns to the fields of one shape (${forQueries ? QUERY_SHAPES : TRAIN_SHAPES}), or remove the column ${f.label(decidedBy)} that conflicts`,
    );
  }
}

/** The field that makes a record of each shape (see kindOf). */
const SHAPE_FIELDS: Readonly<Record<RecordKind, string>> = { messages: 'messages', sharegpt: 'conversations', alpaca: 'instruction', 'document-summary': 'document', 'prompt-response': 'prompt' };

/** Why a field of a record of this shape is not used. */
function reasonFor(field: string, kind: RecordKind, forQueries: boolean): string {
  if (!(KNOWN_FIELDS as readonly string[]).includes(field)) return `not a field of a training record (${TRAIN_SHAPES}, each with an optional "id")`;
  if (field === 'group' && !forQueries) return "groups are read from the queries only";
  if (field === 'system' && kind === 'document-summary') return 'document/summary records have the fixed system turn of METHOD.md';
  return `not used by ${kind} ${forQueries ? 'queries' : 'records'}`;
}

/**
 * Whether a string was added before, by a 53-bit fingerprint of it (two 32-bit FNV-1a hashes of its
 * UTF-16 code units) in an open-addressing table at most half full: 16 to 32 bytes per string, whatever their
 * lengths. A repeat is certain to be seen; a new string is taken for a repeat only when its
 * fingerprint is another's (about n² / 2⁵⁴ for n strings: once in 18,000 files of a million).
 */
class Fingerprints {
  private slots = new Float64Array(1024); // fingerprint + 1; 0: empty
  private size = 0;

  private static of(s: string): number {
    let a = 0x811c9dc5;
    let b = 0x01000193 ^ s.length;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    return (a >>> 0) * 2 ** 21 + ((b >>> 0) >>> 11);
  }

  /** Adds `s`; true when a string of its fingerprint was added before. */
  add(s: string): boolean {
    if (2 * (this.size + 1) > this.slots.length) {
      const old = this.slots;
      this.slots = new Float64Array(old.length * 2);
      for (const x of old) if (x !== 0) this.insert(x);
    }
    const added = this.insert(Fingerprints.of(s) + 1);
    if (added) this.size++;
    return !added;
  }

  private insert(x: number): boolean {
    const mask = this.slots.length - 1;
    for (let i = (x % 4294967296) & mask; ; i = (i + 1) & mask) {
      if (this.slots[i] === x) return false;
      if (this.slots[i] === 0) {
        this.slots[i] = x;
        return true;
      }
    }
  }
}

/** How a file's records were read ({@link scanData}): how many, and the rendering summary.json records. */
export interface DataScan {
  readonly count: number;
  readonly rendering: DataRendering;
}

/**
 * Reads, converts and reports on a file's records (shared by the training and query readers), one
 * record at a time: each converted record goes to `visit` with its index, and only the file's
 * columns, the fields noted and a fingerprint per id ({@link Fingerprints}) are kept. The errors are those of reading every
 * record first and converting them then, in that order: the file's (see read-table.ts's eachRecord),
 * a mapping whose column no record has, the first record that cannot be converted, two records with
 * one id. `visit` sees the records before the first that cannot be converted, and none after it.
 */
async function scanData<T extends { readonly id: string; readonly where: string; readonly kind: RecordKind }>(
  spec: string, options: RecordOptions, forQueries: boolean, convert: (f: Fields, o: DatasetOptions) => T, visit: (record: T, index: number) => void,
): Promise<DataScan> {
  const what = forQueries ? 'queries' : 'training data';
  let flag = forQueries ? '--query-fields' : '--fields';
  let path = spec;
  let o: DatasetOptions = options;
  const dataset = existsSync(spec) ? null : parseDatasetSpec(spec);
  if (dataset) {
    const at = `${forQueries ? '--queries' : '--train'} ${spec}`;
    if (Object.keys(options.fields ?? {}).length > 0) throw new DdaError(`${at}: ${flag} cannot be combined with a dataset of a dataset_info.json`, 'map the columns in the dataset\'s "columns" entry, as LLaMA-Factory reads them');
    const d = readDatasetInfo(dataset.info, dataset.name, forQueries ? '--queries' : '--train');
    path = d.file;
    flag = `the "columns" of ${spec}`;
    o = { ...options, fields: d.fields, formatting: d.formatting, unread: d.unread, sharegptTags: d.tags };
  }
  const fields = o.fields ?? {};
  const unread = o.unread ?? [];
  const columns = new Set<string>();
  const used = new Set<string>();
  const kept = new Set<string>();
  const ignored = new UnusedFields();
  const shapes: Partial<Record<RecordKind, number>> = {};
  const ids = new Fingerprints();
  let repeated = false; // an id's fingerprint seen twice: the ids are compared exactly once every record is read
  let failure: { readonly error: unknown } | null = null; // the first record that cannot be converted
  let index = 0;
  const count = await eachRecord(path, what, (r) => {
    const i = index++;
    for (const column of Object.keys(r.value)) columns.add(column);
    if (failure !== null) return;
    let rec: T;
    try {
      const f = new Fields(r, fields, unread);
      rec = convert(f, o);
      shapes[rec.kind] = (shapes[rec.kind] ?? 0) + 1;
      checkMappedUsed(f, fields, rec.kind, flag, forQueries);
      for (const column of Object.keys(r.value)) {
        if (f.used.has(column)) {
          used.add(column);
          continue;
        }
        const field = f.fieldOf(column);
        const known = (KNOWN_FIELDS as readonly string[]).includes(field) || Object.hasOwn(fields, column);
        if (forQueries && !known) {
          kept.add(column);
          continue;
        }
        const reason = Object.hasOwn(fields, column) ? `${flag} reads '${column}' from column '${fields[column]}'`
          : unread.includes(column) ? `the dataset's "columns" in ${dataset?.info ?? 'dataset_info.json'} do not name it, so LLaMA-Factory does not read it`
            : reasonFor(field, rec.kind, forQueries);
        ignored.note(column, r, reason);
      }
      for (const [key, reason] of f.unusedInside) ignored.note(key, r, reason);
    } catch (error) {
      failure = { error };
      return;
    }
    if (ids.add(rec.id)) repeated = true;
    visit(rec, i);
  });
  checkMapping(path, what, [...columns], fields, flag);
  if (failure !== null) throw (failure as { readonly error: unknown }).error;
  if (repeated) {
    // The ids again, with which records have none of their own, for the message naming both places.
    const all: { id: string; where: string }[] = [];
    const idFromNumber = new Set<number>();
    await eachRecord(path, what, (r) => {
      const f = new Fields(r, fields, unread);
      const { id, where } = convert(f, o);
      if (f.idFromNumber) idFromNumber.add(all.length);
      all.push({ id, where });
    });
    checkUniqueIds(all, forQueries ? 'query' : 'training', idFromNumber);
  }
  const log = o.log ?? (() => {});
  ignored.warn(`${what} ${path}`, count, log);
  if (kept.size > 0) log(`queries ${path}: field(s) ${[...kept].map((c) => `'${c}'`).join(', ')} kept beside each query in the outputs, not used by the attribution`);
  return {
    count,
    rendering: {
      file: path, ...(dataset ? { dataset: spec } : {}), shapes, promptFormat: o.promptFormat ?? 'raw', fields, used: [...used], kept: [...kept],
      ignored: ignored.list(),
    },
  };
}

/** Reads, converts and reports on a file's records ({@link scanData}), keeping them all. */
async function readData<T extends { readonly id: string; readonly where: string; readonly kind: RecordKind }>(
  spec: string, options: RecordOptions, forQueries: boolean, convert: (f: Fields, o: DatasetOptions) => T,
): Promise<{ records: T[]; rendering: DataRendering }> {
  const records: T[] = [];
  const { rendering } = await scanData(spec, options, forQueries, convert, (r) => records.push(r));
  return { records, rendering };
}

/**
 * Reads training data (see the module doc for the record shapes), logging one warning per field
 * that is read and not used.
 *
 * @param path - A JSON Lines, JSON, CSV or Parquet file, a folder written by
 *   `datasets.Dataset.save_to_disk`, or `path/to/dataset_info.json#name`: the dataset `name` of
 *   LLaMA-Factory's dataset_info.json (see llamafactory.ts).
 * @returns The records in file order, and how they were read ({@link DataRendering}).
 * @throws DdaError naming the file and record: unreadable or empty file, malformed JSON/CSV/Parquet/
 *   Arrow, a record of no known shape, a missing, non-string or empty field, a bad `messages`,
 *   `conversations` or `history` array, a ShareGPT function_call/observation turn or misplaced
 *   role, `system` or `history` with the raw prompt format, duplicate ids; naming the file and its
 *   columns for a mapping whose column no record has; naming the dataset_info.json, the dataset and
 *   the key for an entry that cannot be read (see {@link readDatasetInfo}).
 */
export async function readTrainingData(path: string, o: RecordOptions = {}): Promise<{ records: TrainingRecord[]; rendering: DataRendering }> {
  return readData(path, o, false, toTraining);
}

/**
 * Reads training data as {@link readTrainingData} does, one record at a time, keeping none: each
 * record goes to `visit` with its index among the file's records, as it is read. Memory holds a
 * piece of the file (a JSON Lines, CSV or JSON file is read 1 MiB at a time, a JSON array's
 * record being read held whole), the file's columns and fields noted, and an 8-byte fingerprint per id (16 to 32 bytes in its table) for the check that
 * ids are unique (the ids are read again, exactly, only when two fingerprints are alike).
 *
 * @returns How many records, and how they were read (as readTrainingData's `rendering`).
 * @throws DdaError as {@link readTrainingData}, the same errors in the same order (`visit` has seen
 *   the records before the first that cannot be read or converted); an error of `visit` ends the
 *   reading with it.
 */
export async function scanTrainingData(path: string, o: RecordOptions, visit: (record: TrainingRecord, index: number) => void): Promise<DataScan> {
  return scanData(path, o, false, toTraining, visit);
}

/**
 * Reads a file of queries (the outputs to explain; see the module doc), logging one warning per
 * field of ours that is read and not used (other fields are kept beside the queries).
 *
 * @returns The queries in file order, and how they were read.
 * @throws DdaError naming the file and record, as {@link readTrainingData}.
 */
export async function readQueryData(path: string, o: RecordOptions = {}): Promise<{ records: QueryRecord[]; rendering: DataRendering }> {
  return readData(path, o, true, toQuery);
}

/**
 * The files a `--train` or `--queries` argument reads, for content hashes: the file itself; a
 * save_to_disk folder's files (sorted); for `dataset_info.json#name`, the dataset_info.json and
 * then its dataset's file(s).
 *
 * @throws DdaError as {@link readDatasetInfo} for a dataset_info.json entry that cannot be read.
 */
export function dataFilesOf(spec: string, flag = '--train'): string[] {
  const dataset = existsSync(spec) ? null : parseDatasetSpec(spec);
  if (dataset) return [dataset.info, ...dataFilesOf(readDatasetInfo(dataset.info, dataset.name, flag).file, flag)];
  if (!existsSync(spec) || !statSync(spec).isDirectory()) return [spec];
  return readdirSync(spec).sort().map((n) => join(spec, n)).filter((p) => statSync(p).isFile());
}

/** The records of {@link readTrainingData}. */
export async function readTrainingRecords(path: string, o: RecordOptions = {}): Promise<TrainingRecord[]> {
  return (await readTrainingData(path, o)).records;
}

/** The queries of {@link readQueryData}. */
export async function readQueryRecords(path: string, o: RecordOptions = {}): Promise<QueryRecord[]> {
  return (await readQueryData(path, o)).records;
}

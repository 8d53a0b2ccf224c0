/**
 * The records people fine-tune with, and the outputs they want explained, normalised:
 *
 * Training records (one of, detected per record from its fields, in this order):
 * - `messages`: a chat conversation, `[{role, content}, ...]` with roles system/user/assistant
 *   (a JSON array; in CSV a cell holding the JSON text), rendered with the model's chat template;
 *   the loss is taken over the assistant turns. It must end with an assistant turn.
 * - Alpaca: `instruction`, optional `input`, `output` (optional `system`): one user turn
 *   `instruction` (+ a blank line and `input` when given), the assistant turn `output`, through the
 *   chat template.
 * - the project's `document` / `summary` pairs: the instruction format of METHOD.md (a fixed system
 *   turn and a user turn carrying the document; the summary is the assistant turn).
 * - `prompt` / `response` (or TRL's `completion`): the prompt text is used as it is (it is
 *   everything before the response), unless the prompt format is `chat`: then it is one user turn
 *   (with `system` if given) through the chat template.
 * Optional `id` (string or number; default `<n>`, the line, row or record number).
 *
 * Queries (the outputs to explain): the output in `output` (or `response`), the context in
 * `messages` (the conversation before the output; a final assistant turn with no `output` field
 * is taken as the output), `instruction`/`input`, `document`, or `prompt` (as above), optional
 * `corrected` (the corrected output, for contrastive measurements and `cea`), `id` and `group`.
 *
 * Field names the file uses differently are mapped with {@link FieldMap} (e.g. `--fields
 * prompt=question response=answer`).
 */
import { DdaError, type ChatMessage } from '@dda/core';
import { SYSTEM_PROMPT, userPrompt } from './instruction-format.js';
import { type RawRecord, readRecords } from './read-table.js';

/** Our field name → the file's column name, e.g. `{ prompt: 'question', response: 'answer' }`. */
export type FieldMap = Readonly<Record<string, string>>;

/** The field names {@link FieldMap} may map. */
export const KNOWN_FIELDS = ['id', 'group', 'prompt', 'response', 'completion', 'output', 'corrected', 'messages', 'instruction', 'input', 'system', 'document', 'summary'] as const;

/** How a `prompt` string is turned into model input: as it is (`raw`), or as one user turn of the chat template (`chat`). */
export type PromptFormat = 'raw' | 'chat';

/** A prompt: raw text used as it is, or a conversation rendered with the model's chat template. */
export type PromptSpec = { readonly raw: string } | { readonly chat: readonly ChatMessage[] };

/** Which record shape a record had. */
export type RecordKind = 'messages' | 'alpaca' | 'document-summary' | 'prompt-response';

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

/** Options of {@link readTrainingRecords} and {@link readQueryRecords}. */
export interface RecordOptions {
  readonly fields?: FieldMap;
  /** How `prompt` strings are used (default `raw`). */
  readonly promptFormat?: PromptFormat;
}

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

/**
 * Parses `--fields`-style mappings: `ours=theirs` pairs (e.g. `prompt=question`).
 *
 * @throws DdaError for a pair without `=`, an unknown field of ours, or a field mapped twice.
 */
export function parseFieldMap(pairs: readonly string[]): FieldMap {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const m = /^([^=\s]+)=(.+)$/.exec(p.trim());
    if (!m) throw new DdaError(`--fields: '${p}' is not of the form ours=theirs`, `e.g. --fields prompt=question response=answer; our fields: ${KNOWN_FIELDS.join(', ')}`);
    const [, ours, theirs] = m as unknown as [string, string, string];
    if (!(KNOWN_FIELDS as readonly string[]).includes(ours)) throw new DdaError(`--fields: unknown field '${ours}'`, `our fields are: ${KNOWN_FIELDS.join(', ')}`);
    if (ours in out) throw new DdaError(`--fields: '${ours}' is mapped twice`, 'map each field once');
    out[ours] = theirs;
  }
  return out;
}

/** A record with the mapping applied: our names read from the file's columns. */
function mapped(r: RawRecord, fields: FieldMap): Record<string, unknown> {
  const out: Record<string, unknown> = { ...r.value };
  for (const [ours, theirs] of Object.entries(fields)) {
    if (theirs in r.value) out[ours] = r.value[theirs];
    else if (ours !== theirs) delete out[ours];
  }
  return out;
}

/** A required non-empty string field. */
function text(v: Record<string, unknown>, name: string, where: string, hint: string): string {
  const x = v[name];
  if (x === undefined) throw new DdaError(`${where}: missing field '${name}'`, hint);
  if (typeof x !== 'string') throw new DdaError(`${where}: field '${name}' must be a string, got ${typeName(x)}`, hint);
  if (x.trim() === '') throw new DdaError(`${where}: field '${name}' is empty`, hint);
  return x;
}

/** An optional string field (absent, or a string; empty means absent). */
function optionalText(v: Record<string, unknown>, name: string, where: string): string | null {
  const x = v[name];
  if (x === undefined || x === null) return null;
  if (typeof x !== 'string') throw new DdaError(`${where}: field '${name}' must be a string, got ${typeName(x)}`);
  return x.trim() === '' ? null : x;
}

function idOf(v: Record<string, unknown>, r: RawRecord): string {
  const x = v.id;
  if (x === undefined || x === null) return String(r.number);
  if (typeof x === 'number' && Number.isFinite(x)) return String(x);
  if (typeof x !== 'string' || x.trim() === '') throw new DdaError(`${r.where}: field 'id' must be a non-empty string or a number, got ${JSON.stringify(x)}`, 'give every record a unique id, or leave the field out');
  return x;
}

function messagesOf(v: Record<string, unknown>, where: string): ChatMessage[] {
  let m = v.messages;
  if (typeof m === 'string') {
    try {
      m = JSON.parse(m);
    } catch (e) {
      throw new DdaError(`${where}: field 'messages' is not valid JSON (${(e as Error).message})`, 'in CSV, a messages cell holds the JSON array [{"role": ..., "content": ...}, ...]');
    }
  }
  if (!Array.isArray(m) || m.length === 0) throw new DdaError(`${where}: field 'messages' must be a non-empty array of {role, content}, got ${typeName(m)}`, 'e.g. [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]');
  return m.map((x, i) => {
    const e = x as { role?: unknown; content?: unknown } | null;
    if (e === null || typeof e !== 'object') throw new DdaError(`${where}: message ${i + 1} is ${typeName(x)}, not {role, content}`);
    const role = e.role === 'human' ? 'user' : e.role === 'gpt' || e.role === 'model' ? 'assistant' : e.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant') throw new DdaError(`${where}: message ${i + 1} has role ${JSON.stringify(e.role)}`, "roles must be 'system', 'user' or 'assistant'");
    if (typeof e.content !== 'string') throw new DdaError(`${where}: message ${i + 1} (${role}) has no string 'content'`, 'every message needs a text content');
    return { role, content: e.content };
  });
}

/** The shape of a record, detected from its fields. */
function kindOf(v: Record<string, unknown>, output: 'response' | 'output'): RecordKind | null {
  if (v.messages !== undefined) return 'messages';
  if (v.instruction !== undefined) return 'alpaca';
  if (v.document !== undefined) return 'document-summary';
  if (v.prompt !== undefined) return 'prompt-response';
  void output;
  return null;
}

function alpacaUser(v: Record<string, unknown>, where: string, hint: string): string {
  const instruction = text(v, 'instruction', where, hint);
  const input = optionalText(v, 'input', where);
  return input ? `${instruction}\n\n${input}` : instruction;
}

function withSystem(system: string | null, user: string): ChatMessage[] {
  return [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user', content: user }];
}

const TRAIN_SHAPES = '{"messages": [...]}, {"instruction", "input"?, "output"}, {"document", "summary"} or {"prompt", "response"}';

/** One training record from a raw record. @throws DdaError naming the record and the field. */
export function toTrainingRecord(r: RawRecord, o: RecordOptions = {}): TrainingRecord {
  const v = mapped(r, o.fields ?? {});
  const id = idOf(v, r);
  const kind = kindOf(v, 'response');
  const hint = `a training record is one of ${TRAIN_SHAPES}; map other column names with --fields`;
  switch (kind) {
    case 'messages':
      return { id, where: r.where, kind, content: { chat: messagesOf(v, r.where) } };
    case 'alpaca':
      return { id, where: r.where, kind, content: { chat: [...withSystem(optionalText(v, 'system', r.where), alpacaUser(v, r.where, hint)), { role: 'assistant', content: text(v, 'output', r.where, hint) }] } };
    case 'document-summary':
      return { id, where: r.where, kind, content: { chat: [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt(text(v, 'document', r.where, hint)) }, { role: 'assistant', content: text(v, 'summary', r.where, hint) }] } };
    case 'prompt-response': {
      const prompt = text(v, 'prompt', r.where, hint);
      const response = text(v, v.response === undefined && v.completion !== undefined ? 'completion' : 'response', r.where, hint);
      if (o.promptFormat === 'chat') return { id, where: r.where, kind, content: { chat: [...withSystem(optionalText(v, 'system', r.where), prompt), { role: 'assistant', content: response }] } };
      return { id, where: r.where, kind, content: { raw: { prompt, response } } };
    }
    default:
      throw new DdaError(`${r.where}: not a training record (fields: ${Object.keys(r.value).join(', ') || 'none'})`, hint);
  }
}

const QUERY_SHAPES = '{"prompt", "output"}, {"messages": [...], "output"?}, {"instruction", "input"?, "output"} or {"document", "output"}, each with optional "corrected", "id" and "group"';

/** One query from a raw record. @throws DdaError naming the record and the field. */
export function toQueryRecord(r: RawRecord, o: RecordOptions = {}): QueryRecord {
  const v = mapped(r, o.fields ?? {});
  const id = idOf(v, r);
  const kind = kindOf(v, 'output');
  const hint = `a query is one of ${QUERY_SHAPES}; map other column names with --fields`;
  const groupValue = v.group;
  if (groupValue !== undefined && groupValue !== null && typeof groupValue !== 'string' && typeof groupValue !== 'number') throw new DdaError(`${r.where}: field 'group' must be a string, got ${typeName(groupValue)}`, hint);
  const group = groupValue === undefined || groupValue === null || groupValue === '' ? null : String(groupValue);
  const outputField = v.output === undefined && v.response !== undefined ? 'response' : 'output';
  let prompt: PromptSpec;
  let output: string | null = v[outputField] === undefined ? null : text(v, outputField, r.where, hint);
  switch (kind) {
    case 'messages': {
      const chat = messagesOf(v, r.where);
      const last = chat[chat.length - 1] as ChatMessage;
      if (output === null && last.role === 'assistant') {
        output = last.content;
        chat.pop();
      }
      if (chat.length === 0 || chat[chat.length - 1]?.role === 'assistant') throw new DdaError(`${r.where}: the conversation before the output must end with a user turn`, 'put the output to explain in "output", or as the last assistant message');
      prompt = { chat };
      break;
    }
    case 'alpaca':
      prompt = { chat: withSystem(optionalText(v, 'system', r.where), alpacaUser(v, r.where, hint)) };
      break;
    case 'document-summary':
      prompt = { chat: [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: userPrompt(text(v, 'document', r.where, hint)) }] };
      break;
    case 'prompt-response': {
      const p = text(v, 'prompt', r.where, hint);
      prompt = o.promptFormat === 'chat' ? { chat: withSystem(optionalText(v, 'system', r.where), p) } : { raw: p };
      break;
    }
    default:
      throw new DdaError(`${r.where}: not a query (fields: ${Object.keys(r.value).join(', ') || 'none'})`, hint);
  }
  if (output === null) throw new DdaError(`${r.where}: missing field 'output'`, hint);
  const corrected = optionalText(v, 'corrected', r.where);
  const used = new Set<string>([...KNOWN_FIELDS, ...Object.values(o.fields ?? {})]);
  const meta = Object.fromEntries(Object.entries(r.value).filter(([k]) => !used.has(k)));
  return { id, where: r.where, kind, group, prompt, output, corrected, meta };
}

/** Throws a DdaError naming both places when two records share an id. */
function checkUniqueIds(records: readonly { readonly id: string; readonly where: string }[], what: string): void {
  const seen = new Map<string, string>();
  for (const r of records) {
    const prev = seen.get(r.id);
    if (prev !== undefined) throw new DdaError(`${r.where}: duplicate ${what} id '${r.id}' (first used at ${prev})`, 'give every record a unique id');
    seen.set(r.id, r.where);
  }
}

/**
 * Reads a training-data file (JSON Lines, JSON or CSV; see the module doc for the record shapes).
 *
 * @returns The records in file order.
 * @throws DdaError naming the file and record: unreadable or empty file, malformed JSON/CSV, a
 *   record of no known shape, a missing, non-string or empty field, a bad `messages` array, duplicate ids.
 */
export async function readTrainingRecords(path: string, o: RecordOptions = {}): Promise<TrainingRecord[]> {
  const records = (await readRecords(path, 'training data')).map((r) => toTrainingRecord(r, o));
  checkUniqueIds(records, 'training');
  return records;
}

/**
 * Reads a file of queries (the outputs to explain; see the module doc).
 *
 * @returns The queries in file order.
 * @throws DdaError naming the file and record, as {@link readTrainingRecords}.
 */
export async function readQueryRecords(path: string, o: RecordOptions = {}): Promise<QueryRecord[]> {
  const records = (await readRecords(path, 'queries')).map((r) => toQueryRecord(r, o));
  checkUniqueIds(records, 'query');
  return records;
}

/** Loading a user's own document/summary pairs from JSON Lines or CSV, validated with a schema. */
import { z } from 'zod';
import { DdaError } from '@dda/core';
import { parseCsv } from '@dda/data';
import type { DocSummary } from './canaries.js';

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

/** A non-empty text field: the messages say which field and what is wrong with it. */
const textField = (name: string): z.ZodType<string> =>
  z.string({ error: (iss) => (iss.input === undefined ? `missing field '${name}'` : `field '${name}' must be a string, got ${typeName(iss.input)}`) })
    .refine((v) => v.trim().length > 0, { message: `field '${name}' is empty` });

/**
 * One record of a document/summary file. Other fields (e.g. XSum's) are allowed and ignored; a
 * missing `id` becomes `line-{n}`.
 */
export const DocSummaryRecordSchema = z.object({
  id: z.string({ error: (iss) => `field 'id' must be a non-empty string when given, got ${typeName(iss.input)}` })
    .min(1, { message: "field 'id' must be a non-empty string when given" }).optional(),
  document: textField('document'),
  summary: textField('summary'),
});

/** A parsed record: its value, where it is in messages (`file:3`, `file: row 3`), its place (`line 3`, `row 3`) and number. */
interface Rec {
  readonly value: unknown;
  readonly where: string;
  readonly place: string;
  readonly lineNo: number;
}

/** Validates parsed records with {@link DocSummaryRecordSchema} and checks ids are unique and records exist. */
function validateRecords(records: readonly Rec[], fileName: string, hint: string): DocSummary[] {
  const rows: DocSummary[] = [];
  const idPlace = new Map<string, string>();
  for (const { value, where, place, lineNo } of records) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DdaError(`${where}: expected a JSON object, got ${typeName(value)}`, hint);
    }
    const r = DocSummaryRecordSchema.safeParse(value);
    if (!r.success) throw new DdaError(`${where}: ${r.error.issues[0]?.message ?? 'invalid record'}`, hint);
    const id = r.data.id ?? `line-${lineNo}`;
    const prev = idPlace.get(id);
    if (prev !== undefined) throw new DdaError(`${where}: duplicate id '${id}' (first used on ${prev})`, 'give every record a unique id');
    idPlace.set(id, place);
    rows.push({ id, document: r.data.document, summary: r.data.summary });
  }
  if (rows.length === 0) throw new DdaError(`${fileName}: no records (the file is empty)`, hint);
  return rows;
}

/**
 * Parses JSON Lines text into document/summary pairs: one JSON object per line,
 * `{"id"?: string, "document": string, "summary": string}`. Blank lines are skipped; a missing
 * `id` becomes `line-{n}` (n = 1-based line number).
 *
 * Throws a {@link DdaError} naming `fileName` and the line for: malformed JSON, a line that is not
 * an object, a missing, non-string or empty `document`/`summary`, a non-string or empty `id`, a
 * duplicate id (naming both lines), and a file with no records.
 *
 * @param text the file's contents
 * @param fileName the name shown in error messages
 */
export function loadDocSummaryJsonl(text: string, fileName: string): DocSummary[] {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const hint = 'each line must be a JSON object {"id"?: string, "document": string, "summary": string}';
  const records: Rec[] = [];
  body.split(/\r?\n/).forEach((raw, i) => {
    const where = `${fileName}:${i + 1}`;
    if (raw.trim().length === 0) return;
    try {
      records.push({ value: JSON.parse(raw) as unknown, where, place: `line ${i + 1}`, lineNo: i + 1 });
    } catch (e) {
      throw new DdaError(`${where}: invalid JSON (${e instanceof Error ? e.message : String(e)})`, hint);
    }
  });
  return validateRecords(records, fileName, hint);
}

/**
 * Parses CSV text (through fast-csv) with a header row naming the columns `document`, `summary`
 * and optionally `id` (others are ignored; an empty id cell means none) into document/summary pairs. Quoted fields may span
 * lines. Errors name the file and the record's row (the header is row 1): a row with the wrong
 * number of columns, a missing column, an empty field, a duplicate id, or no records.
 */
export async function loadDocSummaryCsv(text: string, fileName: string): Promise<DocSummary[]> {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const hint = 'the CSV needs a header row with the columns document and summary (and optionally id), and one record per row';
  const records: Rec[] = (await parseCsv(body, fileName, hint)).map((r) => {
    const value = { ...r.value };
    if (value.id === '') delete value.id; // an empty id cell means no id
    return { value, where: r.where, place: `row ${r.number}`, lineNo: r.number };
  });
  return validateRecords(records, fileName, hint);
}

/** Loading a user's own document/summary pairs from JSON Lines. */
import { DdaError } from '@dda/core';
import type { DocSummary } from './canaries.js';

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
  const lines = body.split(/\r?\n/);
  const rows: DocSummary[] = [];
  const idLine = new Map<string, number>();
  const hint = 'each line must be a JSON object {"id"?: string, "document": string, "summary": string}';
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const where = `${fileName}:${lineNo}`;
    if (raw.trim().length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new DdaError(`${where}: invalid JSON (${why})`, hint);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DdaError(`${where}: expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`, hint);
    }
    const obj = value as Record<string, unknown>;
    for (const key of ['document', 'summary'] as const) {
      const v = obj[key];
      if (v === undefined) throw new DdaError(`${where}: missing field '${key}'`, hint);
      if (typeof v !== 'string') throw new DdaError(`${where}: field '${key}' must be a string, got ${v === null ? 'null' : typeof v}`, hint);
      if (v.trim().length === 0) throw new DdaError(`${where}: field '${key}' is empty`, hint);
    }
    let id: string;
    if (obj.id === undefined) {
      id = `line-${lineNo}`;
    } else if (typeof obj.id !== 'string' || obj.id.length === 0) {
      throw new DdaError(`${where}: field 'id' must be a non-empty string when given`, hint);
    } else {
      id = obj.id;
    }
    const prev = idLine.get(id);
    if (prev !== undefined) {
      throw new DdaError(`${where}: duplicate id '${id}' (first used on line ${prev})`, 'give every record a unique id');
    }
    idLine.set(id, lineNo);
    rows.push({ id, document: obj.document as string, summary: obj.summary as string });
  });
  if (rows.length === 0) throw new DdaError(`${fileName}: no records (the file is empty)`, hint);
  return rows;
}

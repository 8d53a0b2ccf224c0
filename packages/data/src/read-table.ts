/**
 * Reads a file of records: JSON Lines (`.jsonl`, `.ndjson`), JSON (`.json`: an array of objects),
 * CSV (`.csv`, through fast-csv, with a header row), Parquet (`.parquet`) or a folder written by
 * `datasets.Dataset.save_to_disk` (see columnar.ts). Every record keeps where it came from, so
 * errors can name the file and the line (JSON Lines), the row (CSV, the header is row 1; Parquet
 * and Arrow, from 1) or the index (JSON).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseString } from 'fast-csv';
import { DdaError } from '@dda/core';
import { isSavedDataset, readParquet, readSavedDataset, type RawRecord } from './columnar.js';

export type { RawRecord } from './columnar.js';


/** The file formats {@link readRecords} reads, from the extension. */
export type TableFormat = 'jsonl' | 'json' | 'csv' | 'parquet';

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

const FILE_TYPES = 'give a JSON Lines (.jsonl), JSON (.json, an array of records), CSV (.csv, with a header row) or Parquet (.parquet) file, or a folder written by datasets.Dataset.save_to_disk';

/** The format of a file from its extension. @throws DdaError for an unknown extension. */
export function tableFormatOf(path: string): TableFormat {
  if (/\.(jsonl|ndjson)$/i.test(path)) return 'jsonl';
  if (/\.json$/i.test(path)) return 'json';
  if (/\.csv$/i.test(path)) return 'csv';
  if (/\.parquet$/i.test(path)) return 'parquet';
  throw new DdaError(`${path}: unknown file type`, FILE_TYPES);
}

/**
 * Reads every record of a file, or of a folder written by `datasets.Dataset.save_to_disk`.
 *
 * @param what - What the file holds, for messages (e.g. `training data`).
 * @throws DdaError naming the file (and line, row or record) when it cannot be read, is empty,
 *   has malformed JSON, CSV, Parquet or Arrow, or a record that is not an object.
 */
export async function readRecords(path: string, what: string): Promise<RawRecord[]> {
  if (!existsSync(path)) throw new DdaError(`${what}: file '${path}' not found`, 'check the path');
  const noRecords = (): DdaError => new DdaError(`${what}: '${path}' has no records`, 'the file needs at least one record');
  if (statSync(path).isDirectory()) {
    if (!isSavedDataset(path)) throw new DdaError(`${what}: '${path}' is a folder, and not one written by datasets' save_to_disk (no state.json)`, FILE_TYPES);
    const rows = await readSavedDataset(path);
    if (rows.length === 0) throw noRecords();
    return rows;
  }
  const format = tableFormatOf(path);
  if (format === 'parquet') {
    const rows = await readParquet(path);
    if (rows.length === 0) throw noRecords();
    return rows;
  }
  let text = utf8Text(readFileSync(path), path, what);
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  if (text.trim() === '') throw new DdaError(`${what}: '${path}' is empty`, 'the file needs at least one record');
  const records = format === 'jsonl' ? jsonLines(text, path) : format === 'json' ? jsonArray(text, path) : (await parseCsv(text, path)).map(withoutEmptyCells);
  if (records.length === 0) throw noRecords();
  return records;
}

/** A CSV record without its empty cells (an empty cell means no value). */
function withoutEmptyCells(r: RawRecord): RawRecord {
  return { ...r, value: Object.fromEntries(Object.entries(r.value).filter(([, v]) => v !== '')) };
}

/**
 * The bytes as UTF-8 text. Node's default decoding replaces invalid bytes with U+FFFD silently,
 * which would change the text the model sees (a subword tokenizer encodes the replacement
 * character like any other), so invalid UTF-8 is refused naming its line and byte.
 *
 * @throws DdaError naming the file, the line and the first invalid byte.
 */
function utf8Text(bytes: Buffer, path: string, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Find the first invalid sequence: decode growing prefixes line by line.
    let line = 1;
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i < bytes.length && bytes[i] !== 0x0a) continue;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start, i));
      } catch {
        const bad = bytes.subarray(start, i).findIndex((b) => b >= 0x80);
        const at = start + Math.max(0, bad);
        throw new DdaError(
          `${what}: '${path}' is not valid UTF-8 (line ${line}, byte ${at}: 0x${(bytes[at] ?? 0).toString(16)})`,
          'the file seems to use another encoding (e.g. Latin-1 or Windows-1252): convert it, e.g. iconv -f latin1 -t utf-8 in > out',
        );
      }
      line++;
      start = i + 1;
    }
    throw new DdaError(`${what}: '${path}' is not valid UTF-8`, 'convert it to UTF-8, e.g. iconv -f latin1 -t utf-8 in > out');
  }
}

function asObject(value: unknown, where: string, hint: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new DdaError(`${where}: expected a JSON object, got ${typeName(value)}`, hint);
  return value as Record<string, unknown>;
}

function jsonLines(text: string, path: string): RawRecord[] {
  const out: RawRecord[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new DdaError(`${where}: invalid JSON (${(e as Error).message})`, 'each line of a JSON Lines file must be one JSON object');
    }
    out.push({ value: asObject(value, where, 'each line of a JSON Lines file must be one JSON object'), where, number: i + 1 });
  });
  return out;
}

function jsonArray(text: string, path: string): RawRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DdaError(`${path}: invalid JSON (${(e as Error).message})`, 'a .json file must hold one JSON array of records (use .jsonl for one record per line)');
  }
  if (!Array.isArray(value)) {
    // A common wrapping: {"data": [...]} or {"train": [...]}: name the key holding the records.
    const inner = value !== null && typeof value === 'object' ? Object.entries(value).filter(([, v]) => Array.isArray(v) && v.length > 0 && v.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x))) : [];
    const hint = inner.length > 0
      ? `the records seem to be under ${inner.map(([k]) => `'${k}'`).join(', ')}: write that array alone to a file, e.g. jq '.${inner[0]?.[0]}' ${path} > records.json`
      : 'a .json file must hold one JSON array of records (use .jsonl for one record per line)';
    throw new DdaError(`${path}: expected a JSON array of records, got ${inner.length > 0 ? 'an object' : typeName(value)}${inner.length > 0 ? ` with the key(s) ${Object.keys(value as object).map((k) => `'${k}'`).join(', ')}` : ''}`, hint);
  }
  return value.map((v, i) => {
    const where = `${path}: record ${i + 1}`;
    return { value: asObject(v, where, 'every element of the array must be a JSON object'), where, number: i + 1 };
  });
}

/**
 * Parses CSV text (through fast-csv) with a header row; quoted cells may span lines. Every cell is
 * kept as a string (empty cells as ''). Rows are numbered as in a spreadsheet (the header is row 1).
 *
 * @throws DdaError naming the file (and row) for malformed CSV or a row with another column count.
 */
export async function parseCsv(text: string, path: string, hint = 'the CSV needs a header row naming the columns and one record per row (quote cells that hold commas or newlines)'): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  await new Promise<void>((resolve, reject) => {
    let row = 1;
    let delimiter: string | undefined;
    parseString(text, { headers: true, strictColumnHandling: true, ignoreEmpty: true, trim: false })
      .on('error', (e: Error) => reject(new DdaError(`${path}: not valid CSV (${e.message})`, hint)))
      .on('headers', (h: string[]) => {
        // One header cell holding ';' or a tab: the file uses another delimiter than the comma.
        const other = h.length === 1 ? [';', '\t', '|'].find((d) => (h[0] ?? '').includes(d)) : undefined;
        if (other !== undefined) delimiter = other;
      })
      .on('data-invalid', (_: unknown, n: number) => reject(new DdaError(
        `${path}: row ${n + 1} has a different number of columns than the header${delimiter !== undefined ? ` (the header is one column, '${text.split(/\r?\n/)[0]?.replace(/^\uFEFF/, '').slice(0, 80)}': the file seems to separate its columns with ${delimiter === '\t' ? 'tabs' : `'${delimiter}'`}, not commas)` : ''}`,
        delimiter !== undefined ? `save it with commas (e.g. pandas: pd.read_csv(f, sep=${JSON.stringify(delimiter)}).to_csv(out, index=False)), or as JSON Lines` : hint,
      )))
      .on('data', (value: Record<string, string>) => {
        row++;
        out.push({ value, where: `${path}: row ${row}`, number: row });
      })
      .on('end', () => resolve());
  });
  return out;
}

/** A field of a file's records that was read and not used. */
export interface IgnoredField {
  /** The field (column), as named in the file. */
  readonly column: string;
  /** How many records have it. */
  readonly records: number;
  /** The first record that has it (e.g. `train.jsonl:3`). */
  readonly example: string;
  /** Why it is not used. */
  readonly reason: string;
}

/** Collects the fields of a file's records that are read and not used, to warn once per field. */
export class UnusedFields {
  private readonly seen = new Map<string, { records: number; example: RawRecord; reason: string }>();

  /** Notes that record `r` has field `column`, not used for `reason` (the first reason given is kept). */
  note(column: string, r: RawRecord, reason: string): void {
    const x = this.seen.get(column);
    if (x) x.records++;
    else this.seen.set(column, { records: 1, example: r, reason });
  }

  /** The fields noted, in the order first seen. */
  list(): IgnoredField[] {
    return [...this.seen].map(([column, x]) => ({ column, records: x.records, example: x.example.where, reason: x.reason }));
  }

  /**
   * Logs one warning per field: `warning: <what>: field '<f>' is read and not used in <n> of
   * <total> record(s): <reason>; e.g. <where>: <the record as JSON, cut at 200 characters>`.
   */
  warn(what: string, total: number, log: (line: string) => void): void {
    for (const [column, x] of this.seen) {
      const json = JSON.stringify(x.example.value);
      log(`warning: ${what}: field '${column}' is read and not used in ${x.records} of ${total} record(s): ${x.reason}; e.g. ${x.example.where}: ${json.length > 200 ? `${json.slice(0, 200)}…` : json}`);
    }
  }
}

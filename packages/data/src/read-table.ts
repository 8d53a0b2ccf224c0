/**
 * Reads a file of records: JSON Lines (`.jsonl`, `.ndjson`), JSON (`.json`: an array of objects),
 * CSV (`.csv`, through fast-csv, with a header row), Parquet (`.parquet`) or a folder written by
 * `datasets.Dataset.save_to_disk` (see columnar.ts). Every record keeps where it came from, so
 * errors can name the file and the line (JSON Lines), the row (CSV, the header is row 1; Parquet
 * and Arrow, from 1) or the index (JSON). JSON Lines and CSV files are read as a stream, whole
 * lines at a time ({@link eachRecord}), with the errors of reading them whole.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { parse } from 'fast-csv';
import { DdaError } from '@dda/core';
import { eachParquetRecord, eachSavedDatasetRecord, isSavedDataset, type RawRecord } from './columnar.js';

export type { RawRecord } from './columnar.js';


/** The file formats {@link readRecords} reads, from the extension. */
export type TableFormat = 'jsonl' | 'json' | 'csv' | 'parquet';

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

const FILE_TYPES = 'give a JSON Lines (.jsonl), JSON (.json, an array of records), CSV (.csv, with a header row) or Parquet (.parquet) file, or a folder written by datasets.Dataset.save_to_disk';

/** Bytes read at a time from a JSON Lines or CSV file. */
const CHUNK_BYTES = 1 << 20;

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
  const out: RawRecord[] = [];
  await eachRecord(path, what, (r) => out.push(r));
  return out;
}

/**
 * Calls `visit` with every record of a file, or of a folder written by `datasets.Dataset.save_to_disk`,
 * in file order, holding one piece of the file at a time: a JSON Lines or CSV file `chunkBytes` at a
 * time, cut after a line's end; a JSON file (one array) `chunkBytes` at a time, cut after an ASCII
 * byte, and one record of it; a Parquet file one row group, an Arrow file one record batch.
 *
 * The errors are those of {@link readRecords}, which reads the file whole, and come in its order: invalid
 * UTF-8 anywhere in the file (its first line and byte), then an empty file, then the first malformed
 * record (`visit` has seen the records before it), then a file without records. An error `visit` throws
 * ends the reading with it.
 *
 * @returns The number of records.
 */
export async function eachRecord(path: string, what: string, visit: (r: RawRecord) => void, chunkBytes = CHUNK_BYTES): Promise<number> {
  if (!existsSync(path)) throw new DdaError(`${what}: file '${path}' not found`, 'check the path');
  let count = 0;
  const counted = (r: RawRecord): void => {
    count++;
    visit(r);
  };
  if (statSync(path).isDirectory()) {
    if (!isSavedDataset(path)) throw new DdaError(`${what}: '${path}' is a folder, and not one written by datasets' save_to_disk (no state.json)`, FILE_TYPES);
    await eachSavedDatasetRecord(path, counted);
  } else {
    const format = tableFormatOf(path);
    if (format === 'parquet') await eachParquetRecord(path, counted);
    else await eachTextRecord(path, what, format, counted, chunkBytes);
  }
  if (count === 0) throw new DdaError(`${what}: '${path}' has no records`, 'the file needs at least one record');
  return count;
}

const emptyFile = (path: string, what: string): DdaError => new DdaError(`${what}: '${path}' is empty`, 'the file needs at least one record');

/** Text decoded from a file's start without the byte-order marks a whole-file read drops: the decoder's one, and one more. */
const withoutBom = (text: string): string => text.replace(/^\uFEFF\uFEFF?/, '');

/**
 * Where a JSON Lines or CSV file may be cut: after its last line feed that has at least 3 bytes after
 * it and no byte-order mark there (fast-csv drops a mark that opens a piece of text it parses); -1
 * when there is none.
 */
function lastCut(bytes: Buffer): number {
  for (let i = bytes.lastIndexOf(0x0a, bytes.length - 4); i >= 0; i = i > 0 ? bytes.lastIndexOf(0x0a, i - 1) : -1) {
    if (!(bytes[i + 1] === 0xef && bytes[i + 2] === 0xbb && bytes[i + 3] === 0xbf)) return i + 1;
  }
  return -1;
}

/**
 * Where a JSON file may be cut: after its last ASCII byte, so never inside a UTF-8 sequence (nor a
 * byte-order mark, whose bytes are not ASCII); -1 when there is none.
 */
function lastAsciiCut(bytes: Buffer): number {
  for (let i = bytes.length - 1; i >= 0; i--) if ((bytes[i] as number) < 0x80) return i + 1;
  return -1;
}

/** The records of a JSON Lines, JSON or CSV file, read as a stream (see {@link eachRecord}). */
async function eachTextRecord(path: string, what: string, format: 'jsonl' | 'json' | 'csv', visit: (r: RawRecord) => void, chunkBytes: number): Promise<void> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  // An error of `visit` is not the file's: kept apart from the parsers' (fast-csv would report it as malformed CSV) and thrown at once.
  const visitor: { error?: { readonly thrown: unknown } } = {};
  const guarded = (r: RawRecord): void => {
    if (visitor.error) return;
    try {
      visit(r);
    } catch (thrown) {
      visitor.error = { thrown };
    }
  };
  const records = format === 'jsonl' ? jsonLines(path, guarded) : format === 'json' ? jsonArrayRecords(path, guarded) : csvRows(path, undefined, (r) => guarded(withoutEmptyCells(r)));
  // The first malformed record: thrown once the rest of the file is known to be UTF-8 and not empty.
  let failure: unknown = null;
  let blank = true;
  let line = 1; // of the next piece's first line
  let offset = 0; // of the next piece's first byte
  let lineStart = 0; // of the first byte of the next piece's first line (a JSON piece may start inside a line)
  const fd = openSync(path, 'r');
  try {
    let held: Buffer[] = []; // bytes read after the last cut
    for (let end = false; !end;) {
      const buf = Buffer.allocUnsafe(chunkBytes);
      const n = readSync(fd, buf, 0, chunkBytes, null);
      end = n === 0;
      const bytes = Buffer.concat([...held, buf.subarray(0, n)]);
      const cut = end ? bytes.length : format === 'json' ? lastAsciiCut(bytes) : lastCut(bytes);
      if (cut < 0) {
        held = [bytes];
        continue;
      }
      held = [bytes.subarray(cut)];
      const piece = bytes.subarray(0, cut);
      let text: string;
      try {
        text = decoder.decode(piece);
      } catch {
        // Named from the start of its line, as a whole-file read names it (a JSON piece may start mid-line).
        throw utf8Error(lineStart < offset ? Buffer.concat([readBytes(fd, lineStart, offset - lineStart), piece]) : piece, path, what, line, lineStart);
      }
      if (offset === 0) text = withoutBom(text);
      if (blank && text.trim() !== '') blank = false;
      if (failure === null && text !== '') {
        try {
          await records.write(text);
        } catch (e) {
          failure = e;
        }
        if (visitor.error) throw visitor.error.thrown;
      }
      for (let i = piece.indexOf(0x0a); i >= 0; i = piece.indexOf(0x0a, i + 1)) {
        line++;
        lineStart = offset + i + 1;
      }
      offset += cut;
    }
  } finally {
    closeSync(fd);
  }
  if (blank) throw emptyFile(path, what);
  if (failure === null) {
    try {
      await records.end();
    } catch (e) {
      failure = e;
    }
    if (visitor.error) throw visitor.error.thrown;
  }
  if (failure === null) return;
  // fast-csv quotes the text after a malformed cell in its message, which may reach past the piece
  // it was given: the message of the file parsed whole.
  if (format === 'csv') await parseCsv(withoutBom(utf8Text(readFileSync(path), path, what)), path);
  // A JSON file that is not an array: the whole file's value names what it is (e.g. the key holding the records).
  if (format === 'json' && failure === NOT_AN_ARRAY) throw notAnArrayError(withoutBom(utf8Text(readFileSync(path), path, what)), path);
  throw failure;
}

/** `length` bytes of an open file from byte `position`. */
function readBytes(fd: number, position: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let n = 0;
  while (n < length) {
    const r = readSync(fd, b, n, length - n, position + n);
    if (r === 0) break;
    n += r;
  }
  return b.subarray(0, n);
}

/** The failure of a JSON file whose value is not an array (its error comes from parsing the file whole). */
const NOT_AN_ARRAY = new DdaError('a .json file must hold one JSON array of records');

const JSON_HINT = 'a .json file must hold one JSON array of records (use .jsonl for one record per line)';

/** JSON's white space: space, tab, line feed, carriage return. */
const isJsonSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/**
 * A reader of a JSON file's array given in pieces of text, in order; each element to `visit` as
 * the piece that ends it is written. The array's own commas and brackets are found by tracking
 * strings (with their escapes) and nesting; each element's text is then parsed by JSON.parse, so an
 * element is read exactly as a whole-file JSON.parse reads it, and text that is not one JSON array
 * of values is refused.
 *
 * @throws DdaError naming the file, the record and its line: invalid JSON in a record, a missing or
 *   extra comma, text after the array, an array not closed at the end; {@link NOT_AN_ARRAY} when the
 *   file's value is not an array.
 */
function jsonArrayRecords(path: string, visit: (r: RawRecord) => void): { write(text: string): Promise<void>; end(): Promise<void> } {
  let phase: 'before' | 'items' | 'after' = 'before';
  let parts: string[] = []; // the text of the element being read
  let depth = 0;
  let inString = false;
  let escaped = false;
  let count = 0; // elements read
  let line = 1; // of the text being read
  let elementLine = 1; // where the element being read starts (its first character other than white space)
  let started = false; // whether that character was seen
  const where = (n: number): string => `${path}: record ${n}`;
  const element = (closing: boolean): void => {
    const text = parts.join('');
    parts = [];
    if (text.trim() === '') {
      if (closing && count === 0) return; // []
      throw new DdaError(`${where(count + 1)} (line ${elementLine}): invalid JSON (${closing ? 'a comma before the closing bracket' : 'two commas with nothing between them'})`, JSON_HINT);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new DdaError(`${where(count + 1)} (line ${elementLine}): invalid JSON (${(e as Error).message})`, JSON_HINT);
    }
    count++;
    visit({ value: asObject(value, where(count), 'every element of the array must be a JSON object'), where: where(count), number: count });
  };
  return {
    write: async (text) => {
      let from = 0; // start of the element's text in this piece
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c === 0x0a) line++;
        if (phase === 'items') {
          if (inString) {
            if (escaped) escaped = false;
            else if (c === 0x5c) escaped = true; // backslash
            else if (c === 0x22) inString = false;
            continue;
          }
          if (!started && !isJsonSpace(c)) {
            started = true;
            elementLine = line;
          }
          if (c === 0x22) inString = true;
          else if (c === 0x7b || c === 0x5b) depth++; // { [
          else if (c === 0x7d || (c === 0x5d && depth > 0)) {
            depth--;
            if (depth < 0) throw new DdaError(`${where(count + 1)} (line ${elementLine}): invalid JSON (a closing '}' without its opening '{')`, JSON_HINT);
          } else if (depth === 0 && (c === 0x2c || c === 0x5d)) { // , ]
            parts.push(text.slice(from, i));
            element(c === 0x5d);
            from = i + 1;
            started = false;
            elementLine = line;
            if (c === 0x5d) phase = 'after';
          }
        } else if (!isJsonSpace(c)) {
          if (phase === 'after') throw new DdaError(`${path}: invalid JSON (text after the array's closing bracket, line ${line})`, JSON_HINT);
          if (c !== 0x5b) throw NOT_AN_ARRAY;
          phase = 'items';
          from = i + 1;
          elementLine = line;
        }
      }
      if (phase === 'items') parts.push(text.slice(from));
    },
    end: async () => {
      if (phase === 'before') throw NOT_AN_ARRAY; // (a blank file is refused before this)
      if (phase === 'items') throw new DdaError(`${path}: invalid JSON (the file ends inside the array, in record ${count + 1} (line ${elementLine}) or after it: a missing ']'?)`, 'the file seems cut short; a .json file must hold one JSON array of records');
    },
  };
}

/** A reader of JSON Lines text given whole lines at a time; each record to `visit`. */
function jsonLines(path: string, visit: (r: RawRecord) => void): { write(text: string): Promise<void>; end(): Promise<void> } {
  let line = 0;
  return {
    write: async (text) => {
      const lines = text.split('\n');
      if (text.endsWith('\n')) lines.pop(); // the next piece starts a line
      for (const l of lines) {
        line++;
        const body = l.endsWith('\r') ? l.slice(0, -1) : l;
        if (body.trim() === '') continue;
        const where = `${path}:${line}`;
        let value: unknown;
        try {
          value = JSON.parse(body);
        } catch (e) {
          throw new DdaError(`${where}: invalid JSON (${(e as Error).message})`, 'each line of a JSON Lines file must be one JSON object');
        }
        visit({ value: asObject(value, where, 'each line of a JSON Lines file must be one JSON object'), where, number: line });
      }
    },
    end: async () => {},
  };
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
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw utf8Error(bytes, path, what);
  }
}

/**
 * The error naming the first invalid UTF-8 sequence of `bytes`, which start at line `firstLine` and
 * byte `firstByte` of the file: its line and the line's first byte above 0x7f.
 */
function utf8Error(bytes: Buffer, path: string, what: string, firstLine = 1, firstByte = 0): DdaError {
  // Find the first invalid sequence: decode line by line.
  let line = firstLine;
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x0a) continue;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start, i));
    } catch {
      const bad = bytes.subarray(start, i).findIndex((b) => b >= 0x80);
      const at = start + Math.max(0, bad);
      return new DdaError(
        `${what}: '${path}' is not valid UTF-8 (line ${line}, byte ${firstByte + at}: 0x${(bytes[at] ?? 0).toString(16)})`,
        'the file seems to use another encoding (e.g. Latin-1 or Windows-1252): convert it, e.g. iconv -f latin1 -t utf-8 in > out',
      );
    }
    line++;
    start = i + 1;
  }
  return new DdaError(`${what}: '${path}' is not valid UTF-8`, 'convert it to UTF-8, e.g. iconv -f latin1 -t utf-8 in > out');
}

function asObject(value: unknown, where: string, hint: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new DdaError(`${where}: expected a JSON object, got ${typeName(value)}`, hint);
  return value as Record<string, unknown>;
}

/**
 * The error of a JSON file whose text does not open an array (the streamed reader's {@link NOT_AN_ARRAY}),
 * from its value parsed whole: invalid JSON, or what the value is instead, naming the key that holds
 * the records in a common wrapping ({"data": [...]}).
 */
function notAnArrayError(text: string, path: string): DdaError {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return new DdaError(`${path}: invalid JSON (${(e as Error).message})`, JSON_HINT);
  }
  const inner = value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.entries(value).filter(([, v]) => Array.isArray(v) && v.length > 0 && v.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x))) : [];
  const hint = inner.length > 0 ? `the records seem to be under ${inner.map(([k]) => `'${k}'`).join(', ')}: write that array alone to a file, e.g. jq '.${inner[0]?.[0]}' ${path} > records.json` : JSON_HINT;
  return new DdaError(`${path}: expected a JSON array of records, got ${inner.length > 0 ? 'an object' : typeName(value)}${inner.length > 0 ? ` with the key(s) ${Object.keys(value as object).map((k) => `'${k}'`).join(', ')}` : ''}`, hint);
}

/**
 * Parses CSV text (through fast-csv) with a header row; quoted cells may span lines. Every cell is
 * kept as a string (empty cells as ''). Rows are numbered as in a spreadsheet (the header is row 1).
 *
 * @throws DdaError naming the file (and row) for malformed CSV or a row with another column count.
 */
export async function parseCsv(text: string, path: string, hint?: string): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  const rows = csvRows(path, hint, (r) => out.push(r));
  await rows.write(text);
  await rows.end();
  return out;
}

/**
 * fast-csv's parser with a header row, fed CSV text piece by piece (`write`, then `end`): each row
 * to `onRow` as it is parsed. `write` and `end` resolve once their text is parsed, and reject with
 * the first malformed row (naming the file and row) or a row with another column count than the header.
 */
function csvRows(
  path: string, hint = 'the CSV needs a header row naming the columns and one record per row (quote cells that hold commas or newlines)', onRow: (r: RawRecord) => void,
): { write(text: string): Promise<void>; end(): Promise<void> } {
  let row = 1;
  let delimiter: string | undefined;
  let header: string | undefined; // the text's first line
  let failure: DdaError | null = null;
  const stream = parse({ headers: true, strictColumnHandling: true, ignoreEmpty: true, trim: false });
  // fast-csv drops a byte-order mark that opens the text it parses: the text of the first write, and
  // what is left after the last whole row when the stream ends. Text written in pieces is parsed once
  // per piece, after the rest of the row the previous piece left open: a row opening with U+FEFF there
  // would lose it, where one write keeps it. For those parses the mark is doubled, so that one is left.
  const inner = stream as unknown as { parse(data: string, hasMoreData: boolean): unknown };
  const parseText = inner.parse.bind(stream);
  let parses = 0;
  inner.parse = (data, hasMoreData) => parseText(parses++ > 0 && hasMoreData && data.startsWith('\uFEFF') ? `\uFEFF${data}` : data, hasMoreData);
  const ended = new Promise<void>((resolve, reject) => {
    const fail = (e: DdaError): void => {
      failure ??= e;
      reject(failure);
    };
    stream
      .on('error', (e: Error) => fail(new DdaError(`${path}: not valid CSV (${e.message})`, hint)))
      .on('headers', (h: string[]) => {
        // One header cell holding ';' or a tab: the file uses another delimiter than the comma.
        const other = h.length === 1 ? [';', '\t', '|'].find((d) => (h[0] ?? '').includes(d)) : undefined;
        if (other !== undefined) delimiter = other;
      })
      .on('data-invalid', (_: unknown, n: number) => fail(new DdaError(
        `${path}: row ${n + 1} has a different number of columns than the header${delimiter !== undefined ? ` (the header is one column, '${(header ?? '').replace(/^\uFEFF/, '').slice(0, 80)}': the file seems to separate its columns with ${delimiter === '\t' ? 'tabs' : `'${delimiter}'`}, not commas)` : ''}`,
        delimiter !== undefined ? `save it with commas (e.g. pandas: pd.read_csv(f, sep=${JSON.stringify(delimiter)}).to_csv(out, index=False)), or as JSON Lines` : hint,
      )))
      .on('data', (value: Record<string, string>) => {
        row++;
        if (failure === null) onRow({ value, where: `${path}: row ${row}`, number: row });
      })
      .on('end', () => resolve());
  });
  ended.catch(() => {}); // rejected before anyone waits on it: `write` rejects instead
  const checked = (): void => {
    if (failure !== null) throw failure;
  };
  return {
    write: async (text) => {
      header ??= text.split(/\r?\n/)[0];
      await Promise.race([new Promise<void>((resolve) => stream.write(text, () => resolve())), ended]);
      checked();
    },
    end: async () => {
      stream.end();
      await ended;
      checked();
    },
  };
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

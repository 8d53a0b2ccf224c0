/**
 * Columnar record files: Parquet files (through hyparquet, a pure-JavaScript reader) and folders
 * written by Hugging Face `datasets.Dataset.save_to_disk` (`state.json` naming
 * `data-0000i-of-0000N.arrow` files in Arrow IPC stream format, read through apache-arrow).
 *
 * Both are read piecewise: a Parquet file one row group at a time (only that row group's bytes are
 * read from disk), an Arrow file one record batch at a time from a file stream, and each record is
 * handed on as it is read (read-table.ts keeps them all, or a reader keeps only those it needs). Values
 * become plain JSON-like values: lists → arrays, structs → objects, 64-bit integers → numbers
 * (a string when beyond 2^53).
 */
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RecordBatchReader, Vector } from 'apache-arrow';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { DdaError } from '@dda/core';

/** One record of a file: its raw value and where it is. */
export interface RawRecord {
  /** The parsed object (CSV: every cell a string; Parquet and Arrow: null cells left out). */
  readonly value: Record<string, unknown>;
  /** Where it is, for messages: `train.jsonl:12`, `train.csv: row 3`, `train.json: record 4`. */
  readonly where: string;
  /** 1-based line (JSON Lines), row (CSV, header = 1), record number (JSON) or row (Parquet; Arrow, across the folder's files). */
  readonly number: number;
}

/** A value of a columnar file as a plain value: arrays, objects, numbers (bigints in the safe range), strings. */
export function plainValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Vector) return [...v].map(plainValue);
  if (Array.isArray(v)) return v.map(plainValue);
  if (v === null || typeof v !== 'object' || v instanceof Date || ArrayBuffer.isView(v)) return v;
  // Arrow's StructRow and MapRow convert themselves with toJSON; plain objects have no toJSON.
  const o = typeof (v as { toJSON?: unknown }).toJSON === 'function' ? (v as { toJSON(): unknown }).toJSON() : v;
  if (o === null || typeof o !== 'object') return o;
  return Object.fromEntries(Object.entries(o as Record<string, unknown>).map(([k, x]) => [k, plainValue(x)]));
}

/** A record of a columnar file, without its null cells (a null cell means no value). */
function rowRecord(row: Record<string, unknown>, where: string, number: number): RawRecord {
  const value: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(row)) if (x !== null && x !== undefined) value[k] = plainValue(x);
  return { value, where, number };
}

/**
 * Reads a Parquet file one row group at a time, each record to `visit`. Rows are numbered from 1
 * (`train.parquet: row 3`).
 *
 * @throws DdaError naming the file when it is not valid Parquet or a row group cannot be decoded.
 */
export async function eachParquetRecord(path: string, visit: (r: RawRecord) => void): Promise<void> {
  const hint = 'give a Parquet file (e.g. written by pandas.DataFrame.to_parquet or datasets.Dataset.to_parquet) with one record per row';
  const file = await asyncBufferFromFile(path);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    throw new DdaError(`${path}: not a valid Parquet file (${(e as Error).message})`, hint);
  }
  let rowStart = 0;
  for (const [g, group] of metadata.row_groups.entries()) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd });
    } catch (e) {
      throw new DdaError(`${path}: row group ${g + 1} (rows ${rowStart + 1}–${rowEnd}) cannot be read (${(e as Error).message})`, hint);
    }
    rows.forEach((row, i) => visit(rowRecord(row, `${path}: row ${rowStart + i + 1}`, rowStart + i + 1)));
    rowStart = rowEnd;
  }
}

/** Whether a folder is one written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`. */
export function isSavedDataset(dir: string): boolean {
  return existsSync(join(dir, 'state.json')) || existsSync(join(dir, 'dataset_dict.json'));
}

/**
 * Reads a folder written by `datasets.Dataset.save_to_disk`: the Arrow files `state.json` lists in
 * `_data_files`, in order, one record batch at a time, each record to `visit`. Rows are numbered
 * from 1 across the files; each is named by its file and its row in that file
 * (`data-00001-of-00002.arrow: row 4`).
 *
 * @throws DdaError naming the folder for a `DatasetDict` folder (name the split's subfolder), a
 *   missing or malformed `state.json`, a listed file that is missing or not Arrow IPC.
 */
export async function eachSavedDatasetRecord(dir: string, visit: (r: RawRecord) => void): Promise<void> {
  const hint = 'give a folder written by datasets.Dataset.save_to_disk (state.json, dataset_info.json and data-*.arrow files)';
  if (existsSync(join(dir, 'dataset_dict.json'))) {
    const splits = readdirSync(dir).filter((d) => statSync(join(dir, d)).isDirectory() && existsSync(join(dir, d, 'state.json')));
    throw new DdaError(`${dir}: a DatasetDict folder (dataset_dict.json), which holds several splits: ${splits.join(', ') || 'none found'}`, `give the split's folder, e.g. ${join(dir, splits[0] ?? 'train')}`);
  }
  const statePath = join(dir, 'state.json');
  let state: { _data_files?: unknown; _indices_data_files?: unknown };
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as typeof state;
  } catch (e) {
    throw new DdaError(`${statePath}: cannot be read as JSON (${(e as Error).message})`, hint);
  }
  if (state._indices_data_files) throw new DdaError(`${statePath}: the dataset has an indices mapping (_indices_data_files), so its rows are not the files' rows in order`, 'save it again with a current datasets version (save_to_disk flattens the indices), or call dataset.flatten_indices() before saving');
  const files = state._data_files;
  if (!Array.isArray(files) || files.length === 0 || !files.every((f) => typeof (f as { filename?: unknown } | null)?.filename === 'string')) {
    throw new DdaError(`${statePath}: _data_files must be a non-empty list of {"filename": ...}, got ${JSON.stringify(files)}`, hint);
  }
  let number = 0; // across the files
  for (const { filename } of files as { filename: string }[]) {
    const path = join(dir, filename);
    if (!existsSync(path)) throw new DdaError(`${dir}: ${filename}, listed in state.json, is missing`, hint);
    const unreadable = (e: unknown): DdaError => new DdaError(`${path}: not a readable Arrow IPC file (${(e as Error).message})`, hint);
    let row = 0;
    let batches: AsyncIterator<Iterable<{ toJSON(): Record<string, unknown> } | null>>;
    try {
      batches = (await RecordBatchReader.from(createReadStream(path)))[Symbol.asyncIterator]();
    } catch (e) {
      throw unreadable(e);
    }
    for (;;) {
      // A batch's records are decoded here, and handed to `visit` outside: its errors are not the file's.
      let records: RawRecord[];
      try {
        const next = await batches.next();
        if (next.done) break;
        records = [...next.value].map((r) => rowRecord(r?.toJSON() ?? {}, `${path}: row ${++row}`, ++number));
      } catch (e) {
        throw unreadable(e);
      }
      records.forEach(visit);
    }
  }
}

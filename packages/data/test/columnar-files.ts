// Writers of the columnar fixtures: Parquet files (hyparquet-writer) and folders laid out as
// datasets.Dataset.save_to_disk writes them (state.json, dataset_info.json, data-0000i-of-0000N.arrow
// in Arrow IPC stream format, apache-arrow). Debian has no pyarrow / datasets package, so these are
// written by the JavaScript libraries, not by Python's datasets: the readers are checked against
// files of the same ecosystem (the layout and types follow datasets' arrow_dataset.py).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Field, Int64, List, Struct, Table, Utf8, type DataType, tableToIPC, vectorFromArray } from 'apache-arrow';
import { parquetWriteBuffer } from 'hyparquet-writer';

type Row = Record<string, unknown>;

const columnsOf = (rows: readonly Row[]): string[] => [...new Set(rows.flatMap((r) => Object.keys(r)))];

/** The Arrow type datasets gives a column of these values: string, int64, or a list of structs of strings. */
function arrowType(values: readonly unknown[]): DataType {
  const v = values.find((x) => x !== undefined && x !== null);
  if (typeof v === 'number') return new Int64();
  if (Array.isArray(v)) {
    const keys = [...new Set(values.flatMap((x) => (Array.isArray(x) ? x.flatMap((e) => Object.keys(e as object)) : [])))];
    return new List(new Field('item', new Struct(keys.map((k) => new Field(k, new Utf8(), true))), true));
  }
  return new Utf8();
}

/** Writes `rows` as a Parquet file with `rowGroupSize` rows per row group (lists of objects as JSON columns). */
export function writeParquet(path: string, rows: readonly Row[], rowGroupSize = 2): string {
  const columnData = columnsOf(rows).map((name) => {
    const data = rows.map((r) => r[name] ?? null);
    const v = data.find((x) => x !== null);
    return typeof v === 'number' ? { name, data: data.map((x) => (x === null ? null : BigInt(x as number))), type: 'INT64' as const } : Array.isArray(v) ? { name, data } : { name, data, type: 'STRING' as const };
  });
  writeFileSync(path, new Uint8Array(parquetWriteBuffer({ columnData, rowGroupSize })));
  return path;
}

/** Writes `rows` as a save_to_disk folder split into `shards` Arrow files; returns the folder. */
export function writeSavedDataset(dir: string, rows: readonly Row[], shards = 2): string {
  mkdirSync(dir, { recursive: true });
  const columns = columnsOf(rows);
  const per = Math.ceil(rows.length / shards);
  const files: { filename: string }[] = [];
  for (let s = 0; s < shards; s++) {
    const part = rows.slice(s * per, (s + 1) * per);
    const table = new Table(Object.fromEntries(columns.map((c) => {
      const values = part.map((r) => r[c] ?? null);
      const type = arrowType(rows.map((r) => r[c]));
      return [c, vectorFromArray(type instanceof Int64 ? values.map((x) => (x === null ? null : BigInt(x as number))) : values, type)];
    })));
    const filename = `data-${String(s).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.arrow`;
    writeFileSync(join(dir, filename), tableToIPC(table, 'stream'));
    files.push({ filename });
  }
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ _data_files: files, _fingerprint: 'f0', _format_columns: null, _format_kwargs: {}, _format_type: null, _output_all_columns: false, _split: null }, null, 2));
  writeFileSync(join(dir, 'dataset_info.json'), JSON.stringify({ citation: '', description: '', features: {}, homepage: '', license: '' }, null, 2));
  return dir;
}

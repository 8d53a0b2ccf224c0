import { closeSync, existsSync, fstatSync, openSync, readSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError } from '@dda/core';
import { readJsonFile } from './files.js';
import {
  DTYPE_BYTES, type SafetensorsDtype, type SafetensorsEntry, parseSafetensorsHeader, safetensorsHeaderLength, widenToFloat32,
} from './safetensors.js';
import { gitLfsPointerError, isGitLfsPointer } from './weight-files.js';
import type { NamedTensor, TensorMap } from './weights.js';

/** File names of the Hugging Face weight layout. */
export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';

/** Where one tensor lives and what it is, from the header alone. */
export interface TensorInfo {
  readonly name: string;
  /** Stored element type. */
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  /** Absolute path of the file holding it. */
  readonly file: string;
  /** Byte offset of its data in that file, and its length in bytes. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** A tensor as stored: compact little-endian bytes of `dtype`. */
export interface RawTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/** Reported by {@link SafetensorsReaderOptions.onWiden} each time stored F16/BF16 values are widened to float32. */
export interface WidenEvent {
  readonly name: string;
  readonly from: 'F16' | 'BF16';
  readonly elements: number;
  /** Bytes of the float32 array made (twice the stored size). */
  readonly float32Bytes: number;
}

export interface SafetensorsReaderOptions {
  /**
   * Called whenever {@link SafetensorsReader.readFloat32} widens an F16 or BF16 tensor to float32
   * (a log hook: widening doubles that tensor's memory). Not called for F32 tensors or raw reads.
   */
  readonly onWiden?: (e: WidenEvent) => void;
}

const READ_CHUNK = 1 << 30;

/** Reads `length` bytes at `position` of an open file into a fresh buffer (loops: one readSync reads at most 2 GiB). */
function preadExact(fd: number, length: number, position: number, path: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, Math.min(READ_CHUNK, length - done), position + done);
    if (n === 0) throw new DdaError(`${path}: file ended after ${position + done} bytes while reading ${length} bytes at ${position} (truncated, or changed while open?)`, 're-copy the file');
    done += n;
  }
  return out;
}

function withFile<T>(path: string, f: (fd: number) => T): T {
  const fd = openSync(path, 'r');
  try {
    return f(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads and checks one file's header with positioned reads (the data section is not read). */
function readHeader(path: string): { entries: readonly SafetensorsEntry[]; metadata: Record<string, string>; dataStart: number } {
  return withFile(path, (fd) => {
    const size = fstatSync(fd).size;
    const head = preadExact(fd, Math.min(size, 200), 0, path);
    if (isGitLfsPointer(head)) throw gitLfsPointerError(path);
    const headerLen = safetensorsHeaderLength(head, size, path);
    return parseSafetensorsHeader(preadExact(fd, headerLen, 8, path), size, path);
  });
}

/**
 * A folder holding both `model.safetensors` and `model.safetensors.index.json`: transformers'
 * from_pretrained loads `model.safetensors` and never reads the index or its shards, so reading the
 * shards would attribute another model than the one the folder loads as, if they differ. Refused,
 * naming both weight sets; the shards are listed from the index when it can be read.
 */
function twoWeightSetsError(dir: string): DdaError {
  let shards: string[] = [];
  try {
    const wm = (readJsonFile(dir, SAFETENSORS_INDEX_FILE) as { weight_map?: Record<string, unknown> } | null)?.weight_map;
    if (wm && typeof wm === 'object') shards = [...new Set(Object.values(wm).filter((v): v is string => typeof v === 'string'))].sort();
  } catch {
    // An unreadable index is still a second weight set: named by its file alone.
  }
  const listed = shards.length ? ` and the ${shards.length} shard${shards.length > 1 ? 's' : ''} it names (${shards.slice(0, 4).join(', ')}${shards.length > 4 ? `, and ${shards.length - 4} more` : ''})` : '';
  return new DdaError(
    `${dir}: holds two weight sets, ${SAFETENSORS_FILE} and ${SAFETENSORS_INDEX_FILE}${listed}; transformers' from_pretrained loads ${SAFETENSORS_FILE} and ignores the index and its shards, so which weights this folder stands for is ambiguous`,
    `keep one weight set: if ${SAFETENSORS_FILE} is the checkpoint, as transformers reads it, remove ${SAFETENSORS_INDEX_FILE} and its shards; if the shards are, remove ${SAFETENSORS_FILE}`,
  );
}

/**
 * Lazy access to the tensors of a safetensors file or a Hugging Face weight folder (single
 * `model.safetensors`, or shards named by `model.safetensors.index.json`). Opening reads and checks
 * the headers only (a few KB per file); each tensor is read on demand with positioned reads from its
 * file, one tensor at a time, so holding a reader costs no tensor memory. Files are opened per read
 * and closed again: there is nothing to dispose.
 *
 * Two ways to get a tensor: {@link readRaw} gives the stored bytes and dtype unchanged (for an
 * engine that takes F16/BF16), {@link readFloat32} widens them to float32 (F16/BF16 → float32
 * doubles the memory of that tensor; reported through `onWiden`).
 */
export class SafetensorsReader {
  private readonly byName: Map<string, TensorInfo>;

  private constructor(
    infos: readonly TensorInfo[],
    /** The files read, in the order their tensors are listed. */
    readonly files: readonly string[],
    /** `__metadata__` of the first file. */
    readonly metadata: Record<string, string>,
    private readonly o: SafetensorsReaderOptions,
  ) {
    this.byName = new Map(infos.map((i) => [i.name, i]));
  }

  /** Opens one safetensors file (its header only). Throws a DdaError naming the file if the header is malformed or it is a Git LFS pointer. */
  static openFile(path: string, o: SafetensorsReaderOptions = {}): SafetensorsReader {
    if (!existsSync(path)) throw new DdaError(`${path}: file not found`);
    const { entries, metadata, dataStart } = readHeader(path);
    return new SafetensorsReader(entries.map((e) => infoOf(e, path, dataStart)), [path], metadata, o);
  }

  /**
   * Opens the weights of a Hugging Face model folder: `model.safetensors.index.json` and the shards
   * it names if the index exists, else `model.safetensors`. Checks, from the headers alone, that
   * every shard exists, that each tensor the index names is in its shard, that no shard holds a
   * tensor the index puts elsewhere, and that no tensor is in two shards; each error names the files.
   * A folder with both `model.safetensors` and the index throws (transformers loads `model.safetensors`
   * and ignores the shards; the error names both weight sets and what to remove).
   * A folder without safetensors weights throws: {@link findWeightFiles} tells that case apart.
   */
  static openFolder(dir: string, o: SafetensorsReaderOptions = {}): SafetensorsReader {
    const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
    if (existsSync(indexPath) && existsSync(join(dir, SAFETENSORS_FILE))) throw twoWeightSetsError(dir);
    if (!existsSync(indexPath)) {
      const single = join(dir, SAFETENSORS_FILE);
      if (!existsSync(single)) {
        const have = existsSync(dir) ? readdirSync(dir).join(', ') || 'nothing' : 'no such folder';
        throw new DdaError(`${dir}: no ${SAFETENSORS_FILE} and no ${SAFETENSORS_INDEX_FILE} (found: ${have})`, 'point to a folder with Hugging Face safetensors weights');
      }
      return SafetensorsReader.openFile(single, o);
    }
    const index = readJsonFile(dir, SAFETENSORS_INDEX_FILE) as { weight_map?: unknown };
    const wm = index?.weight_map;
    if (typeof wm !== 'object' || wm === null || Array.isArray(wm) || !Object.values(wm).every((v) => typeof v === 'string')) {
      throw new DdaError(`${indexPath}: 'weight_map' must map tensor names to shard file names`, 're-export the checkpoint');
    }
    const weightMap = wm as Record<string, string>;
    const byShard = new Map<string, string[]>();
    for (const [name, file] of Object.entries(weightMap)) {
      if (file.includes('/') || file.includes('\\') || file.startsWith('.')) throw new DdaError(`${indexPath}: shard name '${file}' is not a plain file name`);
      byShard.set(file, [...(byShard.get(file) ?? []), name]);
    }
    const infos: TensorInfo[] = [];
    const files: string[] = [];
    let metadata: Record<string, string> | null = null;
    for (const [file, names] of byShard) {
      const path = join(dir, file);
      if (!existsSync(path)) throw new DdaError(`${path}: shard named in ${SAFETENSORS_INDEX_FILE} is missing`, 'copy every shard of the checkpoint');
      const h = readHeader(path);
      metadata ??= h.metadata;
      const inShard = new Map(h.entries.map((e) => [e.name, e]));
      for (const name of names) {
        const e = inShard.get(name);
        if (!e) throw new DdaError(`${path}: has no tensor '${name}', which ${SAFETENSORS_INDEX_FILE} puts there`, 're-export the checkpoint; index and shards disagree');
        infos.push(infoOf(e, path, h.dataStart));
      }
      const extra = h.entries.map((e) => e.name).filter((k) => weightMap[k] !== file);
      if (extra.length) throw new DdaError(`${path}: holds tensor${extra.length > 1 ? 's' : ''} ${extra.slice(0, 5).map((k) => `'${k}'`).join(', ')} that ${SAFETENSORS_INDEX_FILE} does not put there`, 're-export the checkpoint; index and shards disagree');
      files.push(path);
    }
    return new SafetensorsReader(infos, files, metadata ?? {}, o);
  }

  /** Tensor names, in header (or index) order. */
  get names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** dtype, shape and location of a tensor (no data read). Throws a DdaError for an unknown name. */
  info(name: string): TensorInfo {
    const i = this.byName.get(name);
    if (!i) throw new DdaError(`${this.files.join(', ')}: no tensor '${name}'`);
    return i;
  }

  /** Total bytes of tensor data as stored. */
  get storedBytes(): number {
    let n = 0;
    for (const i of this.byName.values()) n += i.byteLength;
    return n;
  }

  /** The stored bytes of one tensor (little-endian, its own dtype), read from disk now. */
  readRaw(name: string): RawTensor {
    const i = this.info(name);
    const bytes = withFile(i.file, (fd) => preadExact(fd, i.byteLength, i.byteOffset, i.file));
    return { dtype: i.dtype, shape: i.shape, bytes };
  }

  /**
   * One tensor as float32, read from disk now. F32 is returned without a second copy; F16 and
   * BF16 are widened here (exactly), which doubles that tensor's memory, and reported to
   * `onWiden`.
   */
  readFloat32(name: string): NamedTensor {
    const { dtype, shape, bytes } = this.readRaw(name);
    const data = widenToFloat32(bytes, dtype);
    if (dtype !== 'F32') this.o.onWiden?.({ name, from: dtype, elements: data.length, float32Bytes: data.byteLength });
    return { shape, data };
  }

  /** Reads the named tensors (default: all) as float32 into a map, one tensor at a time. */
  readAllFloat32(names: readonly string[] = this.names): TensorMap {
    const out: TensorMap = new Map();
    for (const name of names) out.set(name, this.readFloat32(name));
    return out;
  }
}

function infoOf(e: SafetensorsEntry, file: string, dataStart: number): TensorInfo {
  return {
    name: e.name, dtype: e.dtype, shape: e.shape, size: (e.end - e.begin) / DTYPE_BYTES[e.dtype], file,
    byteOffset: dataStart + e.begin, byteLength: e.end - e.begin,
  };
}

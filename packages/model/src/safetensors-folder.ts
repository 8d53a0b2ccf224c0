import { closeSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DdaError } from '@dda/core';
import { writeJsonAtomic } from './files.js';
import { DTYPE_BYTES, type SafetensorsDtype, narrowFromFloat32, safetensorsHeaderBytes } from './safetensors.js';
import { SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE, SafetensorsReader, type SafetensorsReaderOptions } from './safetensors-reader.js';
import type { TensorMap } from './weights.js';

const SHARD_PATTERN = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** Options of {@link writeSafetensorsFolder} and {@link writeSafetensorsFolderStreamed}. */
export interface WriteWeightsOptions {
  /**
   * Largest shard in bytes of tensor data (as `max_shard_size` in transformers). When the
   * tensors need more, they are split over `model-0000i-of-0000n.safetensors` files with a
   * `model.safetensors.index.json`; a single tensor larger than this gets a shard of its own.
   * Default: Infinity (one `model.safetensors`).
   */
  readonly maxShardBytes?: number;
  /** `__metadata__` of every file; default `{format: 'pt'}` as transformers writes. */
  readonly metadata?: Record<string, string>;
  /** Stored element type; default F32. F16/BF16 round to nearest even. */
  readonly dtype?: SafetensorsDtype;
}

/** A tensor to write without holding it: its name, shape and a producer of its float32 values. */
export interface TensorSource {
  readonly name: string;
  readonly shape: readonly number[];
  /** Fills `out` with the values at flat (row-major) indices [start, start + out.length). */
  readonly fill: (start: number, out: Float32Array) => void;
}

/** Elements produced and written per step of a streamed write (4 MiB of float32). */
const CHUNK_ELEMENTS = 1 << 20;

const elements = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Writes one safetensors file from sources, chunk by chunk, to a temporary file that is then renamed over `path`. */
function writeStreamedFile(path: string, sources: readonly TensorSource[], dtype: SafetensorsDtype, metadata: Record<string, string>): void {
  const { bytes } = safetensorsHeaderBytes(sources.map((s) => ({ name: s.name, dtype, shape: s.shape })), metadata);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, bytes);
    const values = new Float32Array(CHUNK_ELEMENTS);
    const out = new Uint8Array(CHUNK_ELEMENTS * DTYPE_BYTES[dtype]);
    for (const s of sources) {
      const n = elements(s.shape);
      for (let start = 0; start < n; start += CHUNK_ELEMENTS) {
        const m = Math.min(CHUNK_ELEMENTS, n - start);
        const v = values.subarray(0, m);
        s.fill(start, v);
        const b = out.subarray(0, m * DTYPE_BYTES[dtype]);
        narrowFromFloat32(v, dtype, b);
        writeAll(fd, b);
      }
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  let done = 0;
  while (done < b.length) done += writeSync(fd, b, done, b.length - done);
}

/**
 * Writes weights in the Hugging Face layout into `dir` without holding them in memory: each
 * tensor's values are produced by its {@link TensorSource} in chunks of 2^20 elements, narrowed to
 * `o.dtype` and appended to the file, so the memory used is one chunk whatever the model size.
 * One `model.safetensors`, or shards plus `model.safetensors.index.json` ({metadata: {total_size},
 * weight_map: {tensor: shard}}) above `o.maxShardBytes`. Every file is written to a temporary
 * file and renamed; the index is written last, and weight files of an earlier layout in `dir` are
 * removed so that the folder has one layout. Returns the names of the files written.
 */
export function writeSafetensorsFolderStreamed(dir: string, sources: readonly TensorSource[], o: WriteWeightsOptions = {}): string[] {
  const maxBytes = o.maxShardBytes ?? Infinity;
  if (!(maxBytes > 0)) throw new DdaError(`maxShardBytes must be > 0, got ${maxBytes}`);
  const dtype = o.dtype ?? 'F32';
  const metadata = o.metadata ?? { format: 'pt' };
  const shards: TensorSource[][] = [];
  let current: TensorSource[] = [];
  let bytes = 0;
  let total = 0;
  for (const s of sources) {
    const size = DTYPE_BYTES[dtype] * elements(s.shape);
    if (current.length > 0 && bytes + size > maxBytes) {
      shards.push(current);
      current = [];
      bytes = 0;
    }
    current.push(s);
    bytes += size;
    total += size;
  }
  shards.push(current);
  mkdirSync(dir, { recursive: true });
  const stale = readdirSync(dir).filter((f) => f === SAFETENSORS_FILE || f === SAFETENSORS_INDEX_FILE || SHARD_PATTERN.test(f));
  let written: string[];
  if (shards.length === 1) {
    writeStreamedFile(join(dir, SAFETENSORS_FILE), shards[0] as TensorSource[], dtype, metadata);
    written = [SAFETENSORS_FILE];
  } else {
    const n = String(shards.length).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    written = shards.map((shard, k) => {
      const file = `model-${String(k + 1).padStart(5, '0')}-of-${n}.safetensors`;
      writeStreamedFile(join(dir, file), shard, dtype, metadata);
      for (const s of shard) weightMap[s.name] = file;
      return file;
    });
    writeJsonAtomic(join(dir, SAFETENSORS_INDEX_FILE), { metadata: { total_size: total }, weight_map: weightMap });
    written.push(SAFETENSORS_INDEX_FILE);
  }
  for (const f of stale) if (!written.includes(f)) rmSync(join(dir, f), { force: true });
  return written;
}

/**
 * Writes in-memory weights in the Hugging Face layout into `dir` (see
 * {@link writeSafetensorsFolderStreamed}: same layout, sharding, atomic writes and clean-up).
 * F32 weights load back bit-identically.
 */
export function writeSafetensorsFolder(dir: string, tensors: TensorMap, o: WriteWeightsOptions = {}): string[] {
  const sources: TensorSource[] = [...tensors].map(([name, t]) => {
    if (elements(t.shape) !== t.data.length) throw new DdaError(`tensor '${name}': shape [${t.shape.join(', ')}] holds ${elements(t.shape)} values, data has ${t.data.length}`);
    return { name, shape: t.shape, fill: (start, out) => out.set(t.data.subarray(start, start + out.length)) };
  });
  return writeSafetensorsFolderStreamed(dir, sources, o);
}

/**
 * Reads all weights of a Hugging Face model folder as float32 (see
 * {@link SafetensorsReader.openFolder} for the layouts and the checks): tensor by tensor with
 * positioned reads, so the peak memory is the float32 model plus one stored tensor, not the whole
 * file on top. F16 and BF16 are widened (reported to `o.onWiden`).
 */
export function readSafetensorsFolder(dir: string, o: SafetensorsReaderOptions = {}): TensorMap {
  return SafetensorsReader.openFolder(dir, o).readAllFloat32();
}

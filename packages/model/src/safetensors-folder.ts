import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError } from '@dda/core';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from './files.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import type { TensorMap } from './weights.js';

/** File names of the Hugging Face weight layout. */
export const SAFETENSORS_FILE = 'model.safetensors';
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';
const SHARD_PATTERN = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** Options of {@link writeSafetensorsFolder}. */
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
}

/**
 * Writes weights in the Hugging Face layout into `dir`: one `model.safetensors`, or shards plus
 * `model.safetensors.index.json` ({metadata: {total_size}, weight_map: {tensor: shard}}).
 * Every file is written atomically (temporary file, then rename); the index is written last, and
 * weight files of an earlier layout in `dir` are removed so that the folder has one layout.
 * Returns the names of the files written.
 */
export function writeSafetensorsFolder(dir: string, tensors: TensorMap, o: WriteWeightsOptions = {}): string[] {
  const maxBytes = o.maxShardBytes ?? Infinity;
  if (!(maxBytes > 0)) throw new DdaError(`maxShardBytes must be > 0, got ${maxBytes}`);
  const metadata = o.metadata ?? { format: 'pt' };
  const shards: TensorMap[] = [];
  let current: TensorMap = new Map();
  let bytes = 0;
  let total = 0;
  for (const [name, t] of tensors) {
    const size = 4 * t.data.length;
    if (current.size > 0 && bytes + size > maxBytes) {
      shards.push(current);
      current = new Map();
      bytes = 0;
    }
    current.set(name, t);
    bytes += size;
    total += size;
  }
  shards.push(current);
  const stale = existsSync(dir) ? readdirSync(dir).filter((f) => f === SAFETENSORS_FILE || f === SAFETENSORS_INDEX_FILE || SHARD_PATTERN.test(f)) : [];
  let written: string[];
  if (shards.length === 1) {
    writeFileAtomic(join(dir, SAFETENSORS_FILE), writeSafetensors(shards[0] as TensorMap, metadata));
    written = [SAFETENSORS_FILE];
  } else {
    const n = String(shards.length).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    written = shards.map((shard, k) => {
      const file = `model-${String(k + 1).padStart(5, '0')}-of-${n}.safetensors`;
      writeFileAtomic(join(dir, file), writeSafetensors(shard, metadata));
      for (const name of shard.keys()) weightMap[name] = file;
      return file;
    });
    writeJsonAtomic(join(dir, SAFETENSORS_INDEX_FILE), { metadata: { total_size: total }, weight_map: weightMap });
    written.push(SAFETENSORS_INDEX_FILE);
  }
  for (const f of stale) if (!written.includes(f)) rmSync(join(dir, f), { force: true });
  return written;
}

/**
 * Reads the weights of a Hugging Face model folder: `model.safetensors.index.json` and the
 * shards it names if the index exists, else `model.safetensors`. F32, F16 and BF16 tensors are
 * returned as float32. A missing shard, a tensor the index names but its shard lacks (or the
 * reverse), or a tensor in two shards throws a DdaError naming the files.
 */
export function readSafetensorsFolder(dir: string): TensorMap {
  const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
  if (!existsSync(indexPath)) {
    const single = join(dir, SAFETENSORS_FILE);
    if (!existsSync(single)) {
      const have = existsSync(dir) ? readdirSync(dir).join(', ') || 'nothing' : 'no such folder';
      throw new DdaError(`${dir}: no ${SAFETENSORS_FILE} and no ${SAFETENSORS_INDEX_FILE} (found: ${have})`, 'point to a folder with Hugging Face safetensors weights (.bin/PyTorch pickles are not read)');
    }
    return readSafetensors(readFileSync(single), single).tensors;
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
  const out: TensorMap = new Map();
  for (const [file, names] of byShard) {
    const path = join(dir, file);
    if (!existsSync(path)) throw new DdaError(`${path}: shard named in ${SAFETENSORS_INDEX_FILE} is missing`, 'copy every shard of the checkpoint');
    const { tensors } = readSafetensors(readFileSync(path), path);
    for (const name of names) {
      const t = tensors.get(name);
      if (!t) throw new DdaError(`${path}: has no tensor '${name}', which ${SAFETENSORS_INDEX_FILE} puts there`, 're-export the checkpoint; index and shards disagree');
      out.set(name, t);
    }
    const extra = [...tensors.keys()].filter((k) => weightMap[k] !== file);
    if (extra.length) throw new DdaError(`${path}: holds tensor${extra.length > 1 ? 's' : ''} ${extra.slice(0, 5).map((k) => `'${k}'`).join(', ')} that ${SAFETENSORS_INDEX_FILE} does not put there`, 're-export the checkpoint; index and shards disagree');
  }
  return out;
}

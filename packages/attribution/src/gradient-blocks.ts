/**
 * Per-example gradients on disk, one artifact per block of consecutive samples, keyed by the
 * content of that block's samples and of the model at the checkpoint: a changed training record
 * recomputes its block only, a killed run resumes at the first unfinished block, and shards of a
 * run fill disjoint blocks of one shared folder.
 *
 * Layout of a block artifact: `gradients.json` (ids, dim, parameter names / sizes / shapes,
 * checkpoint) and `rows.f32` (float32, little-endian, row-major [rows × dim]); the manifest of the
 * ArtifactStore comes last.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError, type GradientBlocks, type GradientMatrix, validateGradientMatrix } from '@dda/core';
import type { ArtifactStore } from './artifacts.js';

/** What `gradients.json` holds. */
interface BlockMeta {
  readonly format: 'dda-gradient-block-v1';
  readonly ids: readonly string[];
  readonly dim: number;
  readonly parameterNames: readonly string[];
  readonly parameterSizes: readonly number[];
  readonly parameterShapes?: readonly (readonly number[])[];
  readonly checkpoint: string;
}

/** The bytes of a gradient matrix's rows, float32 row-major. */
function rowsToBytes(g: GradientMatrix): Uint8Array {
  const flat = new Float32Array(g.rows.length * g.dim);
  g.rows.forEach((r, i) => flat.set(r, i * g.dim));
  return new Uint8Array(flat.buffer);
}

/** The files of one block artifact. */
export function gradientBlockFiles(g: GradientMatrix): Map<string, Uint8Array> {
  const meta: BlockMeta = {
    format: 'dda-gradient-block-v1', ids: g.ids, dim: g.dim, parameterNames: g.parameterNames, parameterSizes: g.parameterSizes,
    ...(g.parameterShapes ? { parameterShapes: g.parameterShapes } : {}), checkpoint: g.checkpoint,
  };
  return new Map([
    ['rows.f32', rowsToBytes(g)],
    ['gradients.json', new TextEncoder().encode(JSON.stringify(meta))],
  ]);
}

/** Reads a block artifact's folder back as a GradientMatrix. @throws DdaError naming the folder when it is malformed. */
export function readGradientBlock(dir: string): GradientMatrix {
  let meta: BlockMeta;
  try {
    meta = JSON.parse(readFileSync(join(dir, 'gradients.json'), 'utf8')) as BlockMeta;
  } catch (e) {
    throw new DdaError(`cannot read the gradient block ${dir}: ${(e as Error).message}`, 'delete the folder to recompute it');
  }
  if (meta.format !== 'dda-gradient-block-v1') throw new DdaError(`${dir}: unknown gradient block format '${String(meta.format)}'`, 'delete the folder to recompute it');
  const bytes = readFileSync(join(dir, 'rows.f32'));
  const n = meta.ids.length;
  if (bytes.byteLength !== n * meta.dim * 4) throw new DdaError(`${dir}/rows.f32: ${bytes.byteLength} bytes, expected ${n} rows × ${meta.dim} × 4`, 'delete the folder to recompute it');
  // A file's Buffer owns its memory (Node pools only reads under 4 KiB): view it in place when it is
  // 4-byte aligned rather than copy it (a stored-path scorer reads every block of every checkpoint).
  const flat = bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return {
    ids: meta.ids, dim: meta.dim, checkpoint: meta.checkpoint, parameterNames: meta.parameterNames, parameterSizes: meta.parameterSizes,
    ...(meta.parameterShapes ? { parameterShapes: meta.parameterShapes } : {}),
    rows: Array.from({ length: n }, (_, i) => flat.subarray(i * meta.dim, (i + 1) * meta.dim)),
  };
}

/** One block of samples: rows [start, end) of the sample list, and the key of its gradient artifact. */
export interface GradientBlockSpec {
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly ids: readonly string[];
  /** Everything the block's gradients depend on (model at the checkpoint, engine, the block's samples). */
  readonly key: unknown;
}

/**
 * Gets (reused) or computes one block's gradients, and stores what it computes unless `save` is
 * false (a streamed block: used once, then dropped; a block already in the store is still reused).
 *
 * @returns The gradients, whether they were reused from the store, and the seconds they took to
 *   compute (read from the manifest when reused; 0 for blocks stored without a time).
 * @throws DdaError if the computed gradients are malformed, non-finite, or for other samples.
 */
export async function gradientBlock(
  store: ArtifactStore,
  name: string,
  spec: GradientBlockSpec,
  compute: () => Promise<GradientMatrix>,
  save = true,
): Promise<{ gradients: GradientMatrix; reused: boolean; seconds: number }> {
  const hit = store.locate(name, spec.key);
  if (hit) return { gradients: readGradientBlock(hit.dir), reused: true, seconds: hit.seconds ?? 0 };
  const t0 = Date.now();
  const g = await compute();
  validateGradientMatrix(g, `gradients of block ${spec.index} (samples ${spec.start}..${spec.end - 1})`);
  if (g.ids.length !== spec.ids.length || g.ids.some((id, i) => id !== spec.ids[i])) throw new DdaError(`${name}: block ${spec.index} computed for other samples than asked`);
  const seconds = (Date.now() - t0) / 1000;
  if (save) store.save(name, spec.key, gradientBlockFiles(g), seconds);
  return { gradients: g, reused: false, seconds };
}

/**
 * The blocks as a core GradientBlocks stream: block `b` is read from the store, or computed (and
 * stored) the first time it is asked for, so a row-separable scorer holds one block in memory.
 */
export function gradientBlockStream(
  ids: readonly string[],
  dim: number,
  checkpoint: string,
  specs: readonly GradientBlockSpec[],
  read: (spec: GradientBlockSpec) => Promise<GradientMatrix>,
): GradientBlocks & { readAll(): Promise<GradientMatrix> } {
  const readBlock = async (b: number): Promise<GradientMatrix> => {
    const spec = specs[b];
    if (!spec) throw new DdaError(`no gradient block ${b} (there are ${specs.length})`);
    const g = await read(spec);
    if (g.dim !== dim) throw new DdaError(`gradient block ${b} has ${g.dim} entries per row, expected ${dim}`, 'delete the block to recompute it');
    return g;
  };
  return {
    ids, dim, checkpoint, blockCount: specs.length, readBlock,
    /** Every block concatenated (for scorers that need all rows at once). */
    async readAll(): Promise<GradientMatrix> {
      const parts: GradientMatrix[] = [];
      for (let b = 0; b < specs.length; b++) parts.push(await readBlock(b));
      const first = parts[0];
      if (!first) throw new DdaError('no gradient blocks', 'give at least one sample');
      return { ...first, ids: [...ids], rows: parts.flatMap((p) => p.rows) };
    },
  };
}

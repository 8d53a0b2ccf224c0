/**
 * The on-disk store of per-example gradients: one artifact per (checkpoint, train|test), written
 * block by block as the gradients are computed, read block by block by row-separable scorers, so
 * memory holds one block of rows however large the training set is.
 *
 * Layout of the artifact folder: `gradients.json` (ids, dim, parameter names / sizes / shapes,
 * checkpoint, and the row count of every block) and `block-00000.f32`, ... (rows of float32,
 * little-endian, row-major), each written atomically; the manifest comes last (ArtifactStore).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError, type GradientBlocks, type GradientMatrix, validateGradientMatrix } from '@dda/core';
import type { ArtifactStore } from './artifacts.js';

/** Rows per block file. */
export const GRADIENT_BLOCK_ROWS = 128;

/** What `gradients.json` holds. */
interface GradientMeta {
  readonly format: 'dda-gradient-blocks-v1';
  readonly ids: readonly string[];
  readonly dim: number;
  readonly parameterNames: readonly string[];
  readonly parameterSizes: readonly number[];
  readonly parameterShapes?: readonly (readonly number[])[];
  readonly checkpoint: string;
  readonly blockRows: readonly number[];
}

const blockFile = (b: number): string => `block-${String(b).padStart(5, '0')}.f32`;

function rowsToBytes(rows: readonly Float32Array[], dim: number): Uint8Array {
  const flat = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => flat.set(r, i * dim));
  return new Uint8Array(flat.buffer);
}

/**
 * Computes and stores gradients block by block, unless an intact artifact for `inputs` exists.
 * `compute(start, end)` returns the gradients of samples [start, end); `ids` are all sample ids.
 */
export async function storeGradientBlocks(
  store: ArtifactStore,
  name: string,
  inputs: unknown,
  ids: readonly string[],
  compute: (start: number, end: number) => Promise<GradientMatrix>,
  blockRows = GRADIENT_BLOCK_ROWS,
): Promise<{ blocks: GradientBlocks; reused: boolean }> {
  const r = await store.getOrProduce(name, inputs, async (put) => {
    const counts: number[] = [];
    let first: GradientMatrix | undefined;
    for (let start = 0, b = 0; start < ids.length; start += blockRows, b++) {
      const g = await compute(start, Math.min(ids.length, start + blockRows));
      validateGradientMatrix(g, `gradients of samples ${start}..${start + g.rows.length - 1}`);
      if (g.ids.some((id, i) => id !== ids[start + i])) throw new DdaError(`${name}: block ${b} computed for other samples than asked`);
      if (first && (g.dim !== first.dim || g.checkpoint !== first.checkpoint)) throw new DdaError(`${name}: block ${b} has dim ${g.dim} at '${g.checkpoint}', block 0 dim ${first.dim} at '${first.checkpoint}'`);
      first ??= g;
      put(blockFile(b), rowsToBytes(g.rows, g.dim));
      counts.push(g.rows.length);
    }
    if (!first) throw new DdaError(`${name}: no samples to compute gradients of`);
    const meta: GradientMeta = {
      format: 'dda-gradient-blocks-v1', ids, dim: first.dim, parameterNames: first.parameterNames, parameterSizes: first.parameterSizes,
      ...(first.parameterShapes ? { parameterShapes: first.parameterShapes } : {}), checkpoint: first.checkpoint, blockRows: counts,
    };
    put('gradients.json', new TextEncoder().encode(JSON.stringify(meta)));
  });
  return { blocks: openGradientBlocks(r.dir), reused: r.reused };
}

/** Opens a stored gradient artifact folder for block-by-block reading. */
export function openGradientBlocks(dir: string): GradientBlocks & { readAll(): Promise<GradientMatrix> } {
  let meta: GradientMeta;
  try {
    meta = JSON.parse(readFileSync(join(dir, 'gradients.json'), 'utf8')) as GradientMeta;
  } catch (e) {
    throw new DdaError(`cannot read the gradient store ${dir}: ${(e as Error).message}`, 'delete the folder to recompute it');
  }
  if (meta.format !== 'dda-gradient-blocks-v1') throw new DdaError(`${dir}: unknown gradient store format '${String(meta.format)}'`, 'delete the folder to recompute it');
  const starts: number[] = [];
  meta.blockRows.reduce((s, n) => (starts.push(s), s + n), 0);
  const readBlock = async (b: number): Promise<GradientMatrix> => {
    const n = meta.blockRows[b];
    if (n === undefined) throw new DdaError(`${dir}: no block ${b} (the store has ${meta.blockRows.length})`);
    const bytes = readFileSync(join(dir, blockFile(b)));
    if (bytes.byteLength !== n * meta.dim * 4) throw new DdaError(`${dir}/${blockFile(b)}: ${bytes.byteLength} bytes, expected ${n} rows × ${meta.dim} × 4`, 'delete the folder to recompute it');
    const flat = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const start = starts[b] as number;
    return {
      ids: meta.ids.slice(start, start + n), dim: meta.dim, checkpoint: meta.checkpoint,
      rows: Array.from({ length: n }, (_, i) => flat.subarray(i * meta.dim, (i + 1) * meta.dim)),
      parameterNames: meta.parameterNames, parameterSizes: meta.parameterSizes,
      ...(meta.parameterShapes ? { parameterShapes: meta.parameterShapes } : {}),
    };
  };
  return {
    ids: meta.ids, dim: meta.dim, checkpoint: meta.checkpoint, blockCount: meta.blockRows.length, readBlock,
    /** Every block concatenated (for scorers that need all rows at once). */
    async readAll(): Promise<GradientMatrix> {
      const parts: GradientMatrix[] = [];
      for (let b = 0; b < meta.blockRows.length; b++) parts.push(await readBlock(b));
      const first = parts[0];
      if (!first) throw new DdaError(`${dir}: the gradient store has no blocks`, 'delete the folder to recompute it');
      return { ...first, ids: meta.ids, rows: parts.flatMap((p) => p.rows) };
    },
  };
}

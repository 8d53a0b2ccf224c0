import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SeededRandom, type GradientMatrix } from '@dda/core';
import { ArtifactStore, openGradientBlocks, storeGradientBlocks } from '@dda/harness';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'dda-gstore-'));
  dirs.push(d);
  return d;
};

const rng = new SeededRandom(5);
const ids = Array.from({ length: 10 }, (_, i) => `s${i}`);
const all: GradientMatrix = {
  ids, dim: 6, checkpoint: 'epoch-2', parameterNames: ['a', 'b'], parameterSizes: [2, 4], parameterShapes: [[1, 2], [2, 2]],
  rows: ids.map(() => Float32Array.from({ length: 6 }, () => rng.normal())),
};
const slice = async (lo: number, hi: number): Promise<GradientMatrix> => ({ ...all, ids: ids.slice(lo, hi), rows: all.rows.slice(lo, hi) });

describe('on-disk gradient store', () => {
  it('writes blocks, reads them back bit-identically, whole or block by block, and reuses an intact store', async () => {
    const store = new ArtifactStore(tmp());
    let computed = 0;
    const compute = async (lo: number, hi: number): Promise<GradientMatrix> => { computed++; return slice(lo, hi); };
    const a = await storeGradientBlocks(store, 'g', { k: 1 }, ids, compute, 4);
    expect(a.reused).toBe(false);
    expect(computed).toBe(3);
    expect(a.blocks.blockCount).toBe(3);
    expect((await a.blocks.readBlock(2)).ids).toEqual(['s8', 's9']);
    const whole = await (a.blocks as ReturnType<typeof openGradientBlocks>).readAll();
    expect(whole.ids).toEqual(ids);
    expect(whole.parameterShapes).toEqual([[1, 2], [2, 2]]);
    whole.rows.forEach((r, i) => expect(Array.from(r)).toEqual(Array.from(all.rows[i]!)));
    const b = await storeGradientBlocks(store, 'g', { k: 1 }, ids, compute, 4);
    expect(b.reused).toBe(true);
    expect(computed).toBe(3);
  });
  it('recomputes a store with a corrupted block, and refuses non-finite gradients with the sample range', async () => {
    const store = new ArtifactStore(tmp());
    await storeGradientBlocks(store, 'g', { k: 2 }, ids, slice, 4);
    const dir = store.folder('g', { k: 2 });
    expect(readdirSync(dir).sort()).toEqual(['block-00000.f32', 'block-00001.f32', 'block-00002.f32', 'gradients.json', 'manifest.json']);
    writeFileSync(join(dir, 'block-00001.f32'), new Uint8Array(4 * 6 * 4));
    const again = await storeGradientBlocks(store, 'g', { k: 2 }, ids, slice, 4);
    expect(again.reused).toBe(false);
    const bad = async (lo: number, hi: number): Promise<GradientMatrix> => {
      const g = await slice(lo, hi);
      return lo === 4 ? { ...g, rows: g.rows.map((r) => Float32Array.from(r, (x, k) => (k === 3 ? Number.NaN : x))) } : g;
    };
    await expect(storeGradientBlocks(store, 'g', { k: 3 }, ids, bad, 4)).rejects.toThrow(/gradients of samples 4\.\.7: gradient of sample 's4'.*non-finite/);
  });
});

describe('bounded memory', () => {
  // A child process stores N random gradient rows of 2048 floats (8 KiB each) on disk and scores
  // them with grad-dot through the block stream, under a 64 MiB JavaScript heap limit.
  const run = (n: number): { maxRssMiB: number; n: number; blocks: number; maxErr: number } => {
    const r = spawnSync(process.execPath, ['--max-old-space-size=64', 'stream-scores.mjs', String(n), '2048', '32', '256'], {
      cwd: join(__dirname, 'fixtures'), encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout.trim()) as { maxRssMiB: number; n: number; blocks: number; maxErr: number };
  };
  it('scores 32768 training gradients (256 MiB) with a flat peak memory, far below the size of the set', () => {
    const small = run(4096); // 32 MiB of gradients
    const large = run(32768); // 256 MiB of gradients
    expect(large.n).toBe(32768);
    expect(large.blocks).toBe(128);
    expect(large.maxErr).toBeLessThan(1e-9);
    expect(large.maxRssMiB).toBeLessThan(240);
    // 224 MiB more gradients cost at most a quarter of that in peak memory (the n × m score matrix, the ids, collector lag).
    expect(large.maxRssMiB - small.maxRssMiB).toBeLessThan(56);
  });
});

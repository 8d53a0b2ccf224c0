import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  INDEX_FILES, buildGradientIndex, buildGradientIndexShard, indexShardPart, indexShardRows, mergeGradientIndexShards, queryGradientIndex, resolveShard,
  shardManifestPath, type IndexBuildOptions,
} from '@dda/attribution';
import { makeUserRun, type UserRun } from './fixtures/user-run.js';

// The index built in shards on the tiny user run (random llama2-tiny base, rank-4 LoRA): 12
// training samples in 6 blocks of 2, at checkpoint-100, k = 256.
let dir: string;
let run: UserRun;
let reference: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dda-index-shards-'));
  run = makeUserRun(join(dir, 'user'), 12, 1);
  reference = join(dir, 'one');
  await buildGradientIndex(options(reference));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const options = (out: string, o: Partial<IndexBuildOptions> = {}): IndexBuildOptions => ({
  base: run.base, checkpoints: [run.run], train: run.train, checkpoint: 'checkpoint-100', out, dim: 256, seed: 1, blockRows: 2, ...o,
});
const shard = (out: string, index: number, o: Partial<IndexBuildOptions> = {}): ReturnType<typeof buildGradientIndexShard> =>
  buildGradientIndexShard(options(out, o), { index, count: 3 });
/** Every file of an index folder, as bytes. */
// verified.json (the rows' check marker: inode and times of this folder's file) differs by folder.
const files = (out: string): Record<string, Buffer> => Object.fromEntries(readdirSync(out).filter((f) => f !== INDEX_FILES.verified).sort().map((f) => [f, readFileSync(join(out, f))]));

describe('the rows of a shard', () => {
  it('are contiguous whole blocks, split as evenly as they go; more shards than blocks are refused', () => {
    expect([0, 1, 2].map((index) => indexShardRows(12, 2, { index, count: 3 }))).toEqual([{ start: 0, end: 4 }, { start: 4, end: 8 }, { start: 8, end: 12 }]);
    // 13 samples in 4 blocks of 4 (the last of 1): 1, 1 and 2 blocks.
    expect([0, 1, 2].map((index) => indexShardRows(13, 4, { index, count: 3 }))).toEqual([{ start: 0, end: 4 }, { start: 4, end: 8 }, { start: 8, end: 13 }]);
    expect(() => indexShardRows(12, 4, { index: 0, count: 4 })).toThrow(/4 shards of 12 training samples in 3 blocks of 4: a shard would have no rows/);
  });

  it('the shard comes from --shard i/n, --shards n --shard i, --shard slurm or --shards n with the environment, as dda attribute\'s', () => {
    expect(resolveShard('1', 3, {})).toEqual({ index: 1, count: 3 });
    expect(resolveShard('1/3', undefined, {})).toEqual({ index: 1, count: 3 });
    expect(resolveShard(undefined, 3, { JOB_COMPLETION_INDEX: '2' })).toEqual({ index: 2, count: 3 });
    expect(() => resolveShard('1/3', 3, {})).toThrow(/give the index alone/);
    expect(() => resolveShard('3', 3, {})).toThrow(/shard index 3 is outside 0\.\.2/);
  });
});

describe('dda index build in shards', () => {
  it('3 shards merged are the unsharded build byte for byte (gradients.f16 and index.json), and the parts are deleted', async () => {
    const out = join(dir, 'three');
    for (const i of [2, 0, 1]) expect((await shard(out, i)).status).toBe('built');
    expect(existsSync(join(indexShardPart(out, { index: 1, count: 3 }), INDEX_FILES.rows))).toBe(true);
    cpSync(join(out, 'shards'), join(dir, 'corrupt', 'shards'), { recursive: true }); // for the test of a corrupted part
    const lines: string[] = [];
    const r = mergeGradientIndexShards(out, { log: (l) => lines.push(l) });
    expect(r.merged).toBe(3);
    expect(r.header.count).toBe(12);
    expect(lines.join('\n')).toContain('merged 3 shards');
    expect(readdirSync(out).sort()).toEqual([INDEX_FILES.rows, INDEX_FILES.header, INDEX_FILES.verified]);
    expect(files(out)).toEqual(files(reference));
    // Delivered again after the merge: a shard and the merge do nothing.
    expect((await shard(out, 1)).status).toBe('merged');
    expect(mergeGradientIndexShards(out).merged).toBe(0);
    expect(files(out)).toEqual(files(reference));
  }, 300_000);

  it('a killed shard resumes at its first unfinished block; the merge names a missing shard until it has finished', async () => {
    const out = join(dir, 'killed');
    await shard(out, 0);
    await shard(out, 2);
    await expect(shard(out, 1, { onBlock: (end) => { if (end === 6) throw new Error('killed'); } })).rejects.toThrow('killed');
    expect(JSON.parse(readFileSync(join(indexShardPart(out, { index: 1, count: 3 }), INDEX_FILES.progress), 'utf8'))).toMatchObject({ rows: { start: 4, end: 8 }, rowsDone: 2 });
    expect(() => mergeGradientIndexShards(out)).toThrow(/cannot merge .*: missing shard 1 of 3.*resubmit only those: sbatch --array=1 \(or dda index build \.\.\. --shard <i>\/3/);
    const blocks: number[] = [];
    const lines: string[] = [];
    const r = await shard(out, 1, { onBlock: (end) => blocks.push(end), log: (l) => lines.push(l) });
    expect(blocks).toEqual([8]);
    expect(lines.join('\n')).toContain('resuming at row 6 of 12 (rows 4 to 7 here)');
    expect(r.unfinished).toEqual([]);
    expect(lines.join('\n')).toContain(`every shard has finished: dda index merge --index ${out}`);
    // Run again before the merge: its manifest is there.
    expect((await shard(out, 1)).status).toBe('finished-earlier');
    mergeGradientIndexShards(out);
    expect(files(out)).toEqual(files(reference));
  }, 300_000);

  it('refuses a shard with another seed or dim, naming the difference, when it is built and when the shards are merged', async () => {
    const out = join(dir, 'mixed');
    await shard(out, 0);
    await expect(shard(out, 1, { seed: 2 })).rejects.toThrow(/shard 1\/3 would be built from other inputs than shard 0 there \(projection\.seed: 1 in shard 0, 2 in this command\)/);
    await expect(buildGradientIndexShard(options(out), { index: 1, count: 2 })).rejects.toThrow(/holds shards of 3 .*shard-0-of-3\.json\); this is shard 1\/2/);
    await expect(buildGradientIndex(options(out))).rejects.toThrow(/holds the shards of a sharded build/);
    // Two shards started at once with other options both finish; the merge names the odd one.
    await shard(out, 2);
    const other = join(dir, 'other-dim');
    await shard(other, 1, { dim: 128 });
    cpSync(join(other, 'shards'), join(out, 'shards'), { recursive: true });
    expect(() => mergeGradientIndexShards(out)).toThrow(/cannot merge .*: shard 1 made from other inputs \(projection\.dim: 256 in shard 0, 128 in shard 1\).*resubmit only those: sbatch --array=1/);
    // Its own part is not overwritten by a build with other inputs.
    await expect(shard(out, 1)).rejects.toThrow(/shard 1\/3 was built from other inputs than this command's \(projection\.dim: 128 in shard 1, 256 in this command\)/);
    // Nothing was deleted by the refused merge; with shard 1 deleted and built again, the merge is the unsharded build.
    expect(existsSync(join(indexShardPart(out, { index: 0, count: 3 }), INDEX_FILES.rows))).toBe(true);
    rmSync(indexShardPart(out, { index: 1, count: 3 }), { recursive: true });
    rmSync(shardManifestPath(out, { index: 1, count: 3 }));
    await shard(out, 1);
    mergeGradientIndexShards(out);
    expect(files(out)).toEqual(files(reference));
  }, 300_000);

  it('refuses to merge a part holding a non-finite value, naming the shard and the row; a query of such an index refuses the row\'s score', async () => {
    /** Sets entry `entry` of row `row` of the float16 file `path` to +inf. */
    const corrupt = (path: string, row: number, entry: number): void => {
      const b = readFileSync(path);
      b.writeUInt16LE(0x7c00, (row * 256 + entry) * 2);
      writeFileSync(path, b);
    };
    const out = join(dir, 'corrupt');
    // Row 1 of shard 1 (rows 4 to 7) is training row 5.
    corrupt(join(indexShardPart(out, { index: 1, count: 3 }), INDEX_FILES.rows), 1, 7);
    // The part is not what the shard wrote: refused by its hash, and so is a rerun of that shard.
    expect(() => mergeGradientIndexShards(out)).toThrow(/shard-1-of-3\/gradients\.f16 is not the file shard 1 wrote: SHA-256 [0-9a-f]{16}…, its manifest records [0-9a-f]{16}….*delete .*shard-1-of-3\.json and .*shard-1-of-3, then run shard 1 again/);
    await expect(shard(out, 1)).rejects.toThrow(/is not the file shard 1 wrote/);
    // A shard of an earlier version records no hash: the non-finite value is still refused, by the copy.
    const manifestPath = shardManifestPath(out, { index: 1, count: 3 });
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    delete manifest.rowsSha256;
    writeFileSync(manifestPath, JSON.stringify(manifest));
    expect(() => mergeGradientIndexShards(out)).toThrow(/shard 1 of 3: row 5 \(training sample 't5'\) holds a non-finite value \(entry 7 is Infinity\).*delete .*shard-1-of-3\.json and .*shard-1-of-3, then run shard 1 again/);
    expect(readdirSync(out)).toEqual(['shards']); // no index, no partial file
    expect(existsSync(shardManifestPath(out, { index: 1, count: 3 }))).toBe(true);
    const idx = join(dir, 'corrupt-index');
    cpSync(reference, idx, { recursive: true });
    corrupt(join(idx, INDEX_FILES.rows), 9, 0);
    // The rows are not those the build hashed: refused before any row is scored.
    await expect(queryGradientIndex({ index: idx, queries: run.queries })).rejects.toThrow(/corrupt-index\/gradients\.f16 is not the file its index was built with: SHA-256 [0-9a-f]{16}…, index\.json records [0-9a-f]{16}…/);
    // index.json's training ids reordered by hand (its rows intact): the texts of the training file,
    // which is the build's, would go with other ids; refused, naming the record.
    const ids = join(dir, 'ids-edited');
    cpSync(reference, ids, { recursive: true });
    const edited = JSON.parse(readFileSync(join(ids, INDEX_FILES.header), 'utf8'));
    [edited.trainIds[0], edited.trainIds[4]] = [edited.trainIds[4], edited.trainIds[0]];
    writeFileSync(join(ids, INDEX_FILES.header), JSON.stringify(edited));
    await expect(queryGradientIndex({ index: ids, queries: run.queries })).rejects.toThrow(/record 1 is training sample 't0', but index\.json lists 't4' for row 0 \(the training file has the content the build read, so index\.json was changed after the build\)/);
    // An index of an earlier version records no hash: the non-finite row is still refused, by the scan.
    const h = JSON.parse(readFileSync(join(idx, INDEX_FILES.header), 'utf8'));
    delete h.rowsSha256;
    writeFileSync(join(idx, INDEX_FILES.header), JSON.stringify(h));
    const lines: string[] = [];
    await expect(queryGradientIndex({ index: idx, queries: run.queries, log: (l) => lines.push(l) })).rejects.toThrow(/row 9 \(training sample 't9'\) of .*gradients\.f16 gives a non-finite score/);
    expect(lines.join('\n')).toMatch(/an index of an earlier version\) records no hash of its rows: .*gradients\.f16 is used unchecked/);
  }, 300_000);
});

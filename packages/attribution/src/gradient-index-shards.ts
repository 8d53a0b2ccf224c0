/**
 * Building a gradient index in shards, as `dda attribute` shards an attribution (see shards.ts):
 * shard i of n builds a contiguous range of training rows, whole blocks of `blockRows` samples, so
 * that every row is computed in the same block as in one build, into its own part of the index
 * folder, then writes a manifest with the hash of its inputs. It reads the training file as a
 * stream and holds only its own samples (and the training loss check's): every shard checks every
 * record, and hashes the whole file, as one build does (see prepareIndexBuild). `mergeGradientIndexShards`
 * checks that every shard finished with the same inputs and concatenates the parts into exactly the
 * files of an unsharded build.
 *
 * In the index folder `<out>`, while sharded:
 * - `shards/shard-<i>-of-<n>/gradients.f16`: rows [start, end) of shard i (float16 [end − start × k]),
 *   with `progress.json` beside it while it is built (a killed shard resumes at its first unfinished
 *   block, as an unsharded build does);
 * - `shards/shard-<i>-of-<n>.json` ({@link IndexShardManifest}), written when shard i has finished:
 *   its inputs (the index's identity without the training ids, which it holds as a hash, and its
 *   own ids), its rows, the projection's layout and the float16 statistics of its rows.
 *
 * The merge writes `gradients.f16` (through a temporary file renamed into place) and then
 * `index.json` atomically, and only then deletes `shards/`: the folder is then exactly an unsharded
 * build's.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readSync, readdirSync, renameSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DdaError } from '@dda/core';
import { hashOf, writeFileAtomic } from './artifacts.js';
import { checkBuildLock, lockBuildFolder } from './build-lock.js';
import type { Log } from './engine.js';
import {
  INDEX_FILES, checkIndexTrainingData, comparableIdentity, finishedIndexIn, indexHeader, jsonDifferences, prepareIndexBuild, readIndexHeader, recordedIdentity, writeAll, writeIndexHeader, writeIndexRows,
  type Float16Stats, type IndexBuildOptions, type IndexHeader, type IndexTrainingData, type PreparedIndexBuild, type RecordedIdentity,
} from './gradient-index.js';
import { CheckpointModel } from './engine.js';
import { sha256OfFile } from './index-integrity.js';
import type { ModuleProjection } from './projection.js';
import { checkShards, describeShardDifferences, readShardManifest, refuseIncompleteShards, shardManifestPath, type Shard, type ShardRecord } from './shards.js';

/** Format tag of an index shard's manifest. */
export const INDEX_SHARD_FORMAT = 'dda-index-shard-v1';

/** What a finished index shard writes: `<out>/shards/shard-<i>-of-<n>.json`. */
export interface IndexShardManifest extends ShardRecord {
  readonly format: typeof INDEX_SHARD_FORMAT;
  /** What the shard was built from (the index's identity, its training ids as one hash, the folders as this shard saw them). */
  readonly identity: RecordedIdentity;
  /** Training samples per block: with the count of samples and of shards, it places every shard's rows. */
  readonly blockRows: number;
  /** This shard's rows [start, end) of the training set, and their ids in row order. */
  readonly rows: { readonly start: number; readonly end: number };
  readonly trainIds: readonly string[];
  /** The projection's dimensions and offset per tensor. */
  readonly modules: readonly ModuleProjection[];
  /** float16 rounding of this shard's rows. */
  readonly float16: Float16Stats;
  /** The checks of the training data every shard makes (absent in shards of earlier versions); the merge records shard 0's in index.json. */
  readonly trainingData?: IndexTrainingData;
  /** SHA-256 (hex) of this shard's `gradients.f16` as it wrote it (absent in shards of earlier versions): the merge and a rerun check the part against it. */
  readonly rowsSha256?: string;
  /** Wall seconds of the shard's last run. */
  readonly seconds: number;
  readonly finishedAt: string;
}

/** What {@link buildGradientIndexShard} did: `built` now, `finished-earlier` (its manifest was there), or `merged` (the folder holds the merged index already). */
export interface IndexShardResult {
  readonly shard: Shard;
  /** The shard's rows [start, end) of the `total` training samples. */
  readonly rows: { readonly start: number; readonly end: number };
  readonly total: number;
  readonly status: 'built' | 'finished-earlier' | 'merged';
  /** Shards of the same count without a manifest yet (empty: every shard has finished; merge them). */
  readonly unfinished: readonly number[];
}

/** The part folder of shard `s` of the index in `out`. */
export const indexShardPart = (out: string, s: Shard): string => join(out, 'shards', `shard-${s.index}-of-${s.count}`);

/**
 * The training rows [start, end) of shard `s` of `n` samples: contiguous whole blocks of
 * `blockRows` (the ⌈n / blockRows⌉ blocks split as evenly as they go, earlier shards no larger).
 *
 * @throws DdaError when there are fewer blocks than shards (a shard would be empty).
 */
export function indexShardRows(n: number, blockRows: number, s: Shard): { start: number; end: number } {
  const blocks = Math.ceil(n / blockRows);
  if (s.count > blocks) throw new DdaError(`${s.count} shards of ${n} training samples in ${blocks} block${blocks > 1 ? 's' : ''} of ${blockRows}: a shard would have no rows`, `give at most ${blocks} shards, or a smaller --block-rows`);
  const first = Math.floor((s.index * blocks) / s.count);
  const last = Math.floor(((s.index + 1) * blocks) / s.count);
  return { start: first * blockRows, end: Math.min(n, last * blockRows) };
}

/** What all shards of one index must agree on: its identity without the folders' paths, and the block size. */
const shardInputs = (m: Pick<IndexShardManifest, 'identity' | 'blockRows'>): Record<string, unknown> => ({ ...comparableIdentity(m.identity), blockRows: m.blockRows });

/** `path: X in shard a, Y in shard b` for every input two shards differ in. */
function shardDifferences(a: Pick<IndexShardManifest, 'identity' | 'blockRows' | 'index'>, b: Pick<IndexShardManifest, 'identity' | 'blockRows' | 'index'>, bName = `shard ${b.index}`): string[] {
  return describeShardDifferences(shardInputs(a), shardInputs(b), a.index, bName);
}

/** Reads an index shard's manifest. @throws DdaError naming the file when it is not JSON or not an index shard's. */
function readIndexShardManifest(path: string): IndexShardManifest {
  const m = readShardManifest<IndexShardManifest>(path);
  if (m.format !== INDEX_SHARD_FORMAT) throw new DdaError(`${path}: not the manifest of an index shard (format '${String(m.format)}')`, `this version reads ${INDEX_SHARD_FORMAT}; is the folder a dda attribute --out?`);
  return m;
}

/** The index shard manifests in `out/shards/` (none when the folder is not there). */
function shardManifestsIn(out: string): IndexShardManifest[] {
  const dir = join(out, 'shards');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => /^shard-\d+-of-\d+\.json$/.test(f)).map((f) => readIndexShardManifest(join(dir, f)));
}

/**
 * Builds (or resumes, or finds finished) shard `s` of the gradient index `o` describes: the rows
 * {@link indexShardRows} gives it, projected and rounded as {@link buildGradientIndex} does, into
 * `<out>/shards/shard-<i>-of-<n>/gradients.f16`, resumable at its first unfinished block; then
 * its manifest. The shards are merged by {@link mergeGradientIndexShards}.
 *
 * @returns What was done, and the shards not finished yet.
 * @throws DdaError for bad inputs (as {@link buildGradientIndex}), before any model work; a shard
 *   count with fewer blocks than shards; a folder holding another index, an unsharded build in
 *   progress, shards of another count, or shards (this one's included) built from other inputs
 *   (naming what differs).
 */
export async function buildGradientIndexShard(o: IndexBuildOptions, s: Shard): Promise<IndexShardResult> {
  const t0 = Date.now();
  const p = await prepareIndexBuild(o, (n, blockRows) => indexShardRows(n, blockRows, s));
  const { total, rows, identity } = p;
  const label = `shard ${s.index}/${s.count}`;
  mkdirSync(o.out, { recursive: true });
  // The shard's part is this run's from its first look at the folder to its manifest.
  const part = indexShardPart(o.out, s);
  const release = lockBuildFolder(part, p.log);
  try {
    return await buildShardLocked(o, s, p, t0);
  } finally {
    release();
    // A shard with nothing to do (merged already, or finished earlier) leaves no folder the lock made.
    for (const d of [part, join(o.out, 'shards')]) {
      try {
        rmdirSync(d);
      } catch {
        // not empty: a part or other shards
      }
    }
  }
}

async function buildShardLocked(o: IndexBuildOptions, s: Shard, p: PreparedIndexBuild, t0: number): Promise<IndexShardResult> {
  const { total, rows, identity } = p;
  const label = `shard ${s.index}/${s.count}`;
  const merged = finishedIndexIn(o.out, identity);
  if (merged) {
    p.log(`index: ${o.out} is merged already (${merged.count} rows × ${merged.dim}); nothing to do for ${label}`);
    return { shard: s, rows, total, status: 'merged', unfinished: [] };
  }
  if (existsSync(join(o.out, INDEX_FILES.progress))) throw new DdaError(`${o.out} holds an unfinished build without shards (${INDEX_FILES.progress})`, 'finish it with the same command without --shard/--shards, or give another --out');
  const manifests = shardManifestsIn(o.out);
  const other = manifests.find((m) => m.count !== s.count);
  if (other) throw new DdaError(`${o.out} holds shards of ${other.count} (${shardManifestPath(o.out, other)}); this is ${label}`, `give --shards ${other.count}, or delete ${join(o.out, 'shards')} to start again with ${s.count}`);
  const mine = { index: s.index, identity, blockRows: p.blockRows };
  for (const m of manifests) {
    const diff = shardDifferences(m, mine, 'this command');
    if (diff.length === 0) continue;
    if (m.index === s.index) throw new DdaError(`${o.out}: ${label} was built from other inputs than this command's (${diff.slice(0, 5).join('; ')})`, `run it with the inputs and options it was built with, or delete ${indexShardPart(o.out, s)} and ${shardManifestPath(o.out, s)} to build it with these`);
    throw new DdaError(`${o.out}: ${label} would be built from other inputs than shard ${m.index} there (${diff.slice(0, 5).join('; ')})`, 'give every shard the same inputs and options, or delete the folder to start again with these');
  }
  const unfinished = (done: readonly number[]): number[] => Array.from({ length: s.count }, (_, i) => i).filter((i) => !done.includes(i));
  const earlier = manifests.find((m) => m.index === s.index);
  if (earlier) {
    checkShardRows(o.out, earlier, p.log);
    p.log(`index: ${label} finished earlier (${earlier.finishedAt}); nothing to do`);
    return { shard: s, rows, total, status: 'finished-earlier', unfinished: unfinished(manifests.map((m) => m.index)) };
  }
  const part = indexShardPart(o.out, s);
  p.log(`index: ${label}: rows ${rows.start} to ${rows.end - 1} of ${total} into ${part}`);
  const model = await CheckpointModel.open(p.side.task, { log: p.log, gradientEngine: p.engine, ...(o.backends ? { backends: o.backends } : {}) });
  let trainingData: IndexTrainingData;
  let written: Awaited<ReturnType<typeof writeIndexRows>>;
  try {
    trainingData = await checkIndexTrainingData(p, model);
    written = await writeIndexRows(p, { ...o, model }, part, rows);
  } finally {
    await model.dispose();
  }
  const { modules, float16 } = written;
  const manifest: IndexShardManifest = {
    format: INDEX_SHARD_FORMAT, index: s.index, count: s.count, inputsHash: hashOf(shardInputs(mine)), identity, blockRows: p.blockRows,
    rows, trainIds: p.samples.map((x) => x.id), modules, float16, trainingData, rowsSha256: sha256OfFile(join(part, INDEX_FILES.rows)), seconds: (Date.now() - t0) / 1000, finishedAt: new Date().toISOString(),
  };
  checkBuildLock(part);
  writeFileAtomic(shardManifestPath(o.out, s), `${JSON.stringify(manifest, null, 1)}\n`);
  rmSync(join(part, INDEX_FILES.progress), { force: true });
  const left = unfinished([...manifests.map((m) => m.index), s.index]);
  p.log(`index: ${label} done: ${rows.end - rows.start} rows${left.length ? `; shard${left.length > 1 ? 's' : ''} ${left.join(', ')} not finished yet` : `; every shard has finished: dda index merge --index ${o.out}`}`);
  return { shard: s, rows, total, status: 'built', unfinished: left };
}

/**
 * Checks shard `m`'s part in `dir` against the SHA-256 its manifest records (a manifest of an
 * earlier version records none: used unchecked, with a log line), so that the merge never vouches,
 * in index.json, for rows a shard did not write. `actual`: the part's hash where the caller has
 * just computed it (the merge, from the bytes it copied); otherwise the file is hashed.
 *
 * @throws DdaError naming the part when it was changed, damaged or replaced after the shard finished.
 */
function checkShardRows(dir: string, m: IndexShardManifest, log: Log, actual?: string): void {
  const rows = join(indexShardPart(dir, m), INDEX_FILES.rows);
  if (m.rowsSha256 === undefined) {
    log(`note: ${shardManifestPath(dir, m)} (a shard of an earlier version) records no hash of its rows: ${rows} is merged unchecked`);
    return;
  }
  const sha = actual ?? sha256OfFile(rows);
  if (sha !== m.rowsSha256) {
    throw new DdaError(
      `${rows} is not the file shard ${m.index} wrote: SHA-256 ${sha.slice(0, 16)}…, its manifest records ${m.rowsSha256.slice(0, 16)}… (it was changed, damaged or replaced after the shard finished)`,
      `delete ${shardManifestPath(dir, m)} and ${indexShardPart(dir, m)}, then run shard ${m.index} again`,
    );
  }
}

/** What {@link mergeGradientIndexShards} returns: the index's header, and how many shards it merged (0: the folder held the merged index already). */
export interface IndexMergeResult {
  readonly header: IndexHeader;
  readonly merged: number;
}

/**
 * Refuses float16 bits `bytes` (at byte `offset` of shard `m`'s part, rows of `k` entries) holding
 * an infinity or a NaN: a build never writes one (it refuses entries beyond float16's range), so
 * the part was damaged after it.
 *
 * @throws DdaError naming the shard, the training row and sample, and the entry.
 */
function refuseNonFinite(dir: string, m: IndexShardManifest, bytes: Uint8Array, offset: number, k: number): void {
  for (let b = 0; b + 1 < bytes.length; b += 2) {
    const bits = (bytes[b] as number) | ((bytes[b + 1] as number) << 8);
    if ((bits & 0x7c00) !== 0x7c00) continue;
    const at = (offset + b) / 2;
    const local = Math.floor(at / k);
    const value = (bits & 0x3ff) !== 0 ? 'NaN' : bits & 0x8000 ? '-Infinity' : 'Infinity';
    throw new DdaError(
      `${join(indexShardPart(dir, m), INDEX_FILES.rows)}: shard ${m.index} of ${m.count}: row ${m.rows.start + local} (training sample '${m.trainIds[local] ?? '?'}') holds a non-finite value (entry ${at % k} is ${value})`,
      `the part was damaged after its build: delete ${shardManifestPath(dir, m)} and ${indexShardPart(dir, m)}, then run shard ${m.index} again`,
    );
  }
}

/**
 * Merges the shards of the index in `dir`: checks that shards 0..n-1 all finished with the same
 * inputs and that their parts hold their rows, concatenates the parts into `gradients.f16` (in
 * chunks of 8 MB: memory flat in the number of rows; through a temporary file renamed into place),
 * writes `index.json` (atomically; the same bytes as an unsharded build's of the same inputs in the
 * same folders), then deletes `shards/`. A folder holding the merged index already is left as it is
 * (a merge delivered twice; leftover parts of a merge killed after `index.json` are deleted).
 *
 * @throws DdaError naming the missing shards, the shards built from other inputs (and what differs)
 *   and how to run only those again; a part of the wrong size, or holding a non-finite value (naming
 *   the row); a folder with no shards.
 */
export function mergeGradientIndexShards(dir: string, o: { readonly log?: Log } = {}): IndexMergeResult {
  const log = o.log ?? (() => {});
  if (!existsSync(dir)) throw new DdaError(`${dir}: no such folder`, 'give the --out of dda index build ... --shard i/n');
  // One merge (or unsharded build) in the folder at a time.
  const release = lockBuildFolder(dir, log);
  try {
    return mergeLocked(dir, log);
  } finally {
    release();
  }
}

function mergeLocked(dir: string, log: Log): IndexMergeResult {
  const manifests = shardManifestsIn(dir);
  if (existsSync(join(dir, INDEX_FILES.header))) {
    const header = readIndexHeader(dir);
    // Parts left by a merge killed after index.json: they must be of this index.
    for (const m of manifests) {
      const diff = jsonDifferences(comparableIdentity(recordedIdentity(header)), comparableIdentity(m.identity)).map((d) => d.path);
      if (diff.length > 0) throw new DdaError(`${dir} holds an index and shards of another (${shardManifestPath(dir, m)} differs in ${diff.slice(0, 5).join(', ')})`, `delete ${join(dir, 'shards')} (or the index) by hand`);
    }
    if (manifests.length > 0) rmSync(join(dir, 'shards'), { recursive: true, force: true });
    log(`index: ${dir} holds the merged index already (${header.count} rows × ${header.dim}); nothing to merge`);
    return { header, merged: 0 };
  }
  if (existsSync(join(dir, INDEX_FILES.progress))) throw new DdaError(`${dir} holds an unfinished build without shards (${INDEX_FILES.progress}), not shards to merge`, 'finish it with the same dda index build command (no merge is needed)');
  const c = checkShards(dir, readIndexShardManifest, 'dda index build ... --shard i/n');
  refuseIncompleteShards(dir, c, (_, count) => `dda index build ... --shard <i>/${count}; a shard built from other inputs: delete its part and manifest first`, (m, ref) => {
    if (m.count !== c.count) return `one of ${m.count} shards, the others of ${c.count}`;
    return ref ? shardDifferences(ref, m).slice(0, 4).join('; ') : '';
  });
  const ms = c.manifests;
  const first = ms[0] as IndexShardManifest;
  const k = first.identity.projection.dim;
  let at = 0;
  for (const m of ms) {
    const where = shardManifestPath(dir, m);
    if (m.rows.start !== at || m.trainIds.length !== m.rows.end - m.rows.start) throw new DdaError(`${where}: rows ${m.rows.start} to ${m.rows.end - 1} (${m.trainIds.length} ids), expected rows from ${at}`, `delete it and ${indexShardPart(dir, m)}, then run shard ${m.index} again`);
    const layout = jsonDifferences(first.modules, m.modules);
    if (layout.length > 0) throw new DdaError(`${where}: the projection's layout differs from shard ${first.index}'s (${layout.slice(0, 3).map((d) => `${d.path}: ${d.a} in shard ${first.index}, ${d.b} in shard ${m.index}`).join('; ')})`, 'build every shard with the same version of dda');
    const rows = join(indexShardPart(dir, m), INDEX_FILES.rows);
    const size = existsSync(rows) ? statSync(rows).size : -1;
    const want = (m.rows.end - m.rows.start) * k * 2;
    if (size !== want) throw new DdaError(`${rows}: ${size < 0 ? 'missing' : `${size} bytes`}, expected ${m.rows.end - m.rows.start} rows × ${k} × 2 = ${want}`, `delete ${where} and ${indexShardPart(dir, m)}, then run shard ${m.index} again`);
    at = m.rows.end;
  }
  const trainIds = ms.flatMap((m) => m.trainIds);
  if (hashOf(trainIds) !== first.identity.trainIds) throw new DdaError(`${dir}: the shards' training ids, in row order, are not those the shards were built for (${trainIds.length} ids)`, 'delete the folder and build the shards again');
  const target = join(dir, INDEX_FILES.rows);
  const partial = `${target}.merging`;
  const out = openSync(partial, 'w');
  // One reading of each part: its bytes are hashed (checked against its manifest once the part is
  // copied; a part of an earlier version, without a hash, is scanned for non-finite values instead),
  // copied and hashed into the merged file's hash, which
  // index.json records; so no byte is vouched for that was not read, and nothing is read twice.
  const merged = createHash('sha256');
  try {
    let position = 0;
    const chunk = Buffer.alloc(8 << 20);
    for (const m of ms) {
      const partHash = createHash('sha256');
      const fd = openSync(join(indexShardPart(dir, m), INDEX_FILES.rows), 'r');
      try {
        let done = 0; // bytes of this part
        for (let read = readSync(fd, chunk, 0, chunk.length, null); read > 0; read = readSync(fd, chunk, 0, chunk.length, null)) {
          const bytes = chunk.subarray(0, read);
          partHash.update(bytes);
          merged.update(bytes);
          // A part with a recorded hash is checked by it (a build never writes a non-finite value); one without, value by value.
          if (m.rowsSha256 === undefined) refuseNonFinite(dir, m, bytes, done, k);
          writeAll(out, bytes, position);
          position += read;
          done += read;
        }
      } finally {
        closeSync(fd);
      }
      checkShardRows(dir, m, log, partHash.digest('hex'));
    }
    const want = (ms[ms.length - 1] as IndexShardManifest).rows.end * k * 2;
    if (position !== want) throw new DdaError(`${dir}: the shards' parts hold ${position} bytes, expected ${want} (a part changed size during the merge?)`, 'run dda index merge again');
    fsyncSync(out);
    checkBuildLock(dir);
  } catch (e) {
    rmSync(partial, { force: true });
    throw e;
  } finally {
    closeSync(out);
  }
  renameSync(partial, target);
  const float16: Float16Stats = {
    maxAbs: Math.max(...ms.map((m) => m.float16.maxAbs)),
    subnormal: ms.reduce((a, m) => a + m.float16.subnormal, 0),
    flushedToZero: ms.reduce((a, m) => a + m.float16.flushedToZero, 0),
  };
  const header = writeIndexHeader(dir, indexHeader({ ...first.identity, trainIds }, first.modules, float16, first.trainingData), log, merged.digest('hex'));
  rmSync(join(dir, 'shards'), { recursive: true, force: true });
  log(`index: merged ${c.count} shards into ${dir}`);
  return { header, merged: c.count };
}

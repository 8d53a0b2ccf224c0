/**
 * Sharding an attribution over machines, engine-neutral: shard i of n computes its share of the
 * training blocks at θ0 and every checkpoint into a shared output folder (a row-separable scorer's
 * blocks of scores, a streaming scorer's block summaries, a streamed-fit scorer's first fit
 * pass (the merge does its other passes), each from streamed gradients; the
 * gradient blocks themselves for other scorers or with --store-gradients), then writes a manifest with the hash of its inputs.
 * `mergeShards` checks that every shard finished with the same inputs, names the missing or
 * mismatched ones, and writes exactly the outputs of a one-machine run (every block is found in
 * the store, so nothing is computed twice).
 *
 * A scheduler delivers a job at least once: a shard that runs again skips its finished work (its
 * manifest, or its blocks one by one after a kill), artifacts are written atomically, and every
 * block is keyed by the content of its inputs, so results of different inputs are never mixed.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DdaError, scorers, type TextSample } from '@dda/core';
import { hashOf, writeFileAtomic } from './artifacts.js';
import { type AttributeOptions, type AttributeResult, runAttribute } from './attribute.js';
import { jsonDifferences } from './gradient-index.js';
import { checkMethod, checkRequirements } from './method.js';
import { type IndexedTraining, indexRunOptions } from './indexed-rows.js';
import { checkOutFolder } from './outputs.js';
import { ensurePlugins } from './plugins.js';
import { checkQueryLoss, checkTrainingLoss } from './training-loss.js';
import { AttributionRun, blockRowsFor, isModelFree } from './run.js';
import { loadTask, type AttributionTask } from './task.js';
import { describeTruncation } from './truncation.js';

/** Shard `index` (0-based) of `count`. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/** Environment variables that carry a shard index: SLURM job arrays and Kubernetes Indexed Jobs. */
export const SHARD_ENV = { slurmIndex: 'SLURM_ARRAY_TASK_ID', slurmCount: 'SLURM_ARRAY_TASK_COUNT', k8sIndex: 'JOB_COMPLETION_INDEX' } as const;

const int = (s: string | undefined): number => (s !== undefined && /^\d+$/.test(s.trim()) ? Number(s.trim()) : Number.NaN);

/**
 * The shard to compute, from `--shard i/n`, `--shard slurm` (index and count from
 * SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT), `--shards n --shard i`, or `--shards n` with the
 * index from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX. Null when neither flag is given: sharding
 * is never inferred from the environment alone.
 *
 * @throws DdaError for malformed values, an index out of range, or a missing environment variable.
 */
export function resolveShard(shard: string | undefined, shards: number | undefined, env: Readonly<Record<string, string | undefined>> = process.env): Shard | null {
  let s: Shard;
  if (shard !== undefined && shards !== undefined) {
    if (!/^\d+$/.test(shard.trim())) throw new DdaError(`--shard '${shard}' with --shards ${shards}: give the index alone (--shards ${shards} --shard 0), or --shard i/n or --shard slurm without --shards`);
    s = { index: Number(shard.trim()), count: shards };
  } else if (shard !== undefined) {
    if (shard === 'slurm') {
      s = { index: int(env[SHARD_ENV.slurmIndex]), count: int(env[SHARD_ENV.slurmCount]) };
      if (Number.isNaN(s.index) || Number.isNaN(s.count)) throw new DdaError(`--shard slurm: ${SHARD_ENV.slurmIndex} and ${SHARD_ENV.slurmCount} must be set (run inside an sbatch --array job)`, 'or give --shard i/n');
    } else {
      const m = /^(\d+)\/(\d+)$/.exec(shard.trim());
      if (!m) throw new DdaError(`--shard '${shard}' is not of the form i/n (0-based index i of n shards) or 'slurm'`, 'e.g. --shard 0/4');
      s = { index: Number(m[1]), count: Number(m[2]) };
    }
  } else if (shards !== undefined) {
    const index = int(env[SHARD_ENV.slurmIndex] ?? env[SHARD_ENV.k8sIndex]);
    if (Number.isNaN(index)) throw new DdaError(`--shards ${shards}: the shard index comes from ${SHARD_ENV.slurmIndex} (SLURM job arrays) or ${SHARD_ENV.k8sIndex} (Kubernetes Indexed Jobs), and neither is set`, 'or give --shard i/n');
    s = { index, count: shards };
  } else {
    return null;
  }
  if (!Number.isInteger(s.count) || s.count < 1) throw new DdaError(`the shard count must be a positive integer, got ${s.count}`);
  if (!Number.isInteger(s.index) || s.index < 0 || s.index >= s.count) throw new DdaError(`shard index ${s.index} is outside 0..${s.count - 1}`, 'indices are 0-based: --array=0-(n-1) for SLURM, completions n for Kubernetes');
  return s;
}

/** What a finished shard writes: `<out>/shards/shard-<i>-of-<n>.json`. */
export interface ShardManifest extends ShardRecord {
  readonly format: 'dda-shard-v1';
  /** The attribution's options (paths, method, run options), for `dda merge`. */
  readonly options: StoredOptions;
  /** What `inputsHash` is the hash of ({@link shardInputs}), for the merge to name what differs (absent in manifests of earlier versions). */
  readonly inputs?: Readonly<Record<string, unknown>>;
  /** The training samples block by block and record by record when the shard ran, for the merge to name what changed since (absent in manifests of earlier versions; not part of `inputsHash`). */
  readonly train?: TrainFingerprint;
  readonly units: number;
  readonly computed: number;
  readonly reused: number;
  readonly seconds: number;
  readonly finishedAt: string;
}

/** The options a shard stores for the merge (JSON: no functions). */
type StoredOptions = Omit<AttributeOptions, 'log' | 'progress'>;

/** The manifest file of a shard. */
export const shardManifestPath = (out: string, s: Shard): string => join(out, 'shards', `shard-${s.index}-of-${s.count}.json`);

/** The inputs of a sharded attribution: contents of every input file and every option that changes a result. */
function shardInputs(task: AttributionTask, o: StoredOptions, indexed: IndexedTraining | null): Record<string, unknown> {
  return {
    inputs: task.hashes, method: o.method, measurement: o.measurement ?? 'loss', scorerOptions: o.scorerOptions ?? {}, blockRows: o.blockRows ?? null, gradientEngine: o.gradientEngine ?? 'onnxruntime',
    ...(o.projection ? { projection: o.projection } : {}), ...(indexed ? { indexes: indexed.record.map((r) => ({ checkpoint: r.checkpoint, identity: r.identity })) } : {}),
  };
}

/** `path: X in shard a, Y in <bName>` for every leaf where the inputs `a` and `b` of two shards differ. */
export function describeShardDifferences(a: unknown, b: unknown, aIndex: number, bName: string): string[] {
  return jsonDifferences(a, b).map((d) => `${d.path}: ${d.a}${d.entries ? ' entries' : ''} in shard ${aIndex}, ${d.b} in ${bName}`);
}

/**
 * The training samples' hashes: per block of `blockRows` (the `samples` of the gradient blocks'
 * keys, {@link AttributionRun.trainBlocks}) and, up to {@link MAX_RECORD_HASHES} samples, per
 * sample (8 hex digits each, concatenated), so that a merge can name the blocks and the records
 * that changed after the shards ran.
 */
export interface TrainFingerprint {
  readonly blockRows: number;
  readonly blocks: readonly string[];
  readonly records?: string;
}

/** Samples above which a manifest keeps only the block hashes (8 bytes per sample: 1.6 MB at this count). */
const MAX_RECORD_HASHES = 200_000;

/** The {@link TrainFingerprint} of `samples` in blocks of `blockRows`. */
function trainFingerprint(samples: readonly TextSample[], blockRows: number): TrainFingerprint {
  const blocks: string[] = [];
  for (let start = 0; start < samples.length; start += blockRows) blocks.push(hashOf(samples.slice(start, start + blockRows)));
  return { blockRows, blocks, ...(samples.length <= MAX_RECORD_HASHES ? { records: samples.map((x) => hashOf(x).slice(0, 8)).join('') } : {}) };
}

/** The (checkpoint index, block) units shard `index` of `count` computes, checkpoint index 0 being θ0 (as {@link units}). */
function unitsOf(index: number, count: number, checkpoints: number, blocks: number): { cp: number; block: number }[] {
  const out: { cp: number; block: number }[] = [];
  for (let u = index; u < checkpoints * blocks; u += count) out.push({ cp: Math.floor(u / blocks), block: u % blocks });
  return out;
}

function storedOptions(o: AttributeOptions): StoredOptions {
  const { log: _l, progress: _p, ...rest } = o;
  const abs = (p: string): string => resolve(p);
  return {
    ...rest, out: abs(o.out), base: abs(o.base), checkpoints: o.checkpoints.map(abs), train: abs(o.train), queries: abs(o.queries),
    ...(o.labels ? { labels: abs(o.labels) } : {}), ...(o.artifactsDir ? { artifactsDir: abs(o.artifactsDir) } : {}), ...(o.indexes ? { indexes: o.indexes.map(abs) } : {}),
  };
}

/** The units of work of a run, in a fixed order: every (checkpoint, training block) pair. */
function units(run: AttributionRun): { cp: string; block: number }[] {
  return run.allCheckpoints.flatMap((cp) => run.trainBlocks(cp).map((b) => ({ cp: cp.id, block: b.index })));
}

/**
 * Computes shard `s` of an attribution: units (checkpoint, training block) u with u mod n = i get
 * their gradients (and their score block, for a row-separable scorer), then the manifest is
 * written. A shard whose manifest is there with the same inputs returns at once.
 *
 * @returns The manifest, and whether the shard had already finished.
 * @throws DdaError for bad inputs (as {@link runAttribute}), before any model work.
 */
export async function runShard(o: AttributeOptions, s: Shard): Promise<{ manifest: ShardManifest; skipped: boolean }> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  checkOutFolder(o.out);
  await checkMethod(o.method);
  const task = await loadTask(o);
  const truncation = describeTruncation(task.truncated);
  if (truncation) log(truncation);
  const options = storedOptions(o);
  const { indexed, options: fromIndexes } = indexRunOptions(task, { ...o, log });
  const inputs = shardInputs(task, options, indexed);
  const hash = hashOf(inputs);
  const path = shardManifestPath(o.out, s);
  if (existsSync(path)) {
    const m = readShardManifest<ShardManifest>(path);
    if (m.inputsHash === hash) {
      log(`shard ${s.index}/${s.count} finished earlier (${m.finishedAt}); nothing to do`);
      return { manifest: m, skipped: true };
    }
    log(`shard ${s.index}/${s.count}: the manifest there was made from other inputs; recomputing`);
  }
  const run = await AttributionRun.open(task, { ...o, ...fromIndexes, artifactsDir: o.artifactsDir ?? join(o.out, 'artifacts'), log });
  try {
    const scorer = await run.scorer(o.method.scorer);
    await checkRequirements(o.method, task, scorer, await run.measurement(), log);
    if (s.index === 0) {
      // warn early; stored for the merge
      await checkTrainingLoss(run, scorer.id, log);
      await checkQueryLoss(run, scorer.id, log);
    }
    const all = units(run);
    const mine = all.filter((_, u) => u % s.count === s.index);
    log(`shard ${s.index}/${s.count}: ${mine.length} of ${all.length} (checkpoint, block) units`);
    if (!isModelFree(scorer) && scorer.needs.includes('gradients')) {
      run.logGradientPath(scorer);
      for (const u of mine) {
        const cp = run.checkpoint(u.cp);
        const spec = run.trainBlocks(cp)[u.block];
        if (!spec) throw new DdaError(`internal: no block ${u.block} at ${u.cp}`);
        if (scorer.rowSeparable) await run.scoreBlock(scorer.id, cp, spec);
        else if (run.gradientPath(scorer) === 'streamed') await run.block(scorer.id, cp, spec, cp);
        else await run.trainGradientBlock(cp, spec);
      }
      if (run.gradientPath(scorer) === 'streamed' && (await run.gradientPasses(scorer.id, run.task.baseCheckpoint)) > 1) {
        log(`shard ${s.index}/${s.count}: '${scorer.id}' streams its gradients in fit passes then a score pass; this shard folded its blocks into the first fit pass (the running sum, or their own partials when out of order), and the merge does the other passes (the gradients computed again, on one machine)`);
      }
    } else {
      log(`scorer '${scorer.id}' is not scored block by block from gradients: the merge computes its scores`);
    }
    const manifest: ShardManifest = {
      format: 'dda-shard-v1', index: s.index, count: s.count, inputsHash: hash, options, inputs, train: trainFingerprint(task.train.samples, run.blockRows),
      units: mine.length, computed: run.computed.length, reused: run.reused.length, seconds: (Date.now() - t0) / 1000, finishedAt: new Date().toISOString(),
    };
    writeFileAtomic(path, `${JSON.stringify(manifest, null, 2)}\n`);
    log(`shard ${s.index}/${s.count} done: ${run.computed.length} artifacts computed, ${run.reused.length} reused`);
    return { manifest, skipped: false };
  } finally {
    await run.dispose();
  }
}

/** What every shard manifest holds, whatever was sharded (an attribution, a gradient index). */
export interface ShardRecord {
  readonly index: number;
  readonly count: number;
  /** Hash of every input and option that shapes the results; all shards of a run must agree. */
  readonly inputsHash: string;
}

/** What is wrong with a set of shard manifests: missing indices, and shards of another count or made from other inputs. */
export interface ShardCheck<M extends ShardRecord = ShardManifest> {
  readonly count: number;
  readonly missing: readonly number[];
  readonly mismatched: readonly M[];
  /** The manifests that agree with the reference inputs (those of the most shards; ties: the first read). */
  readonly manifests: readonly M[];
}

/** A manifest file as JSON. @throws DdaError naming the file when it is not JSON. */
export function readShardManifest<M extends ShardRecord>(path: string): M {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as M;
  } catch (e) {
    throw new DdaError(`cannot read the shard manifest ${path}: ${(e as Error).message}`, 'delete it and run that shard again');
  }
}

/**
 * Reads `<out>/shards/shard-<i>-of-<n>.json` and checks that shards 0..n-1 (n: the largest count
 * found) are all there and agree.
 *
 * @param read Reads (and checks) one manifest file.
 * @param howToRun What to run when there is no manifest at all, for the error.
 * @throws DdaError when there is no manifest at all, or `read` refuses one.
 */
export function checkShards<M extends ShardRecord = ShardManifest>(
  out: string, read: (path: string) => M = readShardManifest, howToRun = 'dda attribute ... --shard i/n, or dda slurm',
): ShardCheck<M> {
  const dir = join(out, 'shards');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /^shard-\d+-of-\d+\.json$/.test(f)) : [];
  if (files.length === 0) throw new DdaError(`no shard manifests in ${dir}`, `run the shards first (${howToRun})`);
  const manifests = files.map((f) => read(join(dir, f)));
  const counts = [...new Set(manifests.map((m) => m.count))];
  const count = Math.max(...counts);
  // The reference inputs: those of the most shards (ties: the first read).
  const tally = new Map<string, number>();
  for (const m of manifests.filter((x) => x.count === count)) tally.set(m.inputsHash, (tally.get(m.inputsHash) ?? 0) + 1);
  const reference = [...tally].sort((a, b) => b[1] - a[1])[0]?.[0] as string;
  const agrees = (m: M): boolean => m.count === count && m.inputsHash === reference;
  const ok = new Set(manifests.filter(agrees).map((m) => m.index));
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !ok.has(i) && !manifests.some((m) => m.index === i && m.count === count));
  const byIndex = (a: M, b: M): number => a.index - b.index || a.count - b.count;
  return { count, missing, mismatched: manifests.filter((m) => !agrees(m)).sort(byIndex), manifests: manifests.filter(agrees).sort(byIndex) };
}

/**
 * Refuses to merge an incomplete set of shards: names the missing ones and those made from other
 * inputs (with what differs, where `differs` says), and how to run only those again.
 *
 * @param rerun The commands that run shards `redo` of `count` again (after `sbatch --array=...`).
 * @param differs What a mismatched shard's inputs differ in from the agreeing ones' (first of them: `reference`).
 * @throws DdaError when any shard is missing or mismatched; returns otherwise.
 */
export function refuseIncompleteShards<M extends ShardRecord>(
  out: string, c: ShardCheck<M>, rerun: (redo: readonly number[], count: number) => string, differs?: (m: M, reference: M | undefined) => string,
): void {
  if (c.missing.length === 0 && c.mismatched.length === 0) return;
  const plural = (n: number): string => (n > 1 ? 's' : '');
  const why = (m: M): string => {
    const d = differs?.(m, c.manifests[0]);
    return d ? ` (${d})` : '';
  };
  const parts = [
    ...(c.missing.length ? [`missing shard${plural(c.missing.length)} ${c.missing.join(', ')} of ${c.count}`] : []),
    ...(c.mismatched.length && !differs ? [`shard${plural(c.mismatched.length)} ${c.mismatched.map((m) => m.index).join(', ')} made from other inputs`] : []),
    ...(differs ? c.mismatched.map((m) => `shard ${m.index}${m.count === c.count ? '' : ` of ${m.count}`} made from other inputs${why(m)}`) : []),
  ];
  const redo = [...new Set([...c.missing, ...c.mismatched.map((m) => m.index)])].filter((i) => i < c.count).sort((a, b) => a - b);
  throw new DdaError(`cannot merge ${out}: ${parts.join('; ')}`, `resubmit only those: sbatch --array=${redo.join(',')} (or ${rerun(redo, c.count)})`);
}

/** What a merge finds when it compares the inputs as they are now with those a shard recorded. */
interface ShardAgainstNow {
  readonly manifest: ShardManifest;
  /** Its work is what the inputs as they are now give: the same inputs, or only blocks and checkpoints it did not compute changed. */
  readonly valid: boolean;
  /** What changed since it ran (`path: then, now`), empty when nothing did. */
  readonly changed: readonly string[];
  /** Whether everything that changed is a training record or a checkpoint's files (work a shard can redo), not an option or another file. */
  readonly perUnit: boolean;
}

/** The training records and blocks that differ between a shard's fingerprint and now's, in words; and the changed block indices. */
function trainChanges(then: TrainFingerprint, now: TrainFingerprint, samples: readonly TextSample[], origin: (id: string) => string | undefined): { words: string; blocks: number[] } {
  const blocks = Array.from({ length: Math.max(then.blocks.length, now.blocks.length) }, (_, b) => b).filter((b) => then.blocks[b] !== now.blocks[b]);
  const rows = now.blockRows;
  const range = (b: number): string => `block ${b} (samples ${b * rows + 1}-${Math.min(samples.length, (b + 1) * rows)})`;
  const parts: string[] = [];
  if (then.records !== undefined && now.records !== undefined) {
    const n0 = then.records.length / 8;
    if (n0 === samples.length) {
      const changed = samples.map((x, i) => ({ x, i })).filter(({ i }) => then.records?.slice(8 * i, 8 * i + 8) !== now.records?.slice(8 * i, 8 * i + 8));
      const named = changed.slice(0, 5).map(({ x }) => { const w = origin(x.id); return `${x.id}${w ? ` (${w})` : ''}`; });
      parts.push(`record${changed.length > 1 ? 's' : ''} ${named.join(', ')}${changed.length > 5 ? ` and ${changed.length - 5} more` : ''} changed`);
    } else {
      parts.push(`${n0} training samples when the shards ran, ${samples.length} now`);
    }
  }
  if (blocks.length > 0) parts.push(`in training ${blocks.length > 8 ? `blocks ${blocks.slice(0, 8).join(', ')} and ${blocks.length - 8} more` : blocks.map(range).join(', ')} of ${rows} rows`);
  return { words: parts.join(', '), blocks };
}

/**
 * Compares the inputs as they are now (files hashed again, with the shards' options) with what
 * every shard recorded. A shard's work stays valid when its inputs are the same, or when only
 * training records or checkpoint files changed and none of its (checkpoint, block) units is among
 * them (its blocks are keyed by content, so the merge finds them as they were computed).
 */
async function shardsAgainstNow(c: ShardCheck): Promise<{ against: ShardAgainstNow[]; train: string; blocks: Set<number>; checkpoints: Set<string> }> {
  const ref = c.manifests[0] as ShardManifest;
  const task = await loadTask({ ...ref.options, log: () => {} });
  const options = ref.options;
  const now = shardInputs(task, options, indexRunOptions(task, options).indexed);
  const nowHash = hashOf(now);
  const fp = trainFingerprint(task.train.samples, blockRowsFor(task, options));
  const cps = ['base', ...task.checkpoints.map((x) => x.id)];
  const changedBlocks = new Set<number>();
  const changedCps = new Set<string>();
  let train = '';
  const against = [...c.manifests, ...c.mismatched].filter((m) => m.count === c.count).map((m): ShardAgainstNow => {
    if (m.inputsHash === nowHash) return { manifest: m, valid: true, changed: [], perUnit: true };
    if (!m.inputs) return { manifest: m, valid: false, changed: ['(this manifest, of an earlier version, does not record its inputs: what changed cannot be named)'], perUnit: false };
    const diffs = jsonDifferences(m.inputs, now);
    const changed = diffs.map((d) => `${d.path}: ${d.a}${d.entries ? ' entries' : ''} when shard ${m.index} ran, ${d.b} now`);
    const cpOf = (path: string): string | undefined => /^inputs\.checkpoints\.([^.]+)\./.exec(path)?.[1];
    const perUnit = diffs.every((d) => (d.path.startsWith('inputs.train.') && d.path !== 'inputs.train.file') || (cpOf(d.path) !== undefined && !d.entries));
    let blocks: number[] = [];
    if (diffs.some((d) => d.path.startsWith('inputs.train.'))) {
      if (m.train && m.train.blockRows === fp.blockRows) {
        const t = trainChanges(m.train, fp, task.train.samples, task.origin);
        blocks = t.blocks;
        train ||= t.words;
      } else {
        blocks = fp.blocks.map((_, b) => b); // which blocks changed is not recorded: all of them
      }
    }
    const cpsChanged = diffs.flatMap((d) => cpOf(d.path) ?? []);
    for (const b of blocks) changedBlocks.add(b);
    for (const x of cpsChanged) changedCps.add(x);
    const sameBlocks = m.train?.blocks.length === fp.blocks.length;
    const mine = unitsOf(m.index, m.count, cps.length, fp.blocks.length);
    const valid = perUnit && sameBlocks && !mine.some((u) => blocks.includes(u.block) || cpsChanged.includes(cps[u.cp] as string));
    return { manifest: m, valid, changed, perUnit };
  });
  return { against, train, blocks: changedBlocks, checkpoints: changedCps };
}

/**
 * Merges the shards in `out`: checks every shard finished with the same inputs, then compares
 * those with the inputs as they are now (a training file edited after the shards ran is refused,
 * naming the records and blocks that changed and the shards to run again) before computing
 * anything, then writes the outputs of the attribution (as `dda attribute` without shards would:
 * the stored blocks are reused, non-row-separable scores are computed here).
 *
 * @throws DdaError naming the missing and the mismatched shards, or what changed since the shards ran and which shards to run again.
 */
export async function mergeShards(out: string, extra: Pick<AttributeOptions, 'log' | 'progress' | 'command'> = {}): Promise<AttributeResult & { shards: number; computedAtMerge: readonly string[] }> {
  checkOutFolder(out);
  const log = extra.log ?? (() => {});
  const c = checkShards(out);
  const rerun = (redo: readonly number[], count: number): string => `dda slurm ... --only ${redo.join(',')}; or dda attribute ... --shard <i>/${count} for each`;
  const refuse = (): void => refuseIncompleteShards(out, c, rerun, (m, ref) => {
    if (m.count !== c.count) return `one of ${m.count} shards, the others of ${c.count}`;
    if (!ref?.inputs || !m.inputs) return '';
    return describeShardDifferences(ref.inputs, m.inputs, ref.index, `shard ${m.index}`).slice(0, 4).join('; ');
  });
  if (c.missing.length > 0 || c.mismatched.some((m) => m.count !== c.count)) refuse();
  const now = await shardsAgainstNow(c);
  const valid = new Set(now.against.filter((a) => a.valid).map((a) => a.manifest.index));
  if (valid.size < c.count) {
    // Shards that disagree in an option (not in a file that changed since) are named as before.
    if (now.against.some((a) => !a.perUnit && c.mismatched.includes(a.manifest))) refuse();
    const stale = now.against.filter((a) => !a.valid).map((a) => a.manifest);
    const redo = [...new Set(stale.map((m) => m.index))].sort((a, b) => a - b);
    const first = stale[0] as ShardManifest;
    const changed = now.against.find((a) => a.manifest === first)?.changed ?? [];
    const where: string[] = [];
    const train = changed.some((l) => l.startsWith('inputs.train.'));
    if (train) where.push(`--train ${first.options.train} changed since the shards ran${now.train ? `: ${now.train}` : ' (which records and blocks: not recorded by the earlier version that ran the shards)'}`);
    if (now.checkpoints.size > 0) where.push(`the files of checkpoint${now.checkpoints.size > 1 ? 's' : ''} ${[...now.checkpoints].join(', ')} changed since the shards ran`);
    const other = changed.filter((l) => !l.startsWith('inputs.train.') && !/^inputs\.checkpoints\.[^.]+\./.test(l));
    if (other.length > 0) where.push(`${other.slice(0, 4).join('; ')}${other.length > 4 ? `; and ${other.length - 4} more` : ''}`);
    const all = stale.length === c.count;
    const perUnit = now.against.every((a) => a.perUnit);
    throw new DdaError(
      `cannot merge ${out}: the inputs are not those the shards ran with (${where.join('; ')}); the work of shard${redo.length > 1 ? 's' : ''} ${redo.join(', ')} of ${c.count} is of the old inputs`,
      perUnit && !all
        ? `restore the inputs as the shards had them and merge again; or run again the shards whose blocks changed (dda slurm ... --only ${redo.join(',')}; or ${redo.map((i) => `dda attribute ... --shard ${i}/${c.count}`).join(', ')}), or all of them, then merge: the other shards' blocks have not changed and are used as they are`
        : `restore the inputs as the shards had them and merge again; or run every shard again (dda slurm ..., or dda attribute ... --shard <i>/${c.count} for each), then merge`,
    );
  }
  for (const a of now.against.filter((x) => x.valid && x.changed.length > 0)) {
    log(`merge: shard ${a.manifest.index} ran before ${now.train ? 'the training file' : 'checkpoint files'} changed; none of its (checkpoint, block) units is among those that changed, so its work is used as it is`);
  }
  const first = c.manifests[0] as ShardManifest;
  const r = await runAttribute({ ...first.options, ...extra });
  // Only a scorer with a streamed fit streams its gradients in several passes: the shards fold their blocks into the first, the merge does the others.
  await ensurePlugins();
  const id = first.options.method.scorer;
  const scorer = await scorers.create(id, first.options.scorerOptions?.[id] ?? {});
  const gradientsAtMerge = [...new Set(r.computed.filter((n) => n.startsWith('gradients/') && n.includes('/train/')))];
  if (gradientsAtMerge.length > 0 && !isModelFree(scorer) && scorer.streamedFit !== undefined && !scorer.rowSeparable && !scorer.blockSummaries) {
    const listed = gradientsAtMerge.length > 6 ? `${gradientsAtMerge.slice(0, 6).join(', ')} and ${gradientsAtMerge.length - 6} more` : gradientsAtMerge.join(', ');
    log(`merge: '${id}' streams its training gradients in several passes; the shards did the first, the merge did the others on one machine (by design), computing the gradients of ${gradientsAtMerge.length} blocks again (${listed})`);
  }
  return { ...r, shards: c.count, computedAtMerge: r.computed };
}

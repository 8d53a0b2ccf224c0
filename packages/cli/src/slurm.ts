/**
 * `dda slurm`: submits a sharded attribution to SLURM, the scheduler of the research clusters that
 * run attribution: a job array of `dda attribute ... --shards n` (SLURM gives each task its index in
 * SLURM_ARRAY_TASK_ID) and a merge job that runs after every task has ended, whether it succeeded
 * or not (`--dependency=afterany`: a killed task is not retried by SLURM, and an `afterok` merge would
 * wait forever), so that `dda merge` reports the shards to resubmit.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DdaError } from '@dda/core';
import { writeFileAtomic } from '@dda/attribution';

/** Resources and placement of the array's tasks (`sbatch` options). */
export interface SlurmResources {
  readonly cpusPerTask?: number;
  /** Memory per task, as sbatch takes it (e.g. `8G`). */
  readonly mem?: string;
  /** GPUs per task (`--gres=gpu:N`). */
  readonly gpus?: number;
  /** Time limit per task (e.g. `02:00:00`). */
  readonly time?: string;
  readonly partition?: string;
  readonly account?: string;
  /** More `#SBATCH` lines, e.g. `--constraint=a100`. */
  readonly extra?: readonly string[];
}

/** What to submit. */
export interface SlurmPlan {
  /** The `dda attribute` arguments (without any --shard / --shards). */
  readonly attributeArgs: readonly string[];
  readonly out: string;
  readonly shards: number;
  /** Only these shard indices (a resubmission); default every index 0..shards-1. */
  readonly only?: readonly number[];
  /** At most this many array tasks running at once (sbatch's `--array=...%k`). */
  readonly maxRunning?: number;
  readonly resources: SlurmResources;
  /** Plugins the tasks and the merge load (`--plugin` values; paths absolute). DDA_PLUGINS reaches them through sbatch's environment. */
  readonly plugins?: readonly string[];
}

/** `s` as one word of a POSIX shell command line (single-quoted when it needs to be). */
export const quote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The dda entry point this CLI runs from (the committed bin shim), absolute. */
function ddaBin(): string {
  return fileURLToPath(new URL('../bin/dda.js', import.meta.url));
}

/** `#SBATCH` lines of the resources. */
function resourceLines(r: SlurmResources): string[] {
  return [
    ...(r.cpusPerTask ? [`#SBATCH --cpus-per-task=${r.cpusPerTask}`] : []),
    ...(r.mem ? [`#SBATCH --mem=${r.mem}`] : []),
    ...(r.gpus ? [`#SBATCH --gres=gpu:${r.gpus}`] : []),
    ...(r.time ? [`#SBATCH --time=${r.time}`] : []),
    ...(r.partition ? [`#SBATCH --partition=${r.partition}`] : []),
    ...(r.account ? [`#SBATCH --account=${r.account}`] : []),
    ...(r.extra ?? []).map((e) => `#SBATCH ${e}`),
  ];
}

/**
 * The two sbatch scripts: the array (`attribute.sbatch`) and the merge (`merge.sbatch`). Every
 * task runs in the current folder with this machine's Node.js and dda installation, so the cluster's
 * nodes must share the file system (as SLURM clusters do).
 */
export function sbatchScripts(p: SlurmPlan): { array: string; merge: string } {
  if (!Number.isInteger(p.shards) || p.shards < 1) throw new DdaError(`--shards must be a positive integer, got ${p.shards}`);
  const only = p.only ?? Array.from({ length: p.shards }, (_, i) => i);
  for (const i of only) if (!Number.isInteger(i) || i < 0 || i >= p.shards) throw new DdaError(`--only ${i}: shard indices are 0..${p.shards - 1}`);
  const out = resolve(p.out);
  const logs = join(out, 'slurm');
  const node = quote(process.execPath);
  const bin = quote(ddaBin());
  const cwd = quote(process.cwd());
  const plugins = (p.plugins ?? []).flatMap((x) => ['--plugin', quote(x)]).map((x) => ` ${x}`).join('');
  const array = [
    '#!/bin/bash',
    '#SBATCH --job-name=dda-attribute',
    `#SBATCH --array=${only.length === p.shards ? `0-${p.shards - 1}` : only.join(',')}${p.maxRunning ? `%${p.maxRunning}` : ''}`,
    `#SBATCH --output=${logs}/attribute-%A_%a.log`,
    ...resourceLines(p.resources),
    'set -euo pipefail',
    `cd ${cwd}`,
    `exec ${node} ${bin} attribute ${p.attributeArgs.map(quote).join(' ')} --out ${quote(out)} --shards ${p.shards}${plugins}`,
    '',
  ].join('\n');
  const merge = [
    '#!/bin/bash',
    '#SBATCH --job-name=dda-merge',
    `#SBATCH --output=${logs}/merge-%j.log`,
    ...resourceLines({ ...p.resources, gpus: 0 }),
    'set -euo pipefail',
    `cd ${cwd}`,
    `exec ${node} ${bin} merge --out ${quote(out)}${plugins}`,
    '',
  ].join('\n');
  return { array, merge };
}

/** Job ids of a submission. */
export interface SlurmSubmission {
  readonly arrayJob: string;
  readonly mergeJob: string;
  readonly scripts: { readonly array: string; readonly merge: string };
}

/**
 * Writes the scripts into `<out>/slurm/` and submits them with `sbatch --parsable` (the merge with
 * `--dependency=afterany:<array job>`). With `dryRun`, writes them only.
 *
 * @throws DdaError when sbatch is not installed or refuses a script (its message).
 */
export function submitToSlurm(p: SlurmPlan, dryRun = false): SlurmSubmission | { readonly scripts: { readonly array: string; readonly merge: string } } {
  const { array, merge } = sbatchScripts(p);
  const dir = join(resolve(p.out), 'slurm');
  mkdirSync(dir, { recursive: true });
  const scripts = { array: join(dir, 'attribute.sbatch'), merge: join(dir, 'merge.sbatch') };
  writeFileAtomic(scripts.array, array);
  writeFileAtomic(scripts.merge, merge);
  if (dryRun) return { scripts };
  const sbatch = (args: string[]): string => {
    try {
      return execFileSync('sbatch', ['--parsable', ...args], { encoding: 'utf8' }).trim().split(';')[0] as string;
    } catch (e) {
      const err = e as { code?: string; stderr?: string; message: string };
      if (err.code === 'ENOENT') throw new DdaError('sbatch not found: this machine is not a SLURM submit host', 'run dda slurm where sbatch works, or use --dry-run to write the scripts');
      throw new DdaError(`sbatch refused the job: ${(err.stderr ?? err.message).trim()}`, 'check the resources (--partition, --mem, --time) against the cluster');
    }
  };
  const arrayJob = sbatch([scripts.array]);
  const mergeJob = sbatch([`--dependency=afterany:${arrayJob}`, scripts.merge]);
  return { arrayJob, mergeJob, scripts };
}

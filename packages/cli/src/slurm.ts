/**
 * `dda slurm` and `dda index slurm`: submit a sharded command to SLURM, the scheduler of the research
 * clusters that run attribution: a job array of `dda attribute ... --shards n` or `dda index build
 * ... --shards n` (SLURM gives each task its index in SLURM_ARRAY_TASK_ID) and a merge job that runs
 * after every task has ended, whether it succeeded or not (`--dependency=afterany`: a killed task is
 * not retried by SLURM, and an `afterok` merge would wait forever), so that the merge reports the
 * shards to resubmit. Also the `--shard` / `--shards` options both sharded commands take.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { DdaError, isPathSpecifier } from '@dda/core';
import { writeFileAtomic } from '@dda/attribution';

/** Adds `--shard` and `--shards` (read by `resolveShard`): which shard of a sharded command this process computes. */
export function shardOptions<T>(y: Argv<T>) {
  return y
    .option('shard', { type: 'string', describe: 'compute shard i of n (0-based, e.g. 0/4); with --shards n, the index i alone; or `slurm`: index and count from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT' })
    .option('shards', { type: 'number', describe: 'number of shards n; the index comes from --shard, SLURM_ARRAY_TASK_ID or Kubernetes\' JOB_COMPLETION_INDEX' });
}

/** Adds the options of a submission: the shard count, which shards, and each task's resources (`sbatch` options). */
export function slurmOptions<T>(y: Argv<T>) {
  return y
    .option('shards', { type: 'number', demandOption: true, describe: 'number of shards = array tasks' })
    .option('only', { type: 'number', array: true, describe: 'submit only these shard indices (to resubmit the ones the merge names)' })
    .option('max-running', { type: 'number', describe: 'at most this many array tasks at once (sbatch --array=...%k)' })
    .option('cpus-per-task', { type: 'number', describe: 'sbatch --cpus-per-task' })
    .option('mem', { type: 'string', describe: 'sbatch --mem per task, e.g. 16G' })
    .option('gpus', { type: 'number', describe: 'GPUs per task (sbatch --gres=gpu:N)' })
    .option('time', { type: 'string', describe: 'sbatch --time per task, e.g. 04:00:00' })
    .option('partition', { type: 'string', describe: 'sbatch --partition' })
    .option('account', { type: 'string', describe: 'sbatch --account' })
    .option('sbatch', { type: 'string', array: true, describe: 'more #SBATCH options, e.g. --sbatch=--constraint=a100' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'write the sbatch scripts into <out>/slurm/ without submitting' });
}

/** The parsed options of {@link slurmOptions}, with the output folder and the global `--plugin`. */
export interface SlurmArgs {
  out: string; shards: number; only?: number[] | undefined; 'max-running'?: number | undefined; 'cpus-per-task'?: number | undefined; mem?: string | undefined;
  gpus?: number | undefined; time?: string | undefined; partition?: string | undefined; account?: string | undefined; sbatch?: (string | number)[] | undefined;
  'dry-run': boolean; plugin?: (string | number)[] | undefined;
}

/**
 * The command line of parsed options: `--flag value...` for each of `flags` that is set (true
 * booleans as `--flag`), the values of `paths` made absolute (the tasks may run elsewhere).
 */
export function commandArgv(a: object, flags: readonly string[], paths: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const f of flags) {
    const v = (a as Record<string, unknown>)[f];
    if (v === undefined || v === false) continue;
    if (v === true) {
      out.push(`--${f}`);
      continue;
    }
    const values = (Array.isArray(v) ? v : [v]).map((x) => (paths.has(f) ? resolve(String(x)) : String(x)));
    if (values.length > 0) out.push(`--${f}`, ...values);
  }
  return out;
}

/**
 * Writes the scripts of `command` sharded as `a` says and submits them (or only writes them, with
 * `--dry-run`), printing the job ids and the scripts' paths with `print`.
 *
 * @throws DdaError as {@link submitToSlurm}.
 */
export function submitSharded(a: SlurmArgs, command: ShardedCommand, print: (line: string) => void): void {
  const plan: SlurmPlan = {
    command, out: a.out, shards: a.shards,
    plugins: (a.plugin ?? []).map(String).map((x) => (isPathSpecifier(x) && !x.startsWith('file:') ? resolve(x) : x)), ...(a.only ? { only: a.only } : {}), ...(a['max-running'] ? { maxRunning: a['max-running'] } : {}),
    resources: {
      ...(a['cpus-per-task'] ? { cpusPerTask: a['cpus-per-task'] } : {}), ...(a.mem ? { mem: a.mem } : {}), ...(a.gpus ? { gpus: a.gpus } : {}),
      ...(a.time ? { time: a.time } : {}), ...(a.partition ? { partition: a.partition } : {}), ...(a.account ? { account: a.account } : {}),
      ...(a.sbatch ? { extra: a.sbatch.map(String) } : {}),
    },
  };
  const r = submitToSlurm(plan, a['dry-run']);
  if ('arrayJob' in r) print(`submitted: array job ${r.arrayJob} (${a.only ? `shards ${a.only.join(', ')}` : `${a.shards} shards`}), merge job ${r.mergeJob} (afterany); logs in ${join(a.out, 'slurm')}`);
  print(`scripts: ${r.scripts.array}, ${r.scripts.merge}`);
}

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

/** What the array's tasks and the merge job run. */
export interface ShardedCommand {
  /** The dda command and its arguments, without --out and sharding: `['attribute', ...]` or `['index', 'build', ...]`. */
  readonly args: readonly string[];
  /** The merge command, followed by the output folder: `['merge', '--out']` or `['index', 'merge', '--index']`. */
  readonly merge: readonly string[];
  /** Name of the array's script, jobs and logs: `attribute` gives `attribute.sbatch`, the job `dda-attribute` and `attribute-<job>_<task>.log`. */
  readonly name: string;
}

/** What to submit. */
export interface SlurmPlan {
  readonly command: ShardedCommand;
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
 * The two sbatch scripts: the array (`<name>.sbatch`) and the merge (`merge.sbatch`). Every
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
    `#SBATCH --job-name=dda-${p.command.name}`,
    `#SBATCH --array=${only.length === p.shards ? `0-${p.shards - 1}` : only.join(',')}${p.maxRunning ? `%${p.maxRunning}` : ''}`,
    `#SBATCH --output=${logs}/${p.command.name}-%A_%a.log`,
    ...resourceLines(p.resources),
    'set -euo pipefail',
    `cd ${cwd}`,
    `exec ${node} ${bin} ${p.command.args.map(quote).join(' ')} --out ${quote(out)} --shards ${p.shards}${plugins}`,
    '',
  ].join('\n');
  const merge = [
    '#!/bin/bash',
    '#SBATCH --job-name=dda-merge',
    `#SBATCH --output=${logs}/merge-%j.log`,
    ...resourceLines({ ...p.resources, gpus: 0 }),
    'set -euo pipefail',
    `cd ${cwd}`,
    `exec ${node} ${bin} ${p.command.merge.map(quote).join(' ')} ${quote(out)}${plugins}`,
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
 * @throws DdaError when `out` is a file, and when sbatch is not installed or refuses a script (its message).
 */
export function submitToSlurm(p: SlurmPlan, dryRun = false): SlurmSubmission | { readonly scripts: { readonly array: string; readonly merge: string } } {
  const { array, merge } = sbatchScripts(p);
  const dir = join(resolve(p.out), 'slurm');
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    // A file where a folder goes: --out itself, or a folder above it.
    if ((e as { code?: string }).code !== 'EEXIST' && (e as { code?: string }).code !== 'ENOTDIR') throw e;
    const isFile = existsSync(p.out) && !statSync(p.out).isDirectory();
    throw new DdaError(isFile ? `--out ${p.out} is a file; give a folder` : `--out ${p.out}: a file lies on the way to ${dir}; give a folder`, 'name a new folder (it is made) or an existing one');
  }
  const scripts = { array: join(dir, `${p.command.name}.sbatch`), merge: join(dir, 'merge.sbatch') };
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

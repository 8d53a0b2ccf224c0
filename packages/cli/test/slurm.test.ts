import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attributionOutputs as outputs, run as cli } from './run-cli.js';
import { makeUserRun, type UserRun } from '../../attribution/test/fixtures/user-run.js';

// Runs on a real SLURM cluster: .ci/run starts a one-node cluster (scripts/start-slurm.sh) before
// the tests; on a machine without one, start it the same way (as root).
const sh = (cmd: string, a: string[]): string => execFileSync(cmd, a, { encoding: 'utf8' });
function clusterUp(): string | null {
  try {
    return /idle|mixed|alloc/.test(sh('sinfo', ['-h', '-o', '%T'])) ? null : 'sinfo shows no usable node';
  } catch (e) {
    return (e as Error).message;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'dda-slurm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let u: UserRun;
const args = (): string[] => ['--base', u.base, '--checkpoints', u.run, '--train', u.train, '--queries', u.queries, '--block-rows', '16'];

/** Job ids of `dda slurm`'s output line "submitted: array job A (...), merge job M (afterany)". */
const jobs = (out: string): { array: string; merge: string } => {
  const m = /array job (\d+).*merge job (\d+)/.exec(out);
  if (!m) throw new Error(`no job ids in: ${out}`);
  return { array: m[1]!, merge: m[2]! };
};
async function waitGone(job: string, ms = 300_000): Promise<void> {
  const t0 = Date.now();
  while (sh('squeue', ['-h', '-j', job, '-o', '%i']).trim() !== '') {
    if (Date.now() - t0 > ms) throw new Error(`job ${job} still queued after ${ms / 1000} s: ${sh('squeue', ['-a'])}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
const log = (out: string, pattern: RegExp): string => {
  const d = join(out, 'slurm');
  return readdirSync(d).filter((f) => pattern.test(f)).map((f) => readFileSync(join(d, f), 'utf8')).join('\n');
};

let reference: Record<string, string>;
beforeAll(async () => {
  const why = clusterUp();
  if (why) throw new Error(`no SLURM cluster here (${why}): start one with \`bash scripts/start-slurm.sh\` as root (apt-get install -y --no-install-recommends slurm-wlm munge first)`);
  // 400 training samples: each shard has a few seconds of work, enough to be killed mid-run.
  u = makeUserRun(join(dir, 'user'), 400);
  const r = await cli(['attribute', ...args(), '--out', join(dir, 'single')]);
  expect(r.code, r.err).toBe(0);
  reference = outputs(join(dir, 'single'));
});

describe('dda slurm on a one-node SLURM cluster', () => {
  it('a 4-shard job array and its afterany merge give the one-machine outputs bit for bit', async () => {
    const out = join(dir, 'run4');
    const r = await cli(['slurm', ...args(), '--out', out, '--shards', '4', '--cpus-per-task', '1', '--mem', '1G', '--time', '00:10:00']);
    expect(r.code, r.err).toBe(0);
    const j = jobs(r.out);
    const script = readFileSync(join(out, 'slurm', 'attribute.sbatch'), 'utf8');
    expect(script).toMatch(/#SBATCH --array=0-3\n/);
    expect(script).toMatch(/#SBATCH --cpus-per-task=1\n#SBATCH --mem=1G\n#SBATCH --time=00:10:00/);
    await waitGone(j.merge);
    expect(log(out, /^merge-/), log(out, /^attribute-/)).toMatch(/merged 4 shards/);
    for (let i = 0; i < 4; i++) expect(existsSync(join(out, 'shards', `shard-${i}-of-4.json`))).toBe(true);
    expect(outputs(out)).toEqual(reference);
  }, 600_000);

  it('a shard killed mid-run is named by the merge, resubmitted alone, and the result is the same', async () => {
    const out = join(dir, 'killed');
    // One task at a time, so that shard 2 can be caught while it runs.
    const r = await cli(['slurm', ...args(), '--out', out, '--shards', '4', '--max-running', '1']);
    expect(r.code, r.err).toBe(0);
    const j = jobs(r.out);
    const t0 = Date.now();
    // Cancelled as soon as SLURM has started it (its log file exists): the process then still has to
    // start Node, load the plugins, the task and the model (seconds), so it cannot have finished. (Waiting
    // for its first log line instead raced with the shard's end on an idle machine.)
    while (!(existsSync(join(out, 'slurm')) && existsSync(join(out, 'slurm', `attribute-${j.array}_2.log`)))) {
      if (Date.now() - t0 > 240_000) throw new Error(`shard 2 never started: ${sh('squeue', ['-a'])}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    sh('scancel', [`${j.array}_2`]);
    await waitGone(j.merge);
    expect(existsSync(join(out, 'shards', 'shard-2-of-4.json')), 'shard 2 finished before it could be killed').toBe(false);
    const merge = log(out, /^merge-/);
    expect(merge).toMatch(/missing shard 2 of 4/);
    expect(merge).toMatch(/--only 2/);
    // Resubmit shard 2 alone: it reuses the blocks it had finished before the kill.
    const again = await cli(['slurm', ...args(), '--out', out, '--shards', '4', '--only', '2']);
    expect(again.code, again.err).toBe(0);
    expect(readFileSync(join(out, 'slurm', 'attribute.sbatch'), 'utf8')).toMatch(/#SBATCH --array=2\n/);
    await waitGone(jobs(again.out).merge);
    expect(log(out, /^merge-/)).toMatch(/merged 4 shards/);
    expect(outputs(out)).toEqual(reference);
  }, 600_000);

  it('dda index slurm: a 3-shard job array and its afterany dda index merge give the unsharded index byte for byte', async () => {
    const idx = ['--base', u.base, '--checkpoints', u.run, '--checkpoint', 'checkpoint-50', '--train', u.train, '--dim', '256', '--block-rows', '64', '--quiet'];
    const one = join(dir, 'index-one');
    expect((await cli(['index', 'build', ...idx, '--out', one])).code).toBe(0);
    const out = join(dir, 'index-sharded');
    const r = await cli(['index', 'slurm', ...idx, '--out', out, '--shards', '3', '--mem', '1G']);
    expect(r.code, r.err).toBe(0);
    await waitGone(jobs(r.out).merge);
    expect(log(out, /^merge-/), log(out, /^index-/)).toMatch(/merged 3 shards/);
    for (const f of ['gradients.f16', 'index.json']) expect(readFileSync(join(out, f)).equals(readFileSync(join(one, f))), f).toBe(true);
    expect(existsSync(join(out, 'shards'))).toBe(false);
  }, 600_000);
});

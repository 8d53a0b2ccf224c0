import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeUserRun, type UserRun } from '../../attribution/test/fixtures/user-run.js';
import { run as cli } from './run-cli.js';

// `dda index build` and `dda index query` on the tiny user run (8 training samples, 2 queries that
// are training samples t0 and t3).
let dir: string;
let u: UserRun;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dda-index-cli-'));
  u = makeUserRun(join(dir, 'user'), 8, 2);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dda index', () => {
  it('builds an index at a checkpoint, then answers queries from the recorded model paths, writing and printing the top-k', async () => {
    const out = join(dir, 'idx');
    const b = await cli(['index', 'build', '--base', u.base, '--checkpoints', u.run, '--checkpoint', 'checkpoint-50', '--train', u.train, '--out', out, '--dim', '512', '--block-rows', '3', '--quiet']);
    expect(b.err).toBe('');
    expect(b.code).toBe(0);
    expect(b.out).toContain(`index ${out}: 8 training samples × 512 float16 at checkpoint-50 (1024 bytes per sample`);
    expect(b.out).toContain('np.fromfile("gradients.f16", dtype=np.float16).reshape(8, 512)');
    const h = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
    expect(h).toMatchObject({ count: 8, dim: 512, dtype: 'float16', checkpoint: { id: 'checkpoint-50' }, projection: { kind: 'rademacher', seed: 0 } });
    expect(existsSync(join(out, 'progress.json'))).toBe(false);
    const qOut = join(dir, 'q');
    const q = await cli(['index', 'query', '--index', out, '--queries', u.queries, '--top-k', '3', '--normalize', '--out', qOut, '--quiet']);
    expect(q.err).toBe('');
    expect(q.code).toBe(0);
    expect(q.out).toMatch(/Index query: 2 queries × 8 training samples at checkpoint-50/);
    expect(q.out).toMatch(/ {2}q0 \(b\): t0 1\.00, t\d+ [-\d.e]+, t\d+ [-\d.e]+/);
    expect(q.out).toMatch(/ {2}q1 \(a\): t3 1\.00, /);
    const lines = readFileSync(join(qOut, 'topk.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.top.length)).toEqual([3, 3]);
    expect(lines[0].top[0]).toMatchObject({ rank: 1, train_id: 't0', where: expect.stringMatching(/train\.jsonl:1$/) });
    expect(readFileSync(join(qOut, 'topk.csv'), 'utf8').split('\n')[0]).toBe('query_id,group,rank,train_id,score,true_source,train_where,train_prompt,train_response');
  }, 300_000);

  it('refuses a query against another checkpoint than the index\'s, naming the difference (exit 1)', async () => {
    const other = join(dir, 'other', 'checkpoint-50');
    cpSync(join(u.run, 'checkpoint-100'), other, { recursive: true });
    const r = await cli(['index', 'query', '--index', join(dir, 'idx'), '--queries', u.queries, '--checkpoints', other, '--out', join(dir, 'q2'), '--quiet']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/built with another model or checkpoint than the one given \(checkpoint\.hash\.adapter_model\.safetensors: index "[0-9a-f]+", given "[0-9a-f]+"/);
    const s = await cli(['index', 'query', '--index', join(dir, 'idx'), '--queries', u.queries, '--seed', '4', '--quiet']);
    expect(s.code).toBe(1);
    expect(s.err).toContain('projected otherwise than asked (seed: index 0, given 4)');
  }, 300_000);

  it('runs DDA over indexes given with several --index flags (one at base), and refuses DDA flags with one', async () => {
    const idx = (cp: string): string => join(dir, `dda-${cp}`);
    for (const cp of ['base', 'checkpoint-50', 'checkpoint-100']) {
      const b = await cli(['index', 'build', '--base', u.base, '--checkpoints', u.run, '--checkpoint', cp, '--train', u.train, '--out', idx(cp), '--dim', '256', '--quiet']);
      expect(b.code, b.err).toBe(0);
    }
    const out = join(dir, 'dda-q');
    const q = await cli(['index', 'query', '--index', idx('base'), '--index', idx('checkpoint-50'), '--index', idx('checkpoint-100'), '--queries', u.queries, '--debias', 'raw', '--denoise', 'mean', '--top-k', '2', '--out', out, '--quiet']);
    expect(q.err).toBe('');
    expect(q.code).toBe(0);
    expect(q.out).toMatch(/Index DDA: 2 queries × 8 training samples over base and checkpoint-50, checkpoint-100, [\d.]+ s; scores: grad-dot; /);
    const summary = JSON.parse(readFileSync(join(out, 'query.json'), 'utf8'));
    expect(summary).toMatchObject({ checkpoints: ['checkpoint-50', 'checkpoint-100'], dda: { debias: 'raw', denoise: 'mean', beta: 1 } });
    const one = await cli(['index', 'query', '--index', idx('base'), '--queries', u.queries, '--denoise', 'mean', '--quiet']);
    expect(one.code).toBe(1);
    expect(one.err).toContain("--denoise is DDA's, over several indexes; one --index was given");
  }, 300_000);

  it('asks for a subcommand', async () => {
    const r = await cli(['index']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('name a subcommand: dda index build, query, merge or slurm');
  });
});

describe('dda index build in shards', () => {
  // The options of the first test's unsharded index (8 samples in blocks of 3: 3 blocks).
  const buildArgs = (): string[] => ['--base', u.base, '--checkpoints', u.run, '--checkpoint', 'checkpoint-50', '--train', u.train, '--dim', '512', '--block-rows', '3', '--quiet'];
  const files = (out: string): Record<string, string> => Object.fromEntries(readdirSync(out).sort().map((f) => [f, readFileSync(join(out, f)).toString('base64')]));

  it('--shards 2 --shard 0 and --shards 2 with JOB_COMPLETION_INDEX, then dda index merge, give the unsharded index byte for byte; the merge names a missing shard', async () => {
    const out = join(dir, 'sharded');
    const s0 = await cli(['index', 'build', ...buildArgs(), '--out', out, '--shards', '2', '--shard', '0']);
    expect(s0.err).toBe('');
    expect(s0.out).toContain('index shard 0/2 done: rows 0 to 2 of 8\nnot finished yet: shard 1 of 2');
    const missing = await cli(['index', 'merge', '--index', out, '--quiet']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/cannot merge .*: missing shard 1 of 2.*sbatch --array=1/);
    process.env.JOB_COMPLETION_INDEX = '1';
    try {
      const s1 = await cli(['index', 'build', ...buildArgs(), '--out', out, '--shards', '2']);
      expect(s1.err).toBe('');
      expect(s1.out).toContain(`index shard 1/2 done: rows 3 to 7 of 8\nevery shard has finished: dda index merge --index ${out}`);
    } finally {
      delete process.env.JOB_COMPLETION_INDEX;
    }
    const m = await cli(['index', 'merge', '--index', out, '--quiet']);
    expect(m.err).toBe('');
    expect(m.out).toContain(`index ${out}: merged 2 shards: 8 training samples × 512 float16 at checkpoint-50`);
    expect(files(out)).toEqual(files(join(dir, 'idx')));
  }, 300_000);

  it('dda index slurm writes a job array of dda index build --shards n and a dda index merge job; run as SLURM runs them, they give the unsharded index', async () => {
    const out = join(dir, 'slurm');
    const r = await cli(['index', 'slurm', ...buildArgs(), '--out', out, '--shards', '2', '--mem', '1G', '--dry-run']);
    expect(r.code, r.err).toBe(0);
    const array = readFileSync(join(out, 'slurm', 'index.sbatch'), 'utf8');
    expect(array).toMatch(/#SBATCH --job-name=dda-index\n#SBATCH --array=0-1\n#SBATCH --output=.*\/slurm\/index-%A_%a\.log\n#SBATCH --mem=1G\n/);
    expect(array).toMatch(new RegExp(` index build --base ${u.base} .*--checkpoint checkpoint-50 .*--dim 512 .*--block-rows 3 .*--out ${out} --shards 2\n`));
    const merge = readFileSync(join(out, 'slurm', 'merge.sbatch'), 'utf8');
    expect(merge).toContain(` index merge --index ${out}\n`);
    // Each array task as SLURM starts it (bash with SLURM_ARRAY_TASK_ID), then the merge job.
    const bash = (script: string, env: Record<string, string> = {}): Promise<{ stdout: string }> => promisify(execFile)('bash', [join(out, 'slurm', script)], { env: { ...process.env, ...env } });
    for (const i of [0, 1]) expect((await bash('index.sbatch', { SLURM_ARRAY_TASK_ID: String(i) })).stdout).toContain(`index shard ${i}/2 done`);
    expect((await bash('merge.sbatch')).stdout).toContain('merged 2 shards');
    expect(readdirSync(out).sort()).toEqual(['gradients.f16', 'index.json', 'slurm']);
    rmSync(join(out, 'slurm'), { recursive: true });
    expect(files(out)).toEqual(files(join(dir, 'idx')));
  }, 300_000);
});

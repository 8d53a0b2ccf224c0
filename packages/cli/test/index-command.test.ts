import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_INDEX_BLOCK_ROWS, indexShardRows } from '@dda/attribution';
import { DEFAULT_EXPERIMENT } from '@dda/experiment';
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
    expect(b.out).toContain('np.memmap("gradients.f16", dtype=np.float16, mode="r", shape=(8, 512))');
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
    expect(r.err).toMatch(/built with another model or checkpoint than those of this query, given with --base \/ --checkpoints \(checkpoint\.hash\.adapter_model\.safetensors: index "[0-9a-f]+", given "[0-9a-f]+"/);
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

  it('DDA over indexes built from other --checkpoints names the index and the checkpoints folder it records, not a --checkpoint flag', async () => {
    // θ0 built from the final checkpoint's folder alone (the same θ0), checkpoint-50's from the whole run.
    const base = join(dir, 'dda-base-one-folder');
    const b = await cli(['index', 'build', '--base', u.base, '--checkpoints', join(u.run, 'checkpoint-100'), '--checkpoint', 'base', '--train', u.train, '--out', base, '--dim', '256', '--quiet']);
    expect(b.code, b.err).toBe(0);
    const q = await cli(['index', 'query', '--index', base, '--index', join(dir, 'dda-checkpoint-50'), '--queries', u.queries, '--out', join(dir, 'dda-q-mixed'), '--quiet']);
    expect(q.code).toBe(1);
    expect(q.err).toContain(`the index ${join(dir, 'dda-checkpoint-50')} is at checkpoint-50 of the checkpoints ${u.run} (as its index.json records)`);
    expect(q.err).toContain(`the checkpoints the index ${base} records (${join(u.run, 'checkpoint-100')}): checkpoint-100`);
    expect(q.err).toContain('build every index of one DDA from the same run');
    expect(q.err).not.toContain('--checkpoint checkpoint-50');
  }, 300_000);

  it('says which index.json recorded a base or checkpoints folder that has moved, and that --base / --checkpoints give the new place', async () => {
    const was = join(dir, 'moving');
    cpSync(u.base, join(was, 'base'), { recursive: true });
    cpSync(u.run, join(was, 'run'), { recursive: true });
    const out = join(dir, 'idx-moved');
    const b = await cli(['index', 'build', '--base', join(was, 'base'), '--checkpoints', join(was, 'run'), '--checkpoint', 'checkpoint-50', '--train', u.train, '--out', out, '--dim', '256', '--quiet']);
    expect(b.code, b.err).toBe(0);
    const now = join(dir, 'moved');
    renameSync(was, now);
    const query = (more: string[]): ReturnType<typeof cli> => cli(['index', 'query', '--index', out, '--queries', u.queries, '--out', join(dir, 'q-moved'), ...more, '--quiet']);
    const noBase = await query([]);
    expect(noBase.code).toBe(1);
    expect(noBase.err).toContain(`${join(was, 'base')}: no such folder: the base model folder ${join(out, 'index.json')} records`);
    expect(noBase.err).toContain('give --base with its new place');
    const noRun = await query(['--base', join(now, 'base')]);
    expect(noRun.code).toBe(1);
    expect(noRun.err).toContain(`${join(was, 'run')}: no such folder: a checkpoints folder ${join(out, 'index.json')} records`);
    expect(noRun.err).toContain('give --checkpoints with its new place');
    const ok = await query(['--base', join(now, 'base'), '--checkpoints', join(now, 'run')]);
    expect(ok.code, ok.err).toBe(0);
    // An index built with --tokenizer: that folder moved too.
    const tokWas = join(dir, 'tok-moving');
    cpSync(join(now, 'base'), tokWas, { recursive: true });
    const outTok = join(dir, 'idx-moved-tok');
    const bt = await cli(['index', 'build', '--base', join(now, 'base'), '--checkpoints', join(now, 'run'), '--checkpoint', 'checkpoint-50', '--train', u.train, '--tokenizer', tokWas, '--out', outTok, '--dim', '256', '--quiet']);
    expect(bt.code, bt.err).toBe(0);
    const tokNow = join(dir, 'tok-moved');
    renameSync(tokWas, tokNow);
    const queryTok = (more: string[]): ReturnType<typeof cli> => cli(['index', 'query', '--index', outTok, '--queries', u.queries, '--out', join(dir, 'q-moved-tok'), ...more, '--quiet']);
    const noTok = await queryTok([]);
    expect(noTok.code).toBe(1);
    expect(noTok.err).toContain(`${tokWas}: no such folder: the tokenizer folder ${join(outTok, 'index.json')} records`);
    expect(noTok.err).toContain('give --tokenizer with its new place');
    const okTok = await queryTok(['--tokenizer', tokNow]);
    expect(okTok.code, okTok.err).toBe(0);
  }, 300_000);

  it('--train gives the training file where it has moved (the texts of the top-k come from it); without it the lists have ids only and query.json says why; another file is refused before any work', async () => {
    const idx = join(dir, 'idx');
    const moved = join(dir, 'moved-train.jsonl');
    renameSync(u.train, moved);
    try {
      const none = join(dir, 'q-no-train');
      const q = await cli(['index', 'query', '--index', idx, '--queries', u.queries, '--top-k', '2', '--out', none, '--quiet']);
      expect(q.code, q.err).toBe(0);
      expect(JSON.parse(readFileSync(join(none, 'query.json'), 'utf8')).trainingTexts).toMatch(/train\.jsonl is not there: the top-k lists give training ids without their texts/);
      expect(readFileSync(join(none, 'topk.jsonl'), 'utf8').split('\n')[0]).toContain('"where":""');
      const given = join(dir, 'q-moved-train');
      const r = await cli(['index', 'query', '--index', idx, '--queries', u.queries, '--top-k', '2', '--train', moved, '--out', given, '--quiet']);
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(readFileSync(join(given, 'query.json'), 'utf8')).trainingTexts).toBe(`texts read from ${moved}`);
      expect(JSON.parse(readFileSync(join(given, 'topk.jsonl'), 'utf8').split('\n')[0]).top[0].where).toMatch(/moved-train\.jsonl:1$/);
      // refused before any work: no query gradient, no search (their log lines never come)
      const bad = await cli(['index', 'query', '--index', idx, '--queries', u.queries, '--train', u.queries, '--progress', 'log']);
      expect(bad.code).toBe(1);
      expect(bad.err).toContain(`--train ${u.queries} is not the file the index was built from`);
      expect(bad.err).not.toMatch(/index: scored|query loss/);
    } finally {
      renameSync(moved, u.train);
    }
  }, 300_000);

  it('asks for a subcommand', async () => {
    const r = await cli(['index']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('name a subcommand: dda index build, query, sketch, merge or slurm');
  });

  it('dda index sketch, then dda index query --candidates: the approximate query says so and records its check; fewer candidates than --top-k is refused', async () => {
    const idx = join(dir, 'idx-sketch');
    cpSync(join(dir, 'idx'), idx, { recursive: true }); // (the shard tests compare their merge with idx's files)
    const s = await cli(['index', 'sketch', '--index', idx, '--dim', '32', '--quiet']);
    expect(s.code, s.err).toBe(0);
    expect(s.out).toContain(`sketch of ${idx}: 8 rows × 32 float16, seed 0`);
    const out = join(dir, 'q-approx');
    const q = await cli(['index', 'query', '--index', idx, '--queries', u.queries, '--top-k', '3', '--candidates', '3', '--out', out, '--quiet']);
    expect(q.code, q.err).toBe(0);
    expect(q.out).toMatch(/Index query: 2 queries × 8 training samples at checkpoint-50/);
    expect(JSON.parse(readFileSync(join(out, 'query.json'), 'utf8')).search).toMatchObject({ exact: false, candidates: 3, sketch: { dim: 32, seed: 0 } });
    const bad = await cli(['index', 'query', '--index', idx, '--queries', u.queries, '--top-k', '3', '--candidates', '2', '--quiet']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('--candidates must be an integer of at least --top-k (3), got 2');
  }, 300_000);
});

describe('dda index build in shards', () => {
  // The options of the first test's unsharded index (8 samples in blocks of 3: 3 blocks).
  const buildArgs = (): string[] => ['--base', u.base, '--checkpoints', u.run, '--checkpoint', 'checkpoint-50', '--train', u.train, '--dim', '512', '--block-rows', '3', '--quiet'];
  const files = (out: string): Record<string, string> => Object.fromEntries(readdirSync(out).filter((f) => f !== 'verified.json').sort().map((f) => [f, readFileSync(join(out, f)).toString('base64')]));

  it('--shards 2 --shard 0 and --shards 2 with JOB_COMPLETION_INDEX, then dda index merge, give the unsharded index byte for byte; the merge names a missing shard', async () => {
    const out = join(dir, 'sharded');
    const s0 = await cli(['index', 'build', ...buildArgs(), '--out', out, '--shards', '2', '--shard', '0']);
    expect(s0.err).toBe('');
    expect(s0.out).toContain('index shard 0/2 done: rows 0 to 2 of 8\nnot finished yet: shard 1 of 2');
    // A query of the unmerged folder says what it holds and what to run.
    const unmerged = await cli(['index', 'query', '--index', out, '--queries', u.queries, '--quiet']);
    expect(unmerged.code).toBe(1);
    expect(unmerged.err).toContain(`${out}: no index.json: it holds the shards of an index build that is not merged (shard 0 of 2 finished; shard 1 missing)`);
    expect(unmerged.err).toContain(`run the missing shard (dda index build ... --shard 1/2), then dda index merge --index ${out}`);
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
    const finished = await cli(['index', 'query', '--index', out, '--queries', u.queries, '--quiet']);
    expect(finished.err).toContain(`${out}: no index.json: it holds the shards of an index build that is not merged (every shard of 2 finished)`);
    expect(finished.err).toContain(`merge them: dda index merge --index ${out}`);
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
    expect(readdirSync(out).sort()).toEqual(['gradients.f16', 'index.json', 'slurm', 'verified.json']);
    rmSync(join(out, 'slurm'), { recursive: true });
    expect(files(out)).toEqual(files(join(dir, 'idx')));
  }, 300_000);

  it('dda index slurm refuses more shards than the training set has blocks before writing any script', async () => {
    const out = join(dir, 'slurm-too-many');
    const r = await cli(['index', 'slurm', ...buildArgs(), '--out', out, '--shards', '4', '--dry-run']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('4 shards of 8 training samples in 3 blocks of 3: a shard would have no rows (give at most 3 shards, or a smaller --block-rows)');
    expect(existsSync(out)).toBe(false);
  });

  it('the README\'s sharded index commands fit the demo\'s training set: every shard has rows', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
    const lines = readme.split('\n').filter((l) => /npm run -s dda -- index (build|slurm) .*--shards? \S/.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) {
      const flag = (name: string): string | undefined => new RegExp(`--${name} (\\S+)`).exec(line)?.[1];
      const blockRows = Number(flag('block-rows') ?? DEFAULT_INDEX_BLOCK_ROWS);
      const count = Number(flag('shards') ?? flag('shard')?.split('/')[1]);
      expect(count, line).toBeGreaterThan(1);
      for (let index = 0; index < count; index++) expect(() => indexShardRows(DEFAULT_EXPERIMENT.nTrain, blockRows, { index, count }), line).not.toThrow();
    }
  });
});

describe('--out naming a file', () => {
  it('is refused before any work by dda attribute (sharded or not), dda merge, dda index build (sharded or not), dda index query and dda slurm, naming the option and the path', async () => {
    const file = join(dir, 'some.jsonl');
    writeFileSync(file, '{}\n');
    const inputs = ['--base', u.base, '--checkpoints', u.run, '--train', u.train];
    const commands = [
      ['attribute', ...inputs, '--queries', u.queries],
      ['attribute', ...inputs, '--queries', u.queries, '--shard', '0/2'],
      ['slurm', ...inputs, '--queries', u.queries, '--shards', '2', '--dry-run'],
      ['index', 'build', ...inputs, '--checkpoint', 'checkpoint-50'],
      ['index', 'build', ...inputs, '--checkpoint', 'checkpoint-50', '--shard', '0/2'],
      ['index', 'slurm', ...inputs, '--checkpoint', 'checkpoint-50', '--block-rows', '3', '--shards', '2', '--dry-run'],
      ['index', 'query', '--index', join(dir, 'idx'), '--queries', u.queries],
      ['index', 'query', '--index', join(dir, 'dda-base'), '--index', join(dir, 'dda-checkpoint-50'), '--queries', u.queries],
      ['merge'],
    ];
    for (const c of commands) {
      const r = await cli([...c, '--out', file, '--quiet']);
      expect(r.code, c.join(' ')).toBe(1);
      expect(r.err, c.join(' ')).toContain(`--out ${file} is a file; give a folder`);
    }
    expect(readFileSync(file, 'utf8')).toBe('{}\n');
  }, 300_000);
});
